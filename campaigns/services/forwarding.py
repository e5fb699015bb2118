"""Forwarding: every reply and every final status, POSTed as signed JSON to the account's URL.

The body is signed with HMAC-SHA256 under the account's `forward_secret`; the hex digest is sent
as `X-SMSHub-Signature: sha256=<hex>`. Deliveries are rows (`Forward`), retried with backoff by
the beat sweep until the receiver answers 2xx; each attempt is logged (`ForwardAttempt`).
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Forward, ForwardAttempt, Message, Reply
from providers import http

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SMSHub-Signature"
LEASE = timedelta(seconds=60)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enqueue_reply(reply: Reply) -> None:
    if not reply.account.forward_url:
        return
    Forward.objects.create(
        account=reply.account,
        event="reply",
        payload={
            "event": "reply",
            "reply_id": reply.pk,
            "message_id": reply.message_id,
            "from": reply.from_number,
            "to": reply.to_number,
            "text": reply.text,
            "received_at": reply.received_at.isoformat(),
        },
    )


def status_payload(
    message_id: int, to: str, status: str, error_code: str = "", error_reason: str = "", at=None
) -> dict:
    """What the account's forwarding URL receives when a message reaches a final status."""
    return {
        "event": "status",
        "message_id": message_id,
        "to": to,
        "status": status,
        "error_code": error_code,
        "error_reason": error_reason,
        "at": (at or timezone.now()).isoformat(),
    }


def enqueue_status(message: Message) -> None:
    if (forward := status_forward(message)) is not None:
        forward.save(force_insert=True)


def status_forward(message: Message) -> Forward | None:
    """The unsaved forward of `message`'s status to its account's URL; None without a URL."""
    if not message.account.forward_url:
        return None
    return Forward(
        account_id=message.account_id,
        event="status",
        payload=status_payload(
            message.pk,
            message.recipient,
            message.status,
            message.error_code,
            message.error_reason,
        ),
    )


def claim_due(limit: int = 50) -> list[Forward]:
    """Take due forwards for this worker: a lease (next attempt pushed back) keeps others off."""
    now = timezone.now()
    with transaction.atomic():
        due = Forward.objects.filter(status=Forward.Status.PENDING, next_attempt_at__lte=now)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("next_attempt_at").values_list("id", flat=True)[:limit])
        Forward.objects.filter(id__in=ids, next_attempt_at__lte=now).update(
            next_attempt_at=now + LEASE
        )
    return list(Forward.objects.filter(id__in=ids).select_related("account"))


def deliver(forward: Forward) -> bool:
    """One attempt; returns True when the receiver took it."""
    account = forward.account
    body = json.dumps(forward.payload, separators=(",", ":")).encode()
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = http.fetch(
            "POST",
            account.forward_url,
            data=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(account.forward_secret, body),
            },
            timeout=settings.SMSHUB_HTTP_TIMEOUT,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {response.text[:200]}"
    except requests.RequestException as exc:
        error = f"{exc.__class__.__name__}: could not reach {account.forward_url}"
    ForwardAttempt.objects.create(
        forward=forward,
        url=account.forward_url,
        response_status=status_code,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    forward.attempts += 1
    if not error:
        forward.status, forward.delivered_at = Forward.Status.DELIVERED, timezone.now()
    elif forward.attempts >= settings.SMSHUB_FORWARD_MAX_ATTEMPTS:
        forward.status = Forward.Status.FAILED
        logger.warning(
            "forward %s given up after %s attempts: %s", forward.pk, forward.attempts, error
        )
    else:
        forward.next_attempt_at = timezone.now() + timedelta(
            seconds=min(10 * 2 ** (forward.attempts - 1), 3600)
        )
    forward.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
    return not error


def deliver_due() -> int:
    return sum(deliver(forward) for forward in claim_due())
