"""What beat's sweep does besides claiming: scheduled and retried messages become due, send
windows end, stuck messages become `unknown`; and a staff member's explicit resend."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import statuses
from campaigns.models import Message, MessageEvent

from .. import rows
from ..compose import nudge_dispatcher
from ..lifecycle import transition
from .claim import due_messages

Status = Message.Status
Source = MessageEvent.Source


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


def expire_windows(now=None) -> int:
    """Messages whose send window ended before they could be sent become `expired`."""
    now = now or timezone.now()
    waiting = Message.objects.filter(status__in=statuses.WAITING, window_end__lt=now)
    events: list[MessageEvent] = []
    with transaction.atomic():
        moved = sum(
            transition(
                message,
                Status.EXPIRED,
                source=Source.SYSTEM,
                detail="The send window ended before the message could be sent.",
                events=events,
                error_code="window_ended",
                error_reason="The send window ended before the message could be sent.",
            )
            for message in waiting.select_related("account").only(
                "id", "status", "account__forward_url"
            )[:10_000]
        )
        rows.insert_all(events)
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
    return due_messages(now or timezone.now()).count()


def queued_since(moment) -> bool:
    """Whether a message created at `moment` or later is queued still."""
    return Message.objects.filter(status=Status.QUEUED, created_at__gte=moment).exists()


def resend(message: Message, by=None) -> bool:
    """Queue a message whose outcome is `unknown` again, on a staff member's explicit request
    (the provider may have it already: never done automatically). False for any other status."""
    if message.status != Status.UNKNOWN:
        return False
    who = f" by {by}" if by is not None else ""
    moved = transition(
        message,
        Status.QUEUED,
        source=Source.STAFF,
        detail=f"Sent again on request{who}; its earlier outcome was unknown.",
        next_attempt_at=None,
        step_attempts=0,
    )
    if moved:
        transaction.on_commit(nudge_dispatcher, robust=True)
    return moved
