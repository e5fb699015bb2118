"""Beat's heartbeat: a tiny task beat publishes every `SMSHUB_HEARTBEAT_INTERVAL` seconds and a
worker runs, writing the time to the cache. `/readyz` checks that it is recent, which proves
that beat is running, the broker carries its tasks and a worker takes them."""

import time

from celery import shared_task
from django.core.cache import cache

HEARTBEAT_KEY = "smshub:beat-heartbeat"


def record(at: float | None = None) -> float:
    """Write the heartbeat (now, unless `at` is given) and return it."""
    at = time.time() if at is None else at
    cache.set(HEARTBEAT_KEY, at, timeout=None)
    return at


def last_beat() -> float | None:
    """When the last heartbeat was written (a Unix time), or None if never."""
    value = cache.get(HEARTBEAT_KEY)
    return float(value) if value is not None else None


@shared_task(name="smshub.heartbeat")
def heartbeat() -> float:
    return record()
