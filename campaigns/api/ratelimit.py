"""Requests per minute per API key, counted in the cache that every web process shares.

Fixed windows: each clock minute (UTC) has its own counter per key, so a key may make up to
`SMSHUB_API_RATE_LIMIT` requests in each minute (at most twice that across a minute boundary).
A request over the limit is told how many seconds remain until the next minute starts.

With Redis the count is exact (INCR is atomic) and takes one round trip, together with the
other values a request needs to read (`hit_and_read`); with the database cache two requests at
the same instant may be counted once, so the limit is approximate there.
"""

import math
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

WINDOW = 60
# The counter is kept a little longer than its minute, so that clocks a little apart share it.
KEPT = WINDOW * 2


def hit(bucket: str, now: float | None = None) -> int | None:
    """Count one request for `bucket`; None if it is within the limit, else the whole seconds
    to wait (at least 1)."""
    return hit_and_read(bucket, (), now)[0]


def hit_and_read(
    bucket: str, read: Iterable[str], now: float | None = None
) -> tuple[int | None, dict[str, Any]]:
    """`hit`, and the cache's values at the keys `read` (those present), in one round trip
    with Redis."""
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    key, read = f"smshub:api-rate:{bucket}:{window}", list(read)
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        count, values = _redis(backend, key, read)
    else:
        values = cache.get_many(read) if read else {}
        try:
            count = cache.incr(key)
        except ValueError:  # the minute's first request (here or in another process)
            count = 1 if cache.add(key, 1, timeout=KEPT) else cache.incr(key)
    if count <= settings.SMSHUB_API_RATE_LIMIT:
        return None, values
    return max(1, math.ceil((window + 1) * WINDOW - now)), values


# INCR and EXPIRE of the counter, then MGET of the other keys: one command (EVALSHA), whose
# arguments are packed and whose answer is parsed once.
HIT_AND_READ = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
if #KEYS == 1 then return {count} end
return {count, redis.call('MGET', unpack(KEYS, 2))}
"""
_script = None  # made once; each call names the client to run it on


def _redis(backend: RedisCache, key: str, read: list[str]) -> tuple[int, dict[str, Any]]:
    """The counter's INCR and EXPIRE and an MGET of `read` in one script call, with the keys and
    values as Django's own Redis cache writes them (`make_key`, its serializer). The keys are
    the hub's own, short and printable: Django's check of each character for memcached
    (`validate_key`) took 1.5 % of a single send."""
    global _script
    client = backend._cache.get_client(write=True)  # made once per pool (smshub.cache)
    if _script is None:  # EVALSHA, loading the script again should the server have forgotten it
        _script = client.register_script(HIT_AND_READ)
    keys = [backend.make_key(name) for name in (key, *read)]
    count, *found = _script(keys=keys, args=[KEPT], client=client)
    serializer = backend._cache._serializer
    values = {
        name: serializer.loads(raw)
        for name, raw in zip(read, found[0] if found else [], strict=True)
        if raw is not None
    }
    return count, values
