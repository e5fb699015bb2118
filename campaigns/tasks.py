"""Celery tasks: thin wrappers over `campaigns.services`. They take ids, never objects."""

import logging
import math
from datetime import timedelta

from celery import shared_task
from celery.signals import task_revoked
from django.conf import settings
from django.utils import timezone

from .services import campaign_control, forwarding, polling, wake, webhook_log
from .services import dispatch as dispatch_service

logger = logging.getLogger(__name__)

# One dispatch task keeps claiming batches for at most this long, then hands over.
DISPATCH_TIME_BUDGET = 30.0
# A message is inserted a moment before its transaction commits: one queued this long before
# a task ended may have seen that task's slot and published nothing.
LATE_ARRIVAL = timedelta(seconds=2)


@shared_task(name="campaigns.dispatch")
def dispatch(slot: int | None = None) -> int:
    """Claim and send due messages, batch after batch, until none is due or time is up.

    `slot` is the place reserved for this task (see `wake`); it is given back at the end, so
    that the next message or sweep may publish another task. Messages queued while it was
    being given back get a task of their own.
    """
    claimed, fanned_out = 0, False

    def after_batch(batch: dispatch_service.Batch) -> None:
        nonlocal claimed, fanned_out
        if not fanned_out and batch.claimed == settings.SMSHUB_DISPATCH_BATCH_SIZE:
            # A full batch: more is due than one task sends quickly (a campaign arriving after
            # this task's first claim, whose messages were still being written, too).
            _fan_out()
            fanned_out = True
        claimed += batch.claimed
        if slot is not None:
            wake.hold_slot(slot)

    try:
        # It stays `SMSHUB_DISPATCH_LINGER` after its last work, so that messages queued
        # meanwhile find it awake (`wake.wake_dispatcher` publishes nothing while a slot is held).
        return dispatch_service.dispatch_for(
            DISPATCH_TIME_BUDGET, after_batch, settings.SMSHUB_DISPATCH_LINGER
        )
    finally:
        if slot is not None:
            ended = timezone.now()
            wake.release_slot(slot)
            if dispatch_service.queued_since(ended - LATE_ARRIVAL):
                wake.publish_dispatchers(1)


@task_revoked.connect
def give_back_slot(sender=None, request=None, **kwargs) -> None:
    """A dispatch task that expired in the broker (workers busy longer than its `expires`) is
    discarded unstarted: its slot is given back now, not when it times out, so that messages
    queued meanwhile publish a task at once."""
    if getattr(sender, "name", None) == "campaigns.dispatch" and getattr(request, "args", None):
        wake.release_slot(request.args[0])


@shared_task(name="campaigns.sweep")
def sweep() -> int:
    """Run by beat every few seconds: what is due gets workers, whatever the broker lost."""
    dispatch_service.expire_stuck_sending()
    dispatch_service.expire_windows()
    dispatch_service.promote_due()
    while webhook_log.apply_received():  # what no nudged task took: no lingering here
        pass
    campaign_control.finish_cancels()
    due = dispatch_service.due_count()
    published = _fan_out(due)
    if due:
        logger.info("sweep: %s messages due, %s dispatch tasks published", due, published)
    return due


def _fan_out(due: int | None = None) -> int:
    """Give the messages due as many dispatch tasks as they need, up to the slots. The sweep
    calls it, and so does a task whose first batch is full: a new campaign's nudge starts one
    task, and the others start at once rather than at the next sweep."""
    due = dispatch_service.due_count() if due is None else due
    wanted = min(math.ceil(due / settings.SMSHUB_DISPATCH_BATCH_SIZE), settings.SMSHUB_DISPATCHERS)
    return wake.publish_dispatchers(wanted) if wanted else 0


@shared_task(name=campaign_control.CANCEL_TASK)
def cancel_waiting(campaign_id: int) -> int:
    """Cancel what a large campaign's cancel left waiting (`campaign_control.cancel`)."""
    return campaign_control.finish_cancel(campaign_id)


@shared_task(name="campaigns.forward")
def forward() -> int:
    """Deliver due replies and statuses to the accounts' forwarding URLs."""
    return forwarding.deliver_due()


@shared_task(name="campaigns.poll_inbound")
def poll_inbound() -> int:
    """Fetch replies from providers that must be polled."""
    return sum(polling.poll(provider_account) for provider_account in polling.polling_accounts())


# An apply task stays this long after its last batch: webhook views nudge at most every
# `webhook_log.NUDGE_INTERVAL` seconds, so a request that was not nudged finds it still there.
APPLY_LINGER = 2 * webhook_log.NUDGE_INTERVAL


@shared_task(name="campaigns.apply_webhooks")
def apply_webhooks() -> int:
    """Apply the delivery reports and replies that providers sent, batch after batch."""
    return webhook_log.apply_batches(DISPATCH_TIME_BUDGET, APPLY_LINGER)


# A purge run stops starting batches after this long; the next run goes on.
PURGE_TIME_BUDGET = 300.0


@shared_task(name="campaigns.purge")
def purge() -> dict[str, int]:
    """Run by beat: purge (and export, if set) what retention says is too old."""
    from .services import retention

    return retention.purge(time_budget=PURGE_TIME_BUDGET)
