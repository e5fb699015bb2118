"""The dispatch loop of a worker: claim, send and record batch after batch, pipelined."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .claim import Claim, claim_batch
from .record import record_batch
from .send import Sending, finish_sending, start_sending

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    claimed: int
    waiting: bool
    retry_at: datetime | None = None


def dispatch_for(seconds: float, after_batch: Callable[[Batch], object] | None = None) -> int:
    """Claim, send and record batch after batch until nothing is due or `seconds` have passed;
    returns how many messages were claimed. `after_batch` is called after every claim.

    Each batch is claimed, and its calls queued, while the batch before is still being sent,
    and recorded once its calls are done: the calls never wait on the database. A claim that
    finds only messages waiting for a provider's per-second budget is tried again when budget
    frees.
    """
    deadline = time.monotonic() + seconds
    total, pending = 0, []
    try:
        while True:
            claim = Claim([])
            if time.monotonic() < deadline:
                claim = claim_batch(settings.SMSHUB_DISPATCH_BATCH_SIZE)
            if claim.messages:
                pending.append(start_sending(claim))
            if len(pending) > 1 or (pending and not claim.messages):
                _finish(pending.pop(0))
            total += len(claim.messages)
            if after_batch is not None:
                after_batch(Batch(len(claim.messages), claim.waiting, claim.retry_at))
            if not pending:
                if not claim.waiting or time.monotonic() >= deadline:
                    return total
                time.sleep(_until(claim.retry_at))
    finally:
        _finish_all(pending)  # an error on the way: what was sent is still recorded


def _finish(sending: Sending) -> None:
    record_batch(sending.messages, finish_sending(sending))


def _finish_all(pending: list[Sending]) -> None:
    """Record every batch still on its way, each whatever happens to the others (an error on
    the way out must not leave the next batches `sending`)."""
    while pending:
        try:
            _finish(pending.pop(0))
        except Exception:
            logger.exception("could not record a sent batch: its messages become unknown")


def _until(moment: datetime | None) -> float:
    """Seconds to wait for `moment` (a few milliseconds at least, a tenth of a second at most:
    another worker may take the freed budget, or free some sooner)."""
    if moment is None:
        return 0.1
    return min(max((moment - timezone.now()).total_seconds(), 0.005), 0.1)
