"""The simulator provider: the hub's own fake SMS provider (see `server.py` for the other side).

Wire protocol: `POST {base}/simulator/messages` with `Authorization: Bearer <api_key>` and JSON
`{to, text, from, reference, callback_url}` → 201 `{"id", "status": "accepted"}`; later the
simulator POSTs `{"id", "status", "timestamp", "reference", "error_code"}` to `callback_url`.
Errors are classed by HTTP status (the protocol has no error words): 401 (a wrong key) is an
account problem, 400 a refusal of the message, 429 throttling, 5xx temporary.
"""

import json

import requests
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryReport, DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import ProviderRejected, WebhookValidationError
from providers.options import Credential


class SimulatorProvider(BaseProvider):
    slug = "simulator"
    display_name = "Simulator"
    required_credentials = ("api_key",)
    secret_credentials = frozenset({"api_key"})
    credentials_help = "api_key: the key the simulator was started with (--api-key)."
    credential_fields = (
        Credential(
            "api_key",
            _("API key"),
            help=_("The key the simulator was started with (--api-key)."),
            required=True,
            secret=True,
        ),
    )
    status_map = {
        "accepted": DeliveryStatus.SENT,
        "sent": DeliveryStatus.SENT,
        "delivered": DeliveryStatus.DELIVERED,
        "undelivered": DeliveryStatus.UNDELIVERED,
        "expired": DeliveryStatus.EXPIRED,
        "failed": DeliveryStatus.FAILED,
    }

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('api_key')}"}

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        return ProviderRequest(
            "POST",
            f"{self.base_url}/simulator/messages",
            headers=self._headers(),
            json={
                "to": sms.to,
                "text": sms.text,
                "from": sms.sender,
                "reference": sms.reference,
                "callback_url": sms.callback_url,
            },
        )

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        try:
            body = response.json()
            return SendResult(
                provider_message_id=str(body["id"]),
                status=self.map_status(body["status"]),
                raw=body,
            )
        except (ValueError, KeyError, TypeError, WebhookValidationError) as exc:
            raise ProviderRejected(
                f"unreadable answer from the simulator: {response.text[:200]}", raw=response.text
            ) from exc

    def check(self) -> str:
        self.call(
            ProviderRequest("GET", f"{self.base_url}/simulator/health", headers=self._headers())
        )
        return "the simulator answers and accepts the API key"

    def parse_delivery_reports(self, request) -> list[DeliveryReport]:
        items = _json_items(request, "delivery report")
        reports = []
        for item in items:
            if not isinstance(item, dict) or not item.get("id") or not item.get("status"):
                raise WebhookValidationError("a delivery report needs 'id' and 'status'")
            reports.append(
                DeliveryReport(
                    provider_message_id=str(item["id"]),
                    status=self.map_status(str(item["status"])),
                    occurred_at=_datetime(item.get("timestamp")),
                    error_code=str(item.get("error_code") or ""),
                    raw=item,
                )
            )
        return reports

    def parse_inbound(self, request) -> list[InboundSMS]:
        """Replies: `{"id", "from", "to", "text", "in_reply_to", "timestamp"}` (or a list)."""
        replies = []
        for item in _json_items(request, "reply"):
            if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
                raise WebhookValidationError("a reply needs 'id' and 'from'")
            replies.append(
                InboundSMS(
                    from_number=str(item["from"]),
                    to_number=str(item.get("to") or ""),
                    text=str(item.get("text") or ""),
                    provider_message_id=str(item["id"]),
                    in_reply_to=str(item.get("in_reply_to") or ""),
                    received_at=_datetime(item.get("timestamp")),
                    raw=item,
                )
            )
        return replies


def _json_items(request, what: str) -> list:
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise WebhookValidationError(f"the {what} is not JSON") from exc
    return body if isinstance(body, list) else [body]


def _datetime(value):
    try:
        return parse_datetime(str(value or ""))
    except ValueError:
        raise WebhookValidationError(f"unreadable timestamp {value!r}") from None
