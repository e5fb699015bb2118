"""What providers tell us about our messages: delivery reports, applied idempotently.

A report only moves a message forward (see `statuses.RANK`); the same report twice changes
nothing. A report for a provider id no message has yet (it can overtake the send result) is kept
as a `PendingDeliveryReport` and applied as soon as a message gets that id.

Providers reuse their ids (Primotexto's `snapshotId` has 6 digits), so an id may name several
messages of one provider account: a report is for the one still awaiting a report, the newest
otherwise (`match`).

A provider whose send answer gives no id (`BaseProvider.reports_match_by_number`: Expertflow)
has its reports matched by the number they carry (`by_number`): a report no id matches goes to
the oldest message of that provider account to that number still awaiting a report and named by
no id, handed to the provider within `SMSHUB_DLR_NUMBER_WINDOW_HOURS`; its timeline says so.
That message is locked while the report is applied, so two reports for two messages to one
number go to two messages, oldest first. A report carrying an id as well gives the message that
id: the same report again, and later ones about that message, find it by id. A report without
an id cannot be told from another one for the same number: replaying a stored request changes
nothing, but a provider posting the same id-less report twice moves the next message awaiting
one. Reports that still match nothing wait as unmatched (admin, the dashboard) until retention
purges them.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from campaigns import statuses
from campaigns.models import Account, Message, MessageEvent, PendingDeliveryReport, WebhookRequest
from campaigns.phone import normalize_msisdn
from providers.events import DeliveryReport, DeliveryStatus
from providers.models import ProviderAccount

from .lifecycle import Moves, note, transition

logger = logging.getLogger(__name__)

Status = Message.Status


class Applied(StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # a duplicate, or older news than what the message already says
    PENDING = "pending"  # no message with that provider id yet


def apply_delivery_report(
    provider_account: ProviderAccount,
    report: DeliveryReport,
    webhook_request: WebhookRequest | None = None,
) -> Applied:
    message = _message(provider_account, report.provider_message_id)
    if message is None and report.to_number and matches_by_number(provider_account):
        outcome = _apply_by_number(provider_account, report, webhook_request)
        if outcome is not None:
            return outcome
    if message is None:
        if _kept_before(provider_account, report, webhook_request).exists():
            return Applied.PENDING  # a replayed request: its report already waits
        PendingDeliveryReport.objects.create(
            provider_account=provider_account,
            provider_message_id=report.provider_message_id,
            recipient=_number(report.to_number) or report.to_number[:RECIPIENT_LENGTH],
            status=report.status,
            occurred_at=report.occurred_at,
            error_code=report.error_code,
            error_reason=report.error_reason,
            raw=report.raw,
            webhook_request=webhook_request,
        )
        # The send result may have been recorded while we stored this: look once more.
        if _message(provider_account, report.provider_message_id) is None:
            logger.info(
                "delivery report waits for its message: provider=%s id=%s status=%s",
                provider_account.name,
                report.provider_message_id or "(none)",
                report.status,
            )
            return Applied.PENDING
        return (
            Applied.CHANGED
            if apply_pending_reports(provider_account, report.provider_message_id)
            else Applied.UNCHANGED
        )
    return (
        Applied.CHANGED
        if apply_to_message(message, provider_account, report)
        else Applied.UNCHANGED
    )


# --- matching by number ------------------------------------------------------------------------
# The statuses a message awaits a report by number in, written as the partial index
# `message_awaiting_number_idx` has them (so that the database uses it); a message still
# `sending` (a report that overtook the send result) is looked for after those.
BY_NUMBER = Q(status=statuses.Status.SENT) | Q(status=statuses.Status.UNKNOWN)
RECIPIENT_LENGTH = PendingDeliveryReport._meta.get_field("recipient").max_length


def matches_by_number(provider_account: ProviderAccount) -> bool:
    """Whether the provider account's reports are matched by number (its send gives no id)."""
    try:
        return provider_account.adapter_class.reports_match_by_number
    except ImproperlyConfigured:  # a provider kind no longer installed
        return False


def number_window() -> timedelta | None:
    """How long after a message was handed to its provider a report may match it by number;
    None when matching by number is off (`SMSHUB_DLR_NUMBER_WINDOW_HOURS` 0)."""
    hours = settings.SMSHUB_DLR_NUMBER_WINDOW_HOURS
    return timedelta(hours=hours) if hours > 0 else None


def by_number(
    provider_account: ProviderAccount, number: str, now: datetime | None = None
) -> Message | None:
    """The message a report to `number` is for: of that provider account, named by no id,
    still awaiting a report, handed to the provider within the window, the oldest first.

    Locked until the transaction ends (PostgreSQL): a concurrent report for the same number
    waits, then takes the next one. One indexed query (`message_awaiting_number_idx`).
    """
    window = number_window()
    if window is None:
        return None
    candidates = awaiting_by_number(provider_account, number, (now or timezone.now()) - window)
    if connection.features.has_select_for_update:
        candidates = candidates.select_for_update(no_key=True, of=("self",))
    for awaiting in (BY_NUMBER, Q(status=statuses.Status.SENDING)):
        message = candidates.filter(awaiting).order_by("claimed_at", "id").first()
        if message is not None:
            return message
    return None


def awaiting_by_number(
    provider_account: ProviderAccount, number: str, since: datetime
) -> QuerySet[Message]:
    """Messages of the provider account to `number`, named by no id, handed to the provider
    since `since` (the statuses are `by_number`'s)."""
    return _with_account(
        Message.objects.filter(
            provider_account=provider_account,
            recipient=number,
            provider_message_id="",
            claimed_at__gte=since,
        )
    )


def _number(value: str) -> str | None:
    """`value` as the E.164 number messages are stored with, or None when it is not one."""
    if not value or len(value) > RECIPIENT_LENGTH:
        return None
    try:
        return normalize_msisdn(value)
    except ValidationError:
        return None


def _apply_by_number(
    provider_account: ProviderAccount,
    report: DeliveryReport,
    webhook_request: WebhookRequest | None,
) -> Applied | None:
    """Apply a report no id matched to the message awaiting one to its number; None when no
    message awaits one (the report is then kept as unmatched)."""
    number = _number(report.to_number)
    if number is None:
        return None
    if not report.provider_message_id and _applied_before(webhook_request):
        # A stored request replayed: its report went to a message the first time, and without
        # an id, matching again would give it to the next one.
        return Applied.UNCHANGED
    # The caller's transaction, if any (the lock is held until it ends): no savepoint.
    with transaction.atomic(savepoint=False):
        message = by_number(provider_account, number)
        if report.provider_message_id and connection.features.has_select_for_update:
            # Another worker's report with that id may have named its message since we looked
            # (SQLite has one writer at a time: nothing can have changed there).
            named = _message(provider_account, report.provider_message_id)
            if named is not None:
                changed = apply_to_message(named, provider_account, report)
                return Applied.CHANGED if changed else Applied.UNCHANGED
        if message is None:
            return None
        how = (
            f"Matched by number {number}: {provider_account.adapter_class.display_name} gives no "
            "message id, so a report goes to the oldest message awaiting one to that number."
        )
        fields: dict[str, Any] = {}
        if report.provider_message_id:
            how += f" Its id {report.provider_message_id} now names this message."
            fields["provider_message_id"] = report.provider_message_id
        if message.status == statuses.Status.SENDING and message.sent_at is None:
            fields["sent_at"] = timezone.now()  # accepted: the provider reports on it
        changed = apply_to_message(message, provider_account, report, how=how, **fields)
        if not changed and report.provider_message_id:
            # Old news for its status (`sent`), still the message's id from now on.
            named_now = Message.objects.filter(pk=message.pk, provider_message_id="").update(
                provider_message_id=report.provider_message_id, updated_at=timezone.now()
            )
            if named_now:
                note(
                    message,
                    source=MessageEvent.Source.WEBHOOK,
                    detail=f"Delivery report from {provider_account.name}: {report.status}. {how}",
                    payload=report.raw,
                )
        if webhook_request is not None and webhook_request.status != WebhookRequest.Status.RECEIVED:
            # A replayed request that waited as unmatched: it is matched now.
            _kept_before(provider_account, report, webhook_request).delete()
        logger.info(
            "delivery report matched by number: provider=%s message=%s status=%s",
            provider_account.name,
            message.pk,
            report.status,
        )
        return Applied.CHANGED if changed else Applied.UNCHANGED


def _applied_before(webhook_request: WebhookRequest | None) -> bool:
    """Whether this stored request was applied already (it is being replayed)."""
    if webhook_request is None or webhook_request.pk is None:
        return False
    if webhook_request.status == WebhookRequest.Status.RECEIVED:
        return False  # the first time: no query
    # What is in memory may be a failed batch's outcome, rolled back: the database says.
    return WebhookRequest.objects.filter(
        pk=webhook_request.pk, status=WebhookRequest.Status.APPLIED
    ).exists()


def _kept_before(
    provider_account: ProviderAccount,
    report: DeliveryReport,
    webhook_request: WebhookRequest | None,
):
    """The unmatched report a replayed request left the first time (none for a new request)."""
    if (
        webhook_request is None
        or webhook_request.pk is None
        or webhook_request.status == WebhookRequest.Status.RECEIVED
    ):
        return PendingDeliveryReport.objects.none()
    return PendingDeliveryReport.objects.filter(
        webhook_request=webhook_request,
        provider_account=provider_account,
        provider_message_id=report.provider_message_id,
        status=report.status,
    )


def apply_pending_reports(provider_account: ProviderAccount, provider_message_id: str) -> int:
    """Apply the reports that were waiting for this provider id; returns how many changed it."""
    pending = list(
        PendingDeliveryReport.objects.filter(
            provider_account=provider_account, provider_message_id=provider_message_id
        ).order_by("id")
    )
    if not pending:
        return 0
    message = _message(provider_account, provider_message_id)
    if message is None:
        return 0
    changed = 0
    for item in pending:
        report = DeliveryReport(
            provider_message_id=item.provider_message_id,
            status=DeliveryStatus(item.status),
            occurred_at=item.occurred_at,
            error_code=item.error_code,
            error_reason=item.error_reason,
            raw=item.raw,
            to_number=item.recipient,
        )
        changed += apply_to_message(message, provider_account, report)
    PendingDeliveryReport.objects.filter(id__in=[item.id for item in pending]).delete()
    return changed


def _with_account(messages: QuerySet[Message]) -> QuerySet[Message]:
    """`messages` with their account, but not its forward secret: applying a report never needs
    it, and it is decrypted on loading (a sixteenth of a batch's CPU, once per message)."""
    return messages.select_related("account").defer("account__forward_secret")


def _by_preference():
    """Messages awaiting a report first, then the newest."""
    awaiting = Case(
        When(status__in=statuses.AWAITING_REPORT, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return (awaiting, "-id")


def _message(provider_account: ProviderAccount, provider_message_id: str) -> Message | None:
    if not provider_message_id:
        return None
    messages = Message.objects.filter(
        provider_account=provider_account, provider_message_id=provider_message_id
    )
    return _with_account(messages).order_by(*_by_preference()).first()


def match(
    provider_account_ids: Iterable[int], provider_message_ids: Iterable[str]
) -> dict[tuple[int, str], Message]:
    """The message each (provider account, provider id) names, for many reports in one query:
    where an id was reused, the message awaiting a report, else the newest."""
    found: dict[tuple[int, str], Message] = {}
    messages = list(
        Message.objects.filter(
            provider_account__in=set(provider_account_ids),
            provider_message_id__in=set(provider_message_ids) - {""},
        ).order_by(*_by_preference())
    )
    # One instance per account for the batch, as `_with_account` reads it, rather than one
    # per message (a batch's messages nearly all share one account).
    accounts = Account.objects.defer("forward_secret").in_bulk({m.account_id for m in messages})
    for message in messages:
        message.account = accounts[message.account_id]
        found.setdefault((message.provider_account_id, message.provider_message_id), message)
    return found


def apply_to_message(
    message: Message,
    provider_account: ProviderAccount,
    report: DeliveryReport,
    moves: Moves | None = None,
    *,
    how: str = "",
    **fields: Any,
) -> bool:
    """Apply a report to its message if it moves the message forward; True when it did.
    `how` says on the timeline how the report was matched; `fields` are written with the move.
    With `moves`, the move is added to that batch (True: it moves the message unless another
    writer does first, which `moves.write()` tells)."""
    to_status = Status(report.status)
    if statuses.RANK[to_status] <= statuses.RANK[Status(message.status)]:
        return False
    if report.status == DeliveryStatus.DELIVERED:
        fields["delivered_at"] = report.occurred_at or timezone.now()
    if report.error_code or report.error_reason:
        fields.update(error_code=report.error_code, error_reason=report.error_reason)
    detail = f"Delivery report from {provider_account.name}: {report.status}."
    if report.error_code:
        detail += f" ({report.error_code})"
    if how:
        detail += f" {how}"
    if moves is not None:
        moves.move(
            message,
            to_status,
            source=MessageEvent.Source.WEBHOOK,
            detail=detail,
            payload=report.raw,
            **fields,
        )
        return True
    return transition(
        message,
        to_status,
        source=MessageEvent.Source.WEBHOOK,
        detail=detail,
        payload=report.raw,
        **fields,
    )
