"""What providers tell us about our messages: delivery reports, applied idempotently.

A report only moves a message forward (see `statuses.RANK`); the same report twice changes
nothing. A report for a provider id no message has yet (it can overtake the send result) is kept
as a `PendingDeliveryReport` and applied as soon as a message gets that id.

Providers reuse their ids (Primotexto's `snapshotId` has 6 digits), so an id may name several
messages of one provider account: a report is for the one still awaiting a report, the newest
otherwise (`match`).
"""

import logging
from collections.abc import Iterable
from enum import StrEnum

from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from campaigns import statuses
from campaigns.models import Message, MessageEvent, PendingDeliveryReport, WebhookRequest
from providers.events import DeliveryReport, DeliveryStatus
from providers.models import ProviderAccount

from .lifecycle import transition

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
    if message is None:
        PendingDeliveryReport.objects.create(
            provider_account=provider_account,
            provider_message_id=report.provider_message_id,
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
                report.provider_message_id,
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
        )
        changed += apply_to_message(message, provider_account, report)
    PendingDeliveryReport.objects.filter(id__in=[item.id for item in pending]).delete()
    return changed


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
    return (
        Message.objects.filter(
            provider_account=provider_account, provider_message_id=provider_message_id
        )
        .select_related("account")
        .order_by(*_by_preference())
        .first()
    )


def match(
    provider_account_ids: Iterable[int], provider_message_ids: Iterable[str]
) -> dict[tuple[int, str], Message]:
    """The message each (provider account, provider id) names, for many reports in one query:
    where an id was reused, the message awaiting a report, else the newest."""
    found: dict[tuple[int, str], Message] = {}
    messages = (
        Message.objects.filter(
            provider_account__in=set(provider_account_ids),
            provider_message_id__in=set(provider_message_ids) - {""},
        )
        .select_related("account")
        .order_by(*_by_preference())
    )
    for message in messages:
        found.setdefault((message.provider_account_id, message.provider_message_id), message)
    return found


def apply_to_message(
    message: Message,
    provider_account: ProviderAccount,
    report: DeliveryReport,
    events: list[MessageEvent] | None = None,
) -> bool:
    """Apply a report to its message if it moves the message forward; True when it did."""
    to_status = Status(report.status)
    if statuses.RANK[to_status] <= statuses.RANK[Status(message.status)]:
        return False
    fields = {}
    if report.status == DeliveryStatus.DELIVERED:
        fields["delivered_at"] = report.occurred_at or timezone.now()
    if report.error_code or report.error_reason:
        fields.update(error_code=report.error_code, error_reason=report.error_reason)
    detail = f"Delivery report from {provider_account.name}: {report.status}."
    if report.error_code:
        detail += f" ({report.error_code})"
    return transition(
        message,
        to_status,
        source=MessageEvent.Source.WEBHOOK,
        detail=detail,
        payload=report.raw,
        events=events,
        **fields,
    )
