"""Dispatch, the outbox pattern: claim due messages, send them outside any transaction, record.

The database is the source of truth. A worker claims a batch (`claim`, within the flood limits
of `limits`), sends it on its thread pool (`send`) and records what the providers answered
(`record`, `accepted`), batch after batch, pipelined (`loop`); beat's sweep does the rest
(`sweeps`). A crash after the claim leaves messages `sending`: past `SMSHUB_SENDING_TIMEOUT`
they become `unknown`, never resent blindly.
"""

from .claim import Claim, claim_batch, due_filter, forget_state
from .limits import HOUR, MINUTE
from .loop import Batch, dispatch_for
from .record import apply_waiting_reports, record, record_batch
from .send import Outcome, finish_sending, outbound, send_through, start_sending
from .sweeps import (
    due_count,
    expire_stuck_sending,
    expire_windows,
    promote_due,
    queued_since,
    resend,
)

__all__ = [
    "HOUR",
    "MINUTE",
    "Batch",
    "Claim",
    "Outcome",
    "apply_waiting_reports",
    "claim_batch",
    "dispatch_for",
    "due_count",
    "due_filter",
    "expire_stuck_sending",
    "expire_windows",
    "finish_sending",
    "forget_state",
    "outbound",
    "promote_due",
    "queued_since",
    "record",
    "record_batch",
    "resend",
    "send_through",
    "start_sending",
]
