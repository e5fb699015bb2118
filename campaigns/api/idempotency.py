"""`Idempotency-Key`: a request sent again with the same key gets the first answer again.

The same key (per API key) with the same method, path and body within 24 hours gets the first
answer (status and body, with `Idempotent-Replayed: true`) and does nothing new; the same key with
another request is a 409. Bodies are compared as JSON (key order and spacing do not matter).

The record of the key is inserted in the same transaction as the work it guards and its answer:
a second identical request arriving meanwhile waits on the unique constraint (PostgreSQL) or
the database's write lock (SQLite) until the first commits, then replays its answer.

Answers to requests that were refused as invalid (401, 429, 422) or failed (5xx) are not kept,
so the request may be sent again with the same key, corrected or not; other answers (2xx, 404,
409) are. A one-time code checked wrong (422) still counts as a try.
"""

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja.renderers import JSONRenderer

from .errors import ApiError
from .models import ApiKey, IdempotencyRecord
from .schemas import IDEMPOTENCY_KEY

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
MAX_LENGTH = 255
# Answers that are not kept (besides 5xx): the request was refused as invalid.
NOT_KEPT = frozenset({422})


@dataclass
class Outcome:
    """What an operation answers: a status and a JSON-ready body."""

    status: int
    body: Any


def _check(key: str) -> None:
    if len(key) > MAX_LENGTH or not re.fullmatch(IDEMPOTENCY_KEY, key):
        raise ApiError(
            422,
            "invalid",
            "The Idempotency-Key header is not valid.",
            {HEADER: [f"Use 1 to {MAX_LENGTH} printable ASCII characters, e.g. a UUID."]},
        )


def fingerprint(request: HttpRequest) -> str:
    try:
        body: Any = json.loads(request.body)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = request.body
    material = b"\n".join([request.method.encode(), request.path.encode(), canonical])
    return hashlib.sha256(material).hexdigest()


def _claim(api_key: ApiKey, key: str, print_: str) -> tuple[IdempotencyRecord, bool]:
    """The record for `key`, newly made (True) or the one already there (False)."""
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                api_key=api_key, key=key, fingerprint=print_
            ), True
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.select_for_update().get(api_key=api_key, key=key)
    if record.created_at <= timezone.now() - KEPT:
        record.delete()
        return IdempotencyRecord.objects.create(api_key=api_key, key=key, fingerprint=print_), True
    return record, False


def _replay(record: IdempotencyRecord, print_: str) -> HttpResponse:
    if record.fingerprint != print_:
        raise ApiError(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was used for another request in the last 24 hours: use a "
            "new key for a new request.",
            {HEADER: ["Already used with another method, path or body."]},
        )
    if not record.status_code:  # cannot happen while the record's insert is locked
        raise ApiError(409, "idempotency_in_progress", "The first request is still running.")
    response = HttpResponse(
        record.body, status=record.status_code, content_type="application/json; charset=utf-8"
    )
    response["Idempotent-Replayed"] = "true"
    return response


_renderer = JSONRenderer()


def render(request: HttpRequest, status: int, body: Any) -> HttpResponse:
    """JSON as every answer of the API is written (ninja's renderer and encoder)."""
    content = _renderer.render(request, body, response_status=status)
    content_type = f"{_renderer.media_type}; charset={_renderer.charset}"
    return HttpResponse(content, status=status, content_type=content_type)


def _execute(
    request: HttpRequest, operation: Callable[[], Outcome], atomic: bool = True
) -> HttpResponse:
    """Run the operation in a savepoint: an ApiError undoes what it did and becomes its answer.
    Without `atomic`, the operation must make its writes all or nothing itself, and raise an
    ApiError only before its first write."""
    try:
        with transaction.atomic() if atomic else contextlib.nullcontext():
            outcome = operation()
    except ApiError as error:
        response = render(request, error.status, error.body())
        for name, value in error.headers.items():
            response[name] = value
        return response
    return render(request, outcome.status, outcome.body)


def run(
    request: HttpRequest, operation: Callable[[], Outcome], atomic: bool = True
) -> HttpResponse:
    """Run a state-changing operation, once per Idempotency-Key when the request has one
    (`atomic`: see `_execute`; with a key, the operation runs in the key's transaction)."""
    key = request.headers.get(HEADER)
    if key is None:
        return _execute(request, operation, atomic)
    _check(key)
    print_ = fingerprint(request)
    with transaction.atomic():
        record, created = _claim(request.auth, key, print_)
        if not created:
            return _replay(record, print_)
        response = _execute(request, operation)
        if response.status_code in NOT_KEPT or response.status_code >= 500:
            # Nothing was done: the request may come again with this key (corrected or not).
            record.delete()
        else:
            record.status_code = response.status_code
            record.body = response.content.decode()
            record.save(update_fields=["status_code", "body"])
    return response


def purge(now=None) -> int:
    """Forget answers older than 24 hours; returns how many."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=now - KEPT).delete()
    return deleted
