"""Celery tasks: thin wrappers over `campaigns.services`. They take ids, never objects."""

import logging
import math
import time

from celery import shared_task
from django.conf import settings

from .services import dispatch as dispatch_service
from .services import forwarding, polling, webhook_log

logger = logging.getLogger(__name__)

# One dispatch task keeps claiming batches for at most this long, then hands over.
DISPATCH_TIME_BUDGET = 30.0
# The sweep never publishes more dispatch tasks than this at once.
MAX_FANOUT = 16


@shared_task(name="campaigns.dispatch")
def dispatch() -> int:
    """Claim and send due messages, batch after batch, until none is due or time is up."""
    started, total = time.monotonic(), 0
    while time.monotonic() - started < DISPATCH_TIME_BUDGET:
        batch = dispatch_service.dispatch_once()
        total += batch.claimed
        if batch.claimed < settings.SMSHUB_DISPATCH_BATCH_SIZE and not batch.waiting:
            break
        if not batch.claimed:
            time.sleep(0.1)  # a provider's per-second limit: its next second is close
    return total


@shared_task(name="campaigns.sweep")
def sweep() -> int:
    """Run by beat every few seconds: what is due gets workers, whatever the broker lost."""
    dispatch_service.expire_stuck_sending()
    dispatch_service.expire_windows()
    dispatch_service.promote_due()
    while webhook_log.apply_received():  # what no nudged task took: no lingering here
        pass
    due = dispatch_service.due_count()
    tasks = min(math.ceil(due / settings.SMSHUB_DISPATCH_BATCH_SIZE), MAX_FANOUT)
    for _ in range(tasks):
        dispatch.apply_async(expires=settings.SMSHUB_SWEEP_INTERVAL * 2)
    if due:
        logger.info("sweep: %s messages due, %s dispatch tasks published", due, tasks)
    return due


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
    started = last_work = time.monotonic()
    total = 0
    while time.monotonic() - started < DISPATCH_TIME_BUDGET:
        taken = webhook_log.apply_received()
        total += taken
        if taken:
            last_work = time.monotonic()
        elif time.monotonic() - last_work > APPLY_LINGER:
            break
        else:
            time.sleep(0.05)
    return total
