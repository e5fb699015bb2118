"""Addresses that keep sending invalid API keys are refused for a while.

Past `SMSHUB_API_KEY_FAILURES` invalid keys within a minute, every API request from that
address is answered 429 for a minute, whatever key it carries: were valid keys let through, the
limit would not stop a guess that succeeds. Keys are 256 random bits, so this mostly spares the
database a lookup per guess and makes a scan show in the logs.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from . import counters
from .addresses import client_address

logger = logging.getLogger(__name__)

WINDOW = 60


def _blocked_key(address: str) -> str:
    return f"{counters.PREFIX}:api-blocked:{address}"


def blocked_key(request: HttpRequest) -> str:
    """The cache key saying until when this request's address is refused (see `wait`)."""
    return _blocked_key(client_address(request))


def wait(until: float | None) -> int | None:
    """Seconds left of a refusal that lasts `until` (the value at `blocked_key`); None if none."""
    left = (until or 0) - time.time()
    return math.ceil(left) if left > 0 else None


def failed(request: HttpRequest) -> None:
    """Count an invalid key from this request's address; refuse the address past the limit."""
    address = client_address(request)
    count = counters.hit(f"api-key:{address}", WINDOW)
    if count >= settings.SMSHUB_API_KEY_FAILURES and cache.add(
        _blocked_key(address), time.time() + WINDOW, timeout=WINDOW
    ):
        counters.reset(f"api-key:{address}", WINDOW)
        logger.warning(
            "api: %d invalid API keys from %s within a minute: its requests are refused for %d s",
            count,
            address,
            WINDOW,
        )


def forget(address: str) -> None:
    """Let an address (as counted: `addresses.normalize`) use the API again, its count cleared."""
    cache.delete(_blocked_key(address))
    counters.reset(f"api-key:{address}", WINDOW)
