"""The dispatch loop of a worker: claim, send and record batch after batch, pipelined."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .claim import anything_to_claim, claim_batch
from .record import record_batch
from .send import Sending, finish_sending, start_sending

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    claimed: int
    waiting: bool
    retry_at: datetime | None = None


# How often a lingering loop looks for new work.
POLL = 0.05


def dispatch_for(
    seconds: float,
    after_batch: Callable[[Batch], object] | None = None,
    linger: float = 0.0,
) -> int:
    """Claim, send and record batch after batch until nothing is due or `seconds` have passed;
    returns how many messages were claimed. `after_batch` is called after every claim. With
    `linger`, the loop looks for new work every `POLL` seconds for that long after its last
    before it returns: messages queued meanwhile are taken without waking another task.

    Batches are claimed while the calls of those before are in flight, up to
    `SMSHUB_SEND_CONCURRENCY` messages claimed and not yet recorded (one batch at least): that
    many calls at once, and at most that many messages left `sending` (then `unknown`) should
    the process be killed. Each batch is recorded, in claim order, once its calls are done: the
    calls never wait on the database. A claim that finds only messages waiting for a provider's
    per-second budget is tried again when budget frees.
    """
    deadline = time.monotonic() + seconds
    size, room = settings.SMSHUB_DISPATCH_BATCH_SIZE, settings.SMSHUB_SEND_CONCURRENCY
    # A claim that found less than a batch is not followed by another for this long: messages
    # arriving one by one (single API sends) gather into batches, like a campaign's.
    gather = settings.SMSHUB_DISPATCH_GATHER
    total, pending = 0, []
    last_work = next_claim = time.monotonic()
    idle = False
    try:
        while True:
            claim = None
            in_flight = sum(len(sending.messages) for sending in pending)
            if (wait := next_claim - time.monotonic()) > 0:
                time.sleep(wait)
            if idle and not anything_to_claim():
                pass  # lingering: a read, not a claim's transaction, finds nothing new
            elif time.monotonic() < deadline and (not pending or in_flight + size <= room):
                claim = claim_batch(size)
                total += len(claim.messages)
                if claim.messages:
                    pending.append(start_sending(claim))
                    last_work = time.monotonic()
                    if len(claim.messages) < size:
                        next_claim = last_work + gather
                if after_batch is not None:
                    after_batch(Batch(len(claim.messages), claim.waiting, claim.retry_at))
            if claim is not None and claim.messages:
                while pending and pending[0].done():  # record what is done, without waiting
                    _finish(pending.pop(0), pending)
                continue
            if pending:  # nothing more to claim now: the oldest batch is recorded when done
                _finish(pending.pop(0), pending)
                last_work = time.monotonic()
                continue
            now, idle = time.monotonic(), False
            if claim is not None and claim.waiting and now < deadline:
                time.sleep(_until(claim.retry_at))
            elif now - last_work < linger and now < deadline:
                idle = True
                time.sleep(POLL)
            else:
                return total
    finally:
        _finish_all(pending)  # an error on the way: what was sent is still recorded


def _finish(sending: Sending, pending: list[Sending]) -> None:
    """Record a batch; the campaigns of the batches still pending are refreshed with them."""
    later = frozenset(m.campaign_id for batch in pending for m in batch.messages)
    record_batch(sending.messages, finish_sending(sending), later)


def _finish_all(pending: list[Sending]) -> None:
    """Record every batch still on its way, each whatever happens to the others (an error on
    the way out must not leave the next batches `sending`), each refreshing its campaigns."""
    while pending:
        try:
            _finish(pending.pop(0), [])
        except Exception:
            logger.exception("could not record a sent batch: its messages become unknown")


def _until(moment: datetime | None) -> float:
    """Seconds to wait for `moment` (a few milliseconds at least, a tenth of a second at most:
    another worker may take the freed budget, or free some sooner)."""
    if moment is None:
        return 0.1
    return min(max((moment - timezone.now()).total_seconds(), 0.005), 0.1)
