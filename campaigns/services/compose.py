"""Composing: turning what staff (or the API) wrote into queued messages."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from campaigns.models import Account, Category, Message, MessageEvent
from providers import gsm

from . import lifecycle
from .wake import wake


def create_message(
    account: Account,
    *,
    recipient: str,
    text: str,
    sender: str = "",
    category: Category | None = None,
    created_by: AbstractBaseUser | None = None,
    source: str = MessageEvent.Source.STAFF,
    status: str = Message.Status.QUEUED,
    detail: str = "Queued to send now.",
    **fields,
) -> Message:
    """Create one message and its first timeline event. `recipient` must already be E.164.

    A text holding a secret (a one-time code) goes in `secret_text`, stored encrypted and sent,
    while `text` holds it masked for every page and answer.
    """
    lifecycle.check_initial(status)
    analysis = gsm.analyze(fields.get("secret_text") or text)  # what will be sent
    with transaction.atomic():
        message = Message.objects.create(
            account=account,
            recipient=recipient,
            text=text,
            sender=sender,
            category=category,
            encoding=analysis.encoding,
            segments=max(analysis.segments, 1),
            status=status,
            created_by=created_by,
            **fields,
        )
        MessageEvent.objects.create(
            message=message, to_status=message.status, source=source, detail=detail
        )
    return message


def enqueue_message(account: Account, *, send_at=None, window_end=None, **kwargs) -> Message:
    """Create one message to send now, or at `send_at` (and not after `window_end`), and nudge
    the dispatcher once it is committed. Times are aware datetimes, stored in UTC."""
    if send_at is not None and send_at > timezone.now():
        kwargs.update(
            status=Message.Status.SCHEDULED,
            detail=f"Scheduled for {send_at.isoformat()}.",
            scheduled_at=send_at,
        )
    if send_at is not None or window_end is not None:
        kwargs.update(window_start=send_at, window_end=window_end)
    with transaction.atomic():
        message = create_message(account, **kwargs)
        if message.status == Message.Status.QUEUED:
            transaction.on_commit(nudge_dispatcher, robust=True)
    return message


def nudge_dispatcher() -> None:
    """Ask a worker to claim due messages now rather than at the next sweep.

    Only a shortcut: if the broker cannot take it, the beat sweep finds the messages anyway.
    """
    wake("campaigns.dispatch")
