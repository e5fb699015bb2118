"""Requests per minute per API key, counted in the cache that every web process shares.

Fixed windows: each clock minute (UTC) has its own counter per key, so a key may make up to
`SMSHUB_API_RATE_LIMIT` requests in each minute (at most twice that across a minute boundary).
A request over the limit is told how many seconds remain until the next minute starts.

With Redis the count is exact (INCR is atomic); with the database cache two requests at the
same instant may be counted once, so the limit is approximate there.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache

WINDOW = 60


def hit(bucket: str, now: float | None = None) -> int | None:
    """Count one request for `bucket`; None if it is within the limit, else the whole seconds
    to wait (at least 1)."""
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    key = f"smshub:api-rate:{bucket}:{window}"
    # One round trip for all but a minute's first request. The counter is kept a little longer
    # than its minute, so that clocks a little apart still share it.
    try:
        count = cache.incr(key)
    except ValueError:  # the minute's first request (here or in another process)
        count = 1 if cache.add(key, 1, timeout=WINDOW * 2) else cache.incr(key)
    if count <= settings.SMSHUB_API_RATE_LIMIT:
        return None
    return max(1, math.ceil((window + 1) * WINDOW - now))
