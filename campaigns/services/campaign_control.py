"""Campaign control: pause, resume and cancel a campaign, and count its messages by status.

Pausing changes only the campaign: the dispatcher never claims a paused campaign's messages, so
they wait as they are (scheduled, queued, retrying) until the campaign is resumed. Canceling
moves every message still waiting to `canceled`; a message a worker already claimed (`sending`)
is not touched and finishes normally.

Every action locks the campaign row first (`select_for_update`), so two staff members acting on
the same campaign at once are served one after the other. A campaign whose messages are still
being written (`importing`) refuses all three: it starts by itself once its whole list is in.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy

from campaigns import statuses
from campaigns.models import Campaign, Forward, Message, MessageEvent

from . import compose, forwarding, lifecycle, monitoring, rows

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


def cancel(campaign: Campaign, by: AbstractBaseUser | None = None) -> int:
    """Cancel the campaign and every message of it not yet handed to a provider.

    Returns how many messages were canceled. Each gets a timeline event. Messages `sending`
    (claimed by a worker) or further along are left alone.

    The campaign row is written first: on SQLite that takes the database's write lock, so no
    worker can claim a message between our SELECT and our UPDATE; on PostgreSQL the waiting
    messages are locked with SELECT ... FOR UPDATE, and the dispatcher skips locked rows.
    Either way the rows we select are exactly the rows we update.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(campaign)
        if locked.status not in CANCELABLE:
            raise _refuse(locked, "cancel")
        previous = locked.status
        _set_status(campaign, locked, CampaignStatus.CANCELED)
        monitoring.note_control(campaign, by, previous, CampaignStatus.CANCELED)

        waiting = list(
            Message.objects.filter(campaign=locked, status__in=statuses.CANCELABLE)
            .select_for_update()
            .order_by()
            .values_list("id", "status", "account_id", "recipient")
        )
        canceled = lifecycle.cancel_waiting(
            [(message_id, status) for message_id, status, _, _ in waiting],
            now,
            source=MessageEvent.Source.STAFF,
            detail=CANCEL_DETAIL,
        )
        _forward_canceled(locked, waiting, now)
    logger.info(
        "campaign canceled: campaign=%s from=%s messages_canceled=%s by=%s",
        campaign.pk,
        previous,
        canceled,
        by,
    )
    return canceled


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
