"""Campaign control: pause, resume and cancel a campaign, and count its messages by status.

Pausing changes only the campaign: the dispatcher never claims a paused campaign's messages, so
they wait as they are (scheduled, queued, retrying) until the campaign is resumed. Canceling
commits the campaign's status first (the dispatcher never claims a canceled campaign's messages
either), then moves every message still waiting to `canceled`, in chunks, the last ones by a
worker for a large campaign; a message a worker already claimed (`sending`) is not touched and
finishes normally.

Every action locks the campaign row first (`select_for_update`), so two staff members acting on
the same campaign at once are served one after the other. A campaign whose messages are still
being written (`importing`) refuses all three: it starts by itself once its whole list is in.
"""

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy

from campaigns import statuses
from campaigns.models import Campaign, Forward, Message, MessageEvent

from . import compose, forwarding, lifecycle, monitoring, rows, wake

logger = logging.getLogger(__name__)

CampaignStatus = Campaign.Status
Status = Message.Status

PAUSABLE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING})
CANCELABLE = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}
)

CANCEL_DETAIL = "Campaign canceled."


class CampaignStateError(ValueError):
    """The campaign's status does not allow what was asked; the message says why."""


def _lock(campaign: Campaign) -> Campaign:
    """The campaign's row, locked until the end of the transaction, with its current status."""
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _set_status(campaign: Campaign, locked: Campaign, status: str) -> None:
    Campaign.objects.filter(pk=locked.pk).update(status=status)
    campaign.status = locked.status = status


# Why an action is refused, one sentence each (shown to staff, in their language).
REFUSED_WHILE_IMPORTING = {
    "pause": gettext_lazy(
        "Campaign “%(name)s” cannot be paused while its numbers are being imported: "
        "wait until the import is over (the campaign then starts by itself)."
    ),
    "resume": gettext_lazy(
        "Campaign “%(name)s” cannot be resumed while its numbers are being imported: "
        "wait until the import is over (the campaign then starts by itself)."
    ),
    "cancel": gettext_lazy(
        "Campaign “%(name)s” cannot be canceled while its numbers are being imported: "
        "wait until the import is over (the campaign then starts by itself)."
    ),
}
REFUSED = {
    "pause": gettext_lazy(
        "Campaign “%(name)s” cannot be paused: its status is %(status)s. "
        "Only scheduled or running campaigns can be paused."
    ),
    "resume": gettext_lazy(
        "Campaign “%(name)s” cannot be resumed: its status is %(status)s. "
        "Only paused campaigns can be resumed."
    ),
    "cancel": gettext_lazy(
        "Campaign “%(name)s” cannot be canceled: its status is %(status)s. "
        "Only draft, scheduled, running or paused campaigns can be canceled."
    ),
}


def _refuse(campaign: Campaign, action: str) -> CampaignStateError:
    if campaign.status == CampaignStatus.IMPORTING:
        return CampaignStateError(REFUSED_WHILE_IMPORTING[action] % {"name": campaign.name})
    return CampaignStateError(
        REFUSED[action]
        % {"name": campaign.name, "status": str(campaign.get_status_display()).lower()}
    )


def pause(campaign: Campaign, by: AbstractBaseUser | None = None) -> Campaign:
    """Stop sending a scheduled or running campaign; its waiting messages wait, unchanged."""
    with transaction.atomic():
        locked = _lock(campaign)
        if locked.status not in PAUSABLE:
            raise _refuse(locked, "pause")
        previous = locked.status
        _set_status(campaign, locked, CampaignStatus.PAUSED)
        monitoring.note_control(campaign, by, previous, CampaignStatus.PAUSED)
    logger.info("campaign paused: campaign=%s from=%s by=%s", campaign.pk, previous, by)
    return campaign


def resume(campaign: Campaign, by: AbstractBaseUser | None = None) -> Campaign:
    """Send a paused campaign's waiting messages again, starting now.

    The campaign becomes running (completed at once if nothing is left to send) and the
    dispatcher is nudged once the change is committed.
    """
    with transaction.atomic():
        locked = _lock(campaign)
        if locked.status != CampaignStatus.PAUSED:
            raise _refuse(locked, "resume")
        _set_status(campaign, locked, CampaignStatus.RUNNING)
        monitoring.note_control(campaign, by, CampaignStatus.PAUSED, CampaignStatus.RUNNING)
        # Looked up when the callback runs, so that tests can replace it.
        transaction.on_commit(lambda: compose.nudge_dispatcher(), robust=True)
    logger.info("campaign resumed: campaign=%s by=%s", campaign.pk, by)
    # Everything may have finished while it was paused: then there is nothing to resume.
    refresh_status(campaign)
    return campaign


# A cancel moves its campaign's waiting messages CANCEL_CHUNK at a time, each chunk in a
# transaction of its own, so that no transaction locks a million rows for a minute: up to
# CANCEL_IN_REQUEST of them while the staff member waits (a few seconds), the rest by a worker
# (`campaigns.cancel_waiting`). None of them is sent meanwhile: the campaign's status is
# committed first, and no worker claims a canceled campaign's messages (`claim.due_filter`).
CANCEL_CHUNK = 10_000
CANCEL_IN_REQUEST = 50_000
CANCEL_TASK = "campaigns.cancel_waiting"
# Campaigns canceled this recently are looked at by the sweep for messages left waiting (a
# worker killed while canceling them, a message put back in the queue meanwhile: a provider's
# refusal retried, which happens within `SMSHUB_SENDING_TIMEOUT` of its claim).
CANCEL_SWEEP_WITHIN = timedelta(hours=1)
CANCEL_RUNNING = "smshub:cancel-waiting:{pk}"


def cancel(campaign: Campaign, by: AbstractBaseUser | None = None) -> int:
    """Cancel the campaign and every message of it not yet handed to a provider.

    Returns how many messages were canceled, or are being canceled by a worker: none of them is
    sent. Each gets a timeline event. Messages `sending` (claimed by a worker before the cancel
    was committed) or further along are left alone and finish normally.

    The campaign's status is written and committed first: from then on no worker claims its
    messages. Its waiting messages then move in chunks (`cancel_waiting_messages`), the first
    `CANCEL_IN_REQUEST` here, the rest by a worker.
    """
    with transaction.atomic():
        locked = _lock(campaign)
        if locked.status not in CANCELABLE:
            raise _refuse(locked, "cancel")
        previous = locked.status
        _set_status(campaign, locked, CampaignStatus.CANCELED)
        # Also what the sweep reads to find recent cancels (`finish_cancels`).
        monitoring.note_control(campaign, by, previous, CampaignStatus.CANCELED)
    canceled = cancel_waiting_messages(campaign, at_most=CANCEL_IN_REQUEST)
    left = 0
    if canceled >= CANCEL_IN_REQUEST:
        left = _waiting(campaign.pk).count()
        if left:
            _continue_cancel(campaign)
    logger.info(
        "campaign canceled: campaign=%s from=%s messages_canceled=%s left_to_a_worker=%s by=%s",
        campaign.pk,
        previous,
        canceled,
        left,
        by,
    )
    return canceled + left


def _waiting(campaign_id):
    """The messages a cancel moves, of the campaign `campaign_id` (an id or an `OuterRef`)."""
    return Message.objects.filter(campaign_id=campaign_id, status__in=statuses.CANCELABLE)


def cancel_waiting_messages(campaign: Campaign, at_most: int | None = None) -> int:
    """Cancel the waiting messages of a canceled campaign, `CANCEL_CHUNK` at a time, each chunk
    in a transaction of its own, until none is left (or `at_most` were canceled); returns how
    many were. Each chunk's messages are locked (SELECT ... FOR UPDATE) and moved, with their
    events and forwards; on SQLite a chunk's transaction holds the database's write lock."""
    total = 0
    while at_most is None or total < at_most:
        now = timezone.now()
        with transaction.atomic():
            waiting = list(
                _waiting(campaign.pk)
                .select_for_update()
                .order_by()
                .values_list("id", "status", "account_id", "recipient")[:CANCEL_CHUNK]
            )
            moved = lifecycle.cancel_waiting(
                [(message_id, status) for message_id, status, _, _ in waiting],
                now,
                source=MessageEvent.Source.STAFF,
                detail=CANCEL_DETAIL,
            )
            _forward_canceled(campaign, waiting, now)
        total += moved
        if moved < CANCEL_CHUNK:  # the last chunk (or none moved: locked rows, another canceler)
            break
    return total


def _continue_cancel(campaign: Campaign) -> bool:
    """Have a worker cancel what is left of `campaign`, unless one was asked to within the last
    minute (its mark lasts about as long as a worker takes to cancel a million messages);
    whether one was asked now."""
    mark = CANCEL_RUNNING.format(pk=campaign.pk)
    if not cache.add(mark, 1, timeout=60):
        return False
    try:
        wake.wake(CANCEL_TASK, campaign.pk)
    except Exception:  # the broker cannot take it: the sweep asks again once it can
        cache.delete(mark)
        logger.warning(
            "campaign %s: could not ask a worker to cancel its last messages: the sweep will",
            campaign.pk,
            exc_info=True,
        )
        return False
    return True


def finish_cancel(campaign_id: int) -> int:
    """What the worker's `campaigns.cancel_waiting` does: cancel every message still waiting in
    the canceled campaign `campaign_id`; returns how many."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.CANCELED).first()
    if campaign is None:
        return 0
    try:
        canceled = cancel_waiting_messages(campaign)
    finally:
        cache.delete(CANCEL_RUNNING.format(pk=campaign_id))
    logger.info("campaign canceled: campaign=%s messages_canceled_after=%s", campaign_id, canceled)
    return canceled


def finish_cancels() -> int:
    """The sweep's part: a worker for each campaign canceled within `CANCEL_SWEEP_WITHIN` that
    still has waiting messages (a worker killed while canceling them, a message put back in the
    queue after the cancel); returns how many workers were asked now."""
    recent = monitoring.canceled_since(timezone.now() - CANCEL_SWEEP_WITHIN)
    if not recent:
        return 0
    left = Campaign.objects.filter(pk__in=recent, status=CampaignStatus.CANCELED).filter(
        Exists(_waiting(OuterRef("pk")))
    )
    return sum(_continue_cancel(campaign) for campaign in left.only("pk"))


def _forward_canceled(campaign: Campaign, waiting: list[tuple], now) -> None:
    """Canceled is a final status: the account's forwarding URL hears of each, as `transition`
    would tell it, in one insert (`rows.insert_alike`: the rows differ by their payload)."""
    if not waiting or not campaign.account.forward_url:
        return
    payloads = [
        forwarding.status_payload(message_id, recipient, Status.CANCELED.value, at=now)
        for message_id, _, _, recipient in waiting
    ]
    template = Forward(account_id=campaign.account_id, event="status", payload={})
    rows.insert_alike(template, {"payload": payloads})


def counts(campaign: Campaign) -> dict[str, int]:
    """How many of the campaign's messages are in each status (every status, 0 when none),
    plus "total". One GROUP BY query."""
    result = dict.fromkeys(Status.values, 0)
    rows = (
        Message.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    for status, n in rows:
        result[status] = n
    # Messages purged by retention (campaigns.services.retention) still count.
    for status, n in (campaign.archived_counts or {}).items():
        result[status] = result.get(status, 0) + n
    result["total"] = sum(result.values())
    return result


def refresh_status(campaign: Campaign) -> bool:
    """A scheduled campaign none of whose messages is still scheduled becomes running, and a
    running campaign with no message left to send (or being sent) becomes completed.

    Conditional UPDATEs, so it is safe to call from any worker at any time. Returns whether
    the campaign was completed by this call.
    """
    still_scheduled = Message.objects.filter(campaign=OuterRef("pk"), status=Status.SCHEDULED)
    # A campaign never goes back to scheduled: seen otherwise, it is not scheduled now.
    started = campaign.status == CampaignStatus.SCHEDULED and (
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED)
        .exclude(Exists(still_scheduled))
        .update(status=CampaignStatus.RUNNING)
    )
    if started:
        campaign.status = CampaignStatus.RUNNING
        logger.info("campaign started: campaign=%s", campaign.pk)
    unfinished = Message.objects.filter(campaign=OuterRef("pk"), status__in=statuses.ON_ITS_WAY)
    completed = (
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING)
        .exclude(Exists(unfinished))
        .update(status=CampaignStatus.COMPLETED)
    )
    if completed:
        campaign.status = CampaignStatus.COMPLETED
        logger.info("campaign completed: campaign=%s", campaign.pk)
    return bool(completed)
