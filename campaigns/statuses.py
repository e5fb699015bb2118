"""A message's statuses, written once: the statuses, the moves allowed between them, and the
groups that pages, the API, reports, sweeps and retention read.

::

    scheduled → queued → sending → sent → delivered
                  ↑          │        └──→ undelivered | expired | failed   (delivery reports)
                  │          ├→ retrying (backoff) → queued      (temporary error; then failover)
                  └──────────├  (the provider refused the provider account: it is put on hold)
                             ├→ failed (refused, or retries spent)   blocked (opted out)
                             └→ unknown (no result in time: never resent blindly)
    canceled (a waiting message of a canceled campaign)   expired (its send window ended)

Delivery reports only move a message forward (`RANK`): a late `sent` never overwrites
`delivered`. Every write of a status goes through `campaigns.services.lifecycle`, which refuses
a move this table does not allow.
"""

from django.db import models
from django.utils.translation import pgettext_lazy


class Status(models.TextChoices):
    SCHEDULED = "scheduled", pgettext_lazy("message status", "Scheduled")
    QUEUED = "queued", pgettext_lazy("message status", "Queued")
    SENDING = "sending", pgettext_lazy("message status", "Sending")
    RETRYING = "retrying", pgettext_lazy("message status", "Retrying")
    SENT = "sent", pgettext_lazy("message status", "Sent")
    DELIVERED = "delivered", pgettext_lazy("message status", "Delivered")
    UNDELIVERED = "undelivered", pgettext_lazy("message status", "Undelivered")
    EXPIRED = "expired", pgettext_lazy("message status", "Expired")
    FAILED = "failed", pgettext_lazy("message status", "Failed")
    BLOCKED = "blocked", pgettext_lazy("message status", "Blocked")
    CANCELED = "canceled", pgettext_lazy("message status", "Canceled")
    UNKNOWN = "unknown", pgettext_lazy("message status", "Unknown")


S = Status

# --- groups ----------------------------------------------------------------------------------
# Not handed to a provider yet: what a send window, a pause or a cancel still acts on.
WAITING = frozenset({S.SCHEDULED, S.QUEUED, S.RETRYING})
CANCELABLE = WAITING
# On its way: waiting, or being handed to a provider now (the queue; retention keeps these).
ON_ITS_WAY = WAITING | {S.SENDING}
# It may still be sent, or sent again (on request, when its outcome is unknown).
MAY_STILL_BE_SENT = ON_ITS_WAY | {S.UNKNOWN}
# A provider may still report on it: a reused provider id names these first.
AWAITING_REPORT = frozenset({S.SENDING, S.SENT, S.UNKNOWN})
# Nothing more will happen to it (forwarded to the account's URL when reached).
FINAL = frozenset({S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.FAILED, S.BLOCKED, S.CANCELED})
# A provider took it.
ACCEPTED = frozenset({S.SENT, S.DELIVERED, S.UNDELIVERED})
# Counted as failed in statistics: it did not reach the phone.
NOT_DELIVERED = frozenset({S.FAILED, S.UNDELIVERED, S.EXPIRED})
# What a message may be created as: waiting; blocked (opted out); already being sent (a
# command sending at once); already sent (a one-time code its provider sent itself).
INITIAL = WAITING - {S.RETRYING} | {S.BLOCKED, S.SENDING, S.SENT}

# How far along a message is: a delivery report only moves a message to a higher rank.
RANK = {
    S.SCHEDULED: 0,
    S.QUEUED: 0,
    S.RETRYING: 0,
    S.SENDING: 1,
    S.UNKNOWN: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.UNDELIVERED: 3,
    S.EXPIRED: 3,
    S.FAILED: 3,
    S.BLOCKED: 3,
    S.CANCELED: 3,
}

# --- the moves allowed -----------------------------------------------------------------------
# What a provider's delivery report may say (`DeliveryStatus`).
REPORTED = frozenset({S.SENT, S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.FAILED})


def _reports_from(status: Status) -> frozenset[Status]:
    """The reports that move a message on from `status`: those further along. A report may
    come for a message queued again (a resend of one whose outcome was unknown, or back from a
    held provider account): the provider had it after all."""
    return frozenset(to for to in REPORTED if RANK[to] > RANK[status])


MOVES: dict[Status, frozenset[Status]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.EXPIRED, S.CANCELED}),
    S.QUEUED: frozenset({S.SENDING, S.EXPIRED, S.CANCELED}) | _reports_from(S.QUEUED),
    S.RETRYING: frozenset({S.QUEUED, S.EXPIRED, S.CANCELED}) | _reports_from(S.RETRYING),
    S.SENDING: frozenset(
        {
            S.SENT,  # accepted
            S.RETRYING,  # a temporary error, or failing over
            S.QUEUED,  # the provider refused the provider account: it waits or fails over
            S.FAILED,  # refused, retries spent, or no route
            S.BLOCKED,  # opted out meanwhile
            S.CANCELED,  # its campaign was canceled meanwhile
            S.UNKNOWN,  # no result in time
        }
    )
    | _reports_from(S.SENDING),  # a report that overtook the send result
    S.SENT: _reports_from(S.SENT),
    S.UNKNOWN: frozenset({S.QUEUED}) | _reports_from(S.UNKNOWN),  # resent on request
    **{final: frozenset() for final in FINAL},
}


def allowed(from_status: str, to_status: str) -> bool:
    return to_status in MOVES[Status(from_status)]
