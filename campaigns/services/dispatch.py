"""Dispatch, the outbox pattern: claim due messages, send them outside any transaction, record.

The database is the source of truth. A message is claimed by a conditional UPDATE that moves it
from `queued` to `sending` with this worker's claim token, so two workers never send the same
message; on PostgreSQL the candidates are picked with SKIP LOCKED so workers do not queue behind
each other. A crash after the claim leaves the message `sending`: past `SMSHUB_SENDING_TIMEOUT`
it becomes `unknown`, never resent blindly.
"""

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Message, MessageEvent, OptOut, PendingDeliveryReport
from providers.events import OutboundSMS, SendResult
from providers.exceptions import ProviderError
from providers.models import ProviderAccount

from .delivery import apply_pending_reports
from .lifecycle import transition

logger = logging.getLogger(__name__)

Status = Message.Status
Source = MessageEvent.Source


def due_filter(now) -> Q:
    return Q(status=Status.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def claim(limit: int) -> list[Message]:
    """Claim up to `limit` due messages for this worker: they are `sending` when this returns."""
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        candidates = Message.objects.filter(due_filter(now)).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Message.objects.filter(id__in=ids, status=Status.QUEUED).update(
            status=Status.SENDING, claimed_at=now, claim_token=token, updated_at=now
        )
        claimed = list(
            Message.objects.filter(claim_token=token, status=Status.SENDING)
            .select_related("account", "category", "campaign")
            .order_by("id")
        )
        MessageEvent.objects.bulk_create(
            MessageEvent(
                message=m,
                at=now,
                from_status=Status.QUEUED,
                to_status=Status.SENDING,
                source=Source.DISPATCH,
                detail="Claimed by a worker.",
            )
            for m in claimed
        )
    return claimed


@dataclass
class Outcome:
    message: Message
    provider_account: ProviderAccount | None
    result: SendResult | None = None
    error: ProviderError | None = None
    reason: str = ""
    blocked: bool = False


def send_through(message: Message, provider_account: ProviderAccount) -> Outcome:
    """Send one claimed message through one provider account, outside any transaction."""
    try:
        result = provider_account.adapter().send(outbound(message, provider_account))
    except ProviderError as exc:
        logger.warning(
            "send failed: message=%s provider=%s error=%s",
            message.pk,
            provider_account.name,
            exc.message,
        )
        return Outcome(message, provider_account, error=exc)
    return Outcome(message, provider_account, result=result)


def send_claimed(messages: list[Message]) -> list[Outcome]:
    """Call the providers for claimed messages. No transaction is open while we wait on HTTP."""
    routes: dict[int, list[ProviderAccount]] = {}
    outcomes = []
    opted_out = set(
        OptOut.objects.filter(
            account_id__in={m.account_id for m in messages},
            number__in={m.recipient for m in messages},
        ).values_list("account_id", "number")
    )
    for message in messages:
        if (message.account_id, message.recipient) in opted_out:
            reason = "The number opted out of messages from this account: not sent."
            outcomes.append(Outcome(message, None, reason=reason, blocked=True))
            continue
        route = routes.get(message.account_id)
        if route is None:
            route = routes[message.account_id] = message.account.route()
        if not route:
            outcomes.append(
                Outcome(
                    message,
                    None,
                    reason="The account has no enabled provider account in its route.",
                )
            )
            continue
        outcomes.append(send_through(message, route[0]))
    return outcomes


def outbound(message: Message, provider_account: ProviderAccount) -> OutboundSMS:
    return OutboundSMS(
        to=message.recipient,
        text=message.text,
        reference=str(message.pk),
        sender=message.sender,
        callback_url=provider_account.webhook_url("dlr"),
        campaign_name=message.campaign.name if message.campaign_id else "",
        category=message.category.tag if message.category_id else "",
        send_at=message.scheduled_at,
    )


def record(outcome: Outcome) -> None:
    """Write what happened to one message; each outcome is its own small transaction."""
    message, now = outcome.message, timezone.now()
    attempts = message.attempts + 1
    if outcome.blocked:
        transition(
            message,
            Status.BLOCKED,
            source=Source.DISPATCH,
            detail=outcome.reason,
            error_code="opted_out",
            error_reason=outcome.reason,
        )
    elif outcome.result is not None:
        result = outcome.result
        transition(
            message,
            Status(result.status),
            source=Source.PROVIDER,
            detail=f"Accepted by {outcome.provider_account.name} as {result.provider_message_id}.",
            payload=result.raw,
            provider_account=outcome.provider_account,
            provider_message_id=result.provider_message_id,
            sent_at=now,
            cost=result.cost,
            attempts=attempts,
            error_code="",
            error_reason="",
        )
    elif (
        outcome.error is not None
        and outcome.error.retryable
        and attempts < settings.SMSHUB_MAX_ATTEMPTS
    ):
        delay = backoff(attempts)
        transition(
            message,
            Status.RETRYING,
            source=Source.PROVIDER,
            detail=f"{outcome.error.message} Trying again in {delay:.0f} s.",
            payload=_jsonable(outcome.error.raw),
            provider_account=outcome.provider_account,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            error_code=outcome.error.code,
            error_reason=outcome.error.message,
        )
    else:
        error = outcome.error
        transition(
            message,
            Status.FAILED,
            source=Source.PROVIDER if error else Source.DISPATCH,
            detail=error.message if error else outcome.reason,
            payload=_jsonable(error.raw) if error else None,
            provider_account=outcome.provider_account,
            attempts=attempts if error else message.attempts,
            error_code=error.code if error else "no_route",
            error_reason=error.message if error else outcome.reason,
        )


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter, in seconds: 10 s, 20 s, 40 s ... (max 1 h)."""
    ceiling = min(settings.SMSHUB_RETRY_BASE_DELAY * 2 ** (attempts - 1), 3600)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def dispatch_batch(limit: int | None = None) -> int:
    """Claim one batch, send it, record it. Returns how many messages were claimed."""
    messages = claim(limit or settings.SMSHUB_DISPATCH_BATCH_SIZE)
    outcomes = send_claimed(messages)
    for outcome in outcomes:
        record(outcome)
    apply_waiting_reports(outcomes)
    return len(messages)


def apply_waiting_reports(outcomes: list[Outcome]) -> int:
    """Delivery reports that overtook their send result are applied now (one query per batch)."""
    sent = {
        (o.provider_account.pk, o.result.provider_message_id): o.provider_account
        for o in outcomes
        if o.result is not None and o.result.provider_message_id
    }
    if not sent:
        return 0
    waiting = set(
        PendingDeliveryReport.objects.filter(
            provider_message_id__in={key[1] for key in sent}
        ).values_list("provider_account_id", "provider_message_id")
    )
    return sum(apply_pending_reports(sent[key], key[1]) for key in waiting if key in sent)


def promote_due(now=None) -> int:
    """Scheduled messages whose time has come, and retries whose wait is over, become `queued`."""
    now = now or timezone.now()
    moved = 0
    for status, time_field in (
        (Status.SCHEDULED, "scheduled_at"),
        (Status.RETRYING, "next_attempt_at"),
    ):
        due = Message.objects.filter(status=status, **{f"{time_field}__lte": now})
        for message in due.only("id", "status")[:10_000]:
            moved += transition(message, Status.QUEUED, source=Source.SYSTEM, detail="Due to send.")
    return moved


def expire_stuck_sending(now=None) -> int:
    """A message `sending` for too long (a worker died mid-call) becomes `unknown`: never resent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SMSHUB_SENDING_TIMEOUT)
    moved = 0
    for message in Message.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff).only(
        "id", "status"
    ):
        moved += transition(
            message,
            Status.UNKNOWN,
            source=Source.SYSTEM,
            detail="No send result recorded in time: the provider may or may not have it. "
            "Check with the provider before sending again.",
        )
    return moved


def due_count(now=None) -> int:
    return Message.objects.filter(due_filter(now or timezone.now())).count()


def _jsonable(value):
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    return str(value)
