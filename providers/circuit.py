"""A circuit breaker per provider account, in the cache all workers share.

After `SMSHUB_CIRCUIT_FAILURES` temporary failures in a row (`record_batch`) the circuit
opens: the dispatcher stops calling that provider account (messages go to the next one of their
route, or wait) for `SMSHUB_CIRCUIT_OPEN_SECONDS`. Then it is half-open: one message is let
through as a probe; success closes the circuit, failure opens it again.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


def _keys(provider_account_id: int) -> tuple[str, str, str]:
    base = f"smshub:circuit:{provider_account_id}"
    return f"{base}:failures", f"{base}:open_until", f"{base}:probe"


def state(provider_account_id: int) -> str:
    _, open_key, _ = _keys(provider_account_id)
    until = cache.get(open_key)
    if until is None:
        return CLOSED
    return OPEN if until > time.time() else HALF_OPEN


def allowance(provider_account_id: int) -> float:
    """How many messages a claim may send through this provider account now: all of them when
    the circuit is closed, none when open, one (the probe, if this caller took it) when half-open.
    One cache read for a whole claim, however many messages it takes."""
    current = state(provider_account_id)
    if current == CLOSED:
        return math.inf
    if current == OPEN:
        return 0
    _, _, probe_key = _keys(provider_account_id)
    return (
        1 if cache.add(probe_key, 1, timeout=math.ceil(settings.SMSHUB_CIRCUIT_OPEN_SECONDS)) else 0
    )


def reopens_at(provider_account_id: int) -> float | None:
    return cache.get(_keys(provider_account_id)[1])


def record_batch(provider_account_id: int, results: list[bool]) -> None:
    """Record a batch's outcomes for one provider account, in send order (True: it answered).

    Counts failures in a row across batches; a success resets the count. The half-open probe
    (the batch's first call) closes the circuit or opens it again.
    """
    if not results:
        return
    failures_key, open_key, probe_key = _keys(provider_account_id)
    stored = cache.get_many([failures_key, open_key])  # one round trip for a healthy batch
    until = stored.get(open_key)
    was = CLOSED if until is None else OPEN if until > time.time() else HALF_OPEN
    run = before = stored.get(failures_key) or 0  # an earlier run counts if this one extends it
    longest = 0
    for answered in results:
        run = 0 if answered else run + 1
        longest = max(longest, run)
    if run != before:
        cache.set(failures_key, run, timeout=None)
    if was == HALF_OPEN and results[0]:
        cache.delete_many([open_key, probe_key])
    if longest >= settings.SMSHUB_CIRCUIT_FAILURES or (was == HALF_OPEN and not results[0]):
        cache.set(open_key, time.time() + settings.SMSHUB_CIRCUIT_OPEN_SECONDS, timeout=None)
        cache.delete(probe_key)
