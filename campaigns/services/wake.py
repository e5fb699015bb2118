"""Waking workers: tasks published by name, so that services never import `tasks` (which imports
them). Only a shortcut: what a worker was woken for, the beat sweep finds anyway.

Dispatch tasks hold *slots*: `SMSHUB_DISPATCHERS` keys in the cache, one per task published
and not yet ended. A task holds its slot while it runs and lingers a moment after its last
work, so a new message finds a dispatcher awake and publishes nothing: however many messages
arrive, a dispatch task is published only when none is running or waiting in the broker, and
a burst of single messages is claimed in batches by the task already running, like a campaign.
"""

import math
import time

from celery import current_app
from django.conf import settings
from django.core.cache import cache

DISPATCH_TASK = "campaigns.dispatch"


def wake(task_name: str, *args, **options) -> None:
    """Publish `task_name` once, without retrying when the broker cannot take it."""
    current_app.send_task(task_name, args=args or None, retry=False, **options)


def slot_key(slot: int) -> str:
    return f"smshub:dispatch-slot:{slot}"


def slot_timeout() -> int:
    """How long a slot is held without news: a published task expires unstarted after two
    sweep intervals (the worker discarding it gives the slot back, `campaigns.tasks`), and a
    running one renews its slot after every batch. A task the broker lost, or a worker killed
    mid-task, frees its slot this long after at most."""
    return math.ceil(settings.SMSHUB_SWEEP_INTERVAL * 2 + 5)


def hold_slot(slot: int) -> None:
    cache.set(slot_key(slot), 1, timeout=slot_timeout())


def release_slot(slot: int) -> None:
    cache.delete(slot_key(slot))


def publish_dispatchers(wanted: int) -> int:
    """Publish dispatch tasks until `wanted` are running or waiting in the broker, at most;
    returns how many were published. One cache read when enough are: cheap enough for every
    message created."""
    slots = range(settings.SMSHUB_DISPATCHERS)
    held = cache.get_many([slot_key(slot) for slot in slots])
    if len(held) >= wanted:
        return 0
    free = [slot for slot in slots if slot_key(slot) not in held]
    published = 0
    for slot in free[: wanted - len(held)]:
        if cache.add(slot_key(slot), 1, timeout=slot_timeout()):
            wake(DISPATCH_TASK, slot, expires=settings.SMSHUB_SWEEP_INTERVAL * 2)
            published += 1
    return published


# After finding a dispatch task awake (or publishing one), a process does not look again for
# this long: a task holding its slot then takes the messages queued meanwhile, or, should it end
# first, sees them queued and publishes another (`campaigns.tasks.dispatch`).
RECHECK = 0.1
_checked_until = 0.0


def wake_dispatcher() -> int:
    """A dispatch task for messages just queued, unless one is running or waiting already;
    returns how many were published (0 or 1)."""
    global _checked_until
    now = time.monotonic()
    if now < _checked_until:
        return 0
    published = publish_dispatchers(1)
    _checked_until = now + RECHECK
    return published


def forget() -> None:
    """Look for an awake dispatch task at the next call (in tests: each test has its own)."""
    global _checked_until
    _checked_until = 0.0
