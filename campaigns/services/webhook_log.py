"""The webhook log: every provider request stored as received, then processed; replayable."""

import contextlib
import io
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import parse_header_parameters

from campaigns.models import WebhookRequest
from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

from .delivery import Applied, apply_delivery_report
from .inbound import receive_inbound

logger = logging.getLogger(__name__)

# Headers that may carry secrets are not stored.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})

Kind, Status = WebhookRequest.Kind, WebhookRequest.Status


def store(provider_account: ProviderAccount, kind: str, request: HttpRequest) -> WebhookRequest:
    headers = {
        name: value for name, value in request.headers.items() if name.lower() not in SECRET_HEADERS
    }
    return WebhookRequest.objects.create(
        provider_account=provider_account,
        kind=kind,
        method=request.method,
        content_type=request.META.get("CONTENT_TYPE", ""),
        headers=headers,
        body=request.body.decode("utf-8", errors="replace"),
    )


@dataclass
class Result:
    events: int = 0
    applied: int = 0
    pending: int = 0
    error: str = ""


def process(log: WebhookRequest, request: HttpRequest | None = None) -> Result:
    """Parse a stored request with its provider's adapter and apply what it says.

    Everything the request carries is applied in one transaction (a savepoint when the caller
    has one open): all of it, or, on a refusal, none of it. A request that cannot be read or
    applied is marked failed with the reason, raised again as WebhookValidationError (the view
    answers 400), and stays replayable.
    """
    provider_account = log.provider_account
    adapter = provider_account.adapter()
    result = Result()
    try:
        if log.kind == Kind.INBOUND:
            items = adapter.parse_inbound(request or rebuild_request(log))
        elif log.kind == Kind.QUEUE:
            items = adapter.parse_queue_reports(log.body)
        else:
            items = adapter.parse_delivery_reports(request or rebuild_request(log))
        if not items:
            raise WebhookValidationError("the request carries nothing to apply")
        result.events = len(items)
        with transaction.atomic():
            for item in items:
                if log.kind == Kind.INBOUND:
                    result.applied += receive_inbound(provider_account, item) is not None
                    continue
                outcome = apply_delivery_report(provider_account, item, webhook_request=log)
                result.applied += outcome == Applied.CHANGED
                result.pending += outcome == Applied.PENDING
            _finish(log, Status.UNMATCHED if result.pending else Status.APPLIED, result)
    except WebhookValidationError as exc:
        failed = Result(events=result.events, error=str(exc))
        _finish(log, Status.FAILED, failed)
        raise
    return result


def process_stuck(older_than: timedelta = timedelta(minutes=1)) -> int:
    """Requests stored but never processed (the database failed in between) are processed now."""
    stuck = WebhookRequest.objects.filter(
        status=Status.RECEIVED, received_at__lt=timezone.now() - older_than
    ).select_related("provider_account")
    done = 0
    for log in stuck[:500]:
        with contextlib.suppress(WebhookValidationError):  # marked failed, with its reason
            process(log)
        done += 1
    return done


def replay(log: WebhookRequest) -> Result:
    """Process a stored request again (after a fix): idempotent, so replaying is always safe."""
    log.replays += 1
    try:
        return process(log)
    except WebhookValidationError as exc:
        return Result(error=str(exc))


def _finish(log: WebhookRequest, status: str, result: Result) -> None:
    log.status, log.error = status, result.error
    log.events, log.applied = result.events, result.applied
    log.processed_at = timezone.now()
    log.save(update_fields=["status", "error", "events", "applied", "processed_at", "replays"])


def rebuild_request(log: WebhookRequest) -> HttpRequest:
    """An HttpRequest equal, for an adapter, to the one the provider made."""
    body = log.body.encode("utf-8")
    request = HttpRequest()
    request.method = log.method
    request.path = request.path_info = f"/hooks/{log.provider_account.slug}/…/{log.kind}/"
    request.META = {
        "REQUEST_METHOD": log.method,
        "CONTENT_TYPE": log.content_type,
        "CONTENT_LENGTH": str(len(body)),
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in log.headers.items()
            if name.lower() not in ("content-type", "content-length")
        },
    }
    request.content_type, request.content_params = parse_header_parameters(log.content_type)
    request._stream = io.BytesIO(body)
    request._body = body
    request._read_started = False
    return request
