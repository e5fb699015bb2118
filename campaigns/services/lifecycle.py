"""Moving a message through its lifecycle, one recorded event at a time."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.models import Message, MessageEvent

from . import forwarding

Status = Message.Status

# How far along a message is. Delivery reports only ever move a message to a higher rank.
RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 0,
    Status.RETRYING: 0,
    Status.SENDING: 1,
    Status.UNKNOWN: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 3,
    Status.EXPIRED: 3,
    Status.FAILED: 3,
    Status.BLOCKED: 3,
    Status.CANCELED: 3,
}


def transition(
    message: Message,
    to_status: str,
    *,
    source: str,
    detail: str = "",
    payload: Any = None,
    events: list[MessageEvent] | None = None,
    **fields: Any,
) -> bool:
    """Move `message` to `to_status` if nobody else moved it first; record the event.

    The update is conditional on the status we last saw, so two writers (a worker and a webhook,
    two webhooks) never both win. Returns False, changing nothing, when the message had moved on.
    A caller applying many changes in one transaction may pass `events` to collect the events
    and `bulk_create` them itself.
    """
    from_status = message.status
    now = timezone.now()
    # No savepoint of its own: inside a caller's transaction, the caller's commit is ours.
    with transaction.atomic(savepoint=False):
        updated = Message.objects.filter(pk=message.pk, status=from_status).update(
            status=to_status, updated_at=now, **fields
        )
        if not updated:
            return False
        event = MessageEvent(
            message=message,
            at=now,
            from_status=from_status,
            to_status=to_status,
            source=source,
            detail=detail,
            payload=payload,
        )
        if events is None:
            event.save()
        else:
            events.append(event)
    message.status = to_status
    for name, value in fields.items():
        setattr(message, name, value)
    if to_status in Message.FINAL_STATUSES:
        forwarding.enqueue_status(message)
    return True


def note(message: Message, *, source: str, detail: str, payload: Any = None) -> None:
    """Record something on the timeline without changing the status."""
    MessageEvent.objects.create(
        message=message,
        from_status=message.status,
        to_status=message.status,
        source=source,
        detail=detail,
        payload=payload,
    )
