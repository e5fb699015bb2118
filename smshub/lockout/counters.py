"""Events per name over a sliding window, counted in the cache that every process shares.

Each name has one counter per fixed window of `window` seconds; the count over the last `window`
seconds is the current counter plus the previous one weighted by the part of it still inside,
rounded up (so a limit is never reached later than it should be, at most one event earlier).
Redis increments atomically; on the database cache two events at the same instant may be
counted once, so limits are approximate there (as the API's rate limit).
"""

import math
import time

from django.core.cache import cache

PREFIX = "smshub:lockout"


def _key(name: str, index: int) -> str:
    return f"{PREFIX}:{name}:{index}"


def hit(name: str, window: int, now: float | None = None) -> int:
    """Count one event for `name`; returns the count over the last `window` seconds, this one
    included."""
    now = time.time() if now is None else now
    index = int(now // window)
    key = _key(name, index)
    cache.add(key, 0, timeout=2 * window)
    try:
        current = cache.incr(key)
    except ValueError:  # it expired between add and incr
        cache.add(key, 1, timeout=2 * window)
        current = 1
    # The database cache's incr sets the default timeout: the counter must outlive the next window.
    cache.touch(key, 2 * window)
    previous = cache.get(_key(name, index - 1), 0)
    # Rounded before going up: 4.9999999 is a float's 5.
    return math.ceil(round(current + previous * (1 - (now - index * window) / window), 6))


def give_back(name: str, window: int, now: float | None = None) -> None:
    """Take back one event counted by `hit` a moment ago (one that must not count after all)."""
    now = time.time() if now is None else now
    key = _key(name, int(now // window))
    try:
        if cache.get(key, 0) > 0:
            cache.decr(key)
            cache.touch(key, 2 * window)
    except ValueError:  # expired meanwhile: nothing left to take back
        pass


def reset(name: str, window: int, now: float | None = None) -> None:
    """Forget every event counted for `name`."""
    now = time.time() if now is None else now
    index = int(now // window)
    cache.delete_many([_key(name, index), _key(name, index - 1)])
