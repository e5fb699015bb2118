"""Any gateway that calls back in the Twilio style: form-encoded delivery statuses
(`MessageSid` + `SmsStatus` or `MessageStatus`) and replies (`Body`, `From`, `To`, `SmsSid`).

A receive-only provider kind: give a gateway the account's webhook URLs and its callbacks reach
the hub like any provider's. Sending goes through a provider kind of its own; a message routed
here meets a configuration error (an account problem, with no HTTP call): the account is put on
hold with that explanation and the message fails over along its route, or waits.
"""

from typing import ClassVar

from django.http import HttpRequest

from .base import BaseProvider
from .events import DeliveryReport, DeliveryStatus, InboundSMS, OutboundSMS
from .exceptions import ProviderConfigurationError
from .expertflow import TWILIO_STATUS_MAP, parse_twilio_inbound, parse_twilio_status


class TwilioStyleProvider(BaseProvider):
    slug = "twilio"
    display_name = "Twilio-style gateway (callbacks only)"
    credentials_help = (
        "No keys needed; optional webhook_username / webhook_password to require basic auth."
    )
    status_map: ClassVar[dict[str, DeliveryStatus]] = TWILIO_STATUS_MAP

    def validate(self, sms: OutboundSMS) -> None:
        raise ProviderConfigurationError(
            "this Twilio-style gateway account only receives callbacks: take it out of sending "
            "routes and send through a provider account of the gateway's own kind",
            code="receive_only",
        )

    def check(self) -> str:
        return "receives callbacks only: nothing to connect to"

    def parse_delivery_reports(self, request: HttpRequest) -> list[DeliveryReport]:
        return [parse_twilio_status(request, status_map=self.status_map)]

    def parse_inbound(self, request: HttpRequest) -> list[InboundSMS]:
        return [parse_twilio_inbound(request)]
