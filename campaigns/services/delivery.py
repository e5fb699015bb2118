"""What providers tell us about our messages: delivery reports, applied idempotently."""

import logging

from django.utils import timezone

from campaigns.models import Message, MessageEvent
from providers.events import DeliveryReport, DeliveryStatus
from providers.models import ProviderAccount

from .lifecycle import RANK, transition

logger = logging.getLogger(__name__)

Status = Message.Status


def apply_delivery_report(provider_account: ProviderAccount, report: DeliveryReport) -> bool:
    """Move the reported message forward; a stale or repeated report changes nothing.

    Returns True when the message changed.
    """
    message = Message.objects.filter(
        provider_account=provider_account, provider_message_id=report.provider_message_id
    ).first()
    if message is None:
        logger.warning(
            "delivery report for an unknown message: provider=%s id=%s status=%s",
            provider_account.name,
            report.provider_message_id,
            report.status,
        )
        return False
    to_status = Status(report.status)
    if RANK[to_status] <= RANK[Status(message.status)]:
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
        **fields,
    )
