"""What flows between the hub and an adapter: frozen, provider-neutral records.

Every event keeps the provider's own payload in `raw`, so nothing the provider said is lost.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    """What a provider can tell us about a message; the values are the hub's message statuses."""

    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboundSMS:
    """One SMS to send. `reference` is the hub's own message id."""

    to: str
    text: str
    reference: str = ""
    sender: str = ""
    callback_url: str = ""
    campaign_name: str = ""
    category: str = ""
    send_at: datetime | None = None
    # A send window (SMSAdvert's startDate/endDate): not before start, not after end.
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT
    cost: Decimal | None = None
    raw: Any = None


@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime | None = None
    error_code: str = ""
    error_reason: str = ""
    raw: Any = field(default=None, compare=False)
    # The number the message went to, as the report gives it (Twilio-style `To`): what matches a
    # report to its message for providers whose send gives no id (`reports_match_by_number`).
    to_number: str = ""


@dataclass(frozen=True)
class InboundSMS:
    from_number: str
    to_number: str
    text: str
    provider_message_id: str = ""
    in_reply_to: str = ""
    received_at: datetime | None = None
    raw: Any = field(default=None, compare=False)
