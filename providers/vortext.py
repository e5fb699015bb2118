"""Vortext (Cegedim): HTTP Basic auth, JSON in and out, replies pushed to us without auth.

Wire protocol (``../shared/provider-docs/vortext-cegedim.txt`` and NOTES.md):

- Base URL: ``https://messages.cloud.cegedim.com`` from the internet (the default here), or
  ``https://vortext.cloud.cegedim.com`` inside Cegedim's datacentres; the provider account's
  base URL decides. Every path below is appended to it.
- Every request carries HTTP Basic auth (``username:password`` of the provider account) and the
  headers ``Content-Type: application/json`` and ``Accept: application/json``.
- Send: ``POST {base}/sms`` with ``{"phoneNumber": "+33612345678", "message": "..."}``; a 2xx
  answer is a JSON object whose ``messageId`` is the provider's id of the message. (The send call
  is not in Vortext's doc; it is the one a public open-source client uses, see NOTES.md.)
- Health: ``GET {base}/status``, used by `check`.
- Replies (MO): Vortext POSTs, with **no authentication**,
  ``{"response": {"content": "...", "answeredAt": "2020-02-12T13:00:00.000+0000"},
  "message": {...the original message...}}`` to the URL registered with them. The hub's
  webhook URL carries an unguessable token: it is the only secret.
- Dates are ISO 8601 with a numeric offset written without a colon:
  ``2016-06-01T12:27:19.000+0200``.

Deliberate choices where the doc is silent or ambiguous:

- Sender: Vortext has one sender name per account, set up on their side through ITCare; a
  per-message sender is ignored by Vortext, so it is never sent (logged at debug level, not
  refused).
- Nor are ``callback_url``, ``reference``, ``campaign_name``, ``category``, ``send_at`` and the
  send window sent: the doc has no field for any of them. The hub itself holds a message until it
  is due, so ``send_at`` is already past when the adapter is called.
- Delivery reports: the doc defines no delivery-report push (only replies), so
  `parse_delivery_reports` keeps the base behaviour (a WebhookValidationError) and `status_map` is
  empty: Vortext documents no status words. A successful send is reported as ``sent``.
- Validation: the doc sets no length or charset limit, so none is invented. `validate` refuses an
  empty text (base rule) and a phone number that is not in international ``+<digits>`` form, the
  form of the send example.
- Send answer: a 2xx whose body is not a JSON object with a non-empty ``messageId`` (string or
  number) is refused as unreadable (ProviderRejected, not retried): the message may or may not
  have gone out, so it must not be resent blindly.
- Errors: the doc documents no error words or bodies, so they are classed by HTTP status
  (``errors`` is empty): 401/403 (Basic auth refused: "basic authentication is used for every
  request") and 402 are account problems (ProviderAccountError: the account is put on hold, no
  message fails for it); so is 404, because both paths are fixed: a 404 means the base URL is
  not Vortext's API, which would fail every message. 429 is throttling, 5xx and 408 temporary,
  other 4xx a refusal of the message. `describe_error` turns 401/403/404 into sentences an
  administrator can act on, and reads ``message``/``error``/``detail`` from a JSON error body
  when there is one (the usual shape of a Java REST service); otherwise the raw text is kept.
- `check` calls ``GET /status`` with the credentials. Whether that endpoint verifies them is not
  documented: a 401/403 there fails the check as an account problem, a 2xx only proves Vortext
  answers.
- Replies: the doc shows the original ``message`` as ``{ }`` without naming its fields. When it
  carries fields we read ``phoneNumber`` (the field name of the send request) as ``from_number``,
  since the reply comes from the person we wrote to, and ``messageId`` (the send answer's name),
  else ``id``, as ``in_reply_to``. When it names neither (the doc's own example ``{ }``, or
  ``message`` absent or null), the reply is kept all the same, from an unknown number: its
  ``from_number`` and ``in_reply_to`` are empty and the hub gives it to the one account sending
  through the provider account (see ``campaigns.services.inbound``). ``message`` of another type
  than an object is refused as malformed. ``to_number`` is left empty (the account's single
  sender is not in the payload) and so is ``provider_message_id`` (a reply has no id of its
  own). ``answeredAt`` is optional (missing → no time); present but unreadable → refused;
  without an offset → UTC.
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import ErrorClass, ProviderRejected, WebhookValidationError
from providers.options import Credential

logger = logging.getLogger(__name__)

# International form, as in the send example: "+", country code, subscriber number.
E164 = re.compile(r"\+[1-9]\d{6,14}")


def parse_vortext_datetime(value: Any, field_name: str) -> datetime | None:
    """An ISO 8601 date as Vortext writes it (``2016-06-01T12:27:19.000+0200``); None if absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebhookValidationError(f"'{field_name}' is not a date string: {value!r}")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise WebhookValidationError(f"'{field_name}' is not an ISO 8601 date: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class VortextProvider(BaseProvider):
    slug = "vortext"
    display_name = "Vortext (Cegedim)"
    default_base_url = "https://messages.cloud.cegedim.com"
    required_credentials = ("username", "password")
    secret_credentials = frozenset({"password"})
    credentials_help = (
        "username: the Vortext account's user name; password: its password "
        "(both given by Cegedim, sent as HTTP Basic auth)."
    )
    credential_fields = (
        Credential(
            "username",
            _("User name"),
            help=_("The Vortext account's user name, given by Cegedim (HTTP Basic auth)."),
            required=True,
        ),
        Credential(
            "password",
            _("Password"),
            help=_("The Vortext account's password, given by Cegedim."),
            required=True,
            secret=True,
        ),
    )
    # Vortext documents no status words (no delivery reports); a send that succeeds is "sent".
    status_map: ClassVar[dict[str, DeliveryStatus]] = {}
    # No documented error words: errors are classed by status (401/403 are account problems
    # by default). A 404 on a fixed path means the base URL is wrong for every message.
    http_errors: ClassVar[dict[int, ErrorClass]] = {404: ErrorClass.ACCOUNT}

    # --- requests -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> ProviderRequest:
        return ProviderRequest(
            method,
            f"{self.base_url}{path}",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            json=body,
            auth=(str(self.credential("username")), str(self.credential("password"))),
        )

    def validate(self, sms: OutboundSMS) -> None:
        super().validate(sms)
        if not E164.fullmatch(sms.to or ""):
            raise ProviderRejected(
                "Vortext needs the phone number in international format, '+' then the country "
                f"code and number (e.g. +33612345678); got {sms.to!r}",
                code="invalid_number",
            )

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        if sms.sender:
            logger.debug(
                "vortext: sender %r ignored for message %s (one sender per Vortext account)",
                sms.sender,
                sms.reference,
            )
        return self._request("POST", "/sms", {"phoneNumber": sms.to, "message": sms.text})

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        message_id = _identifier(body.get("messageId")) if isinstance(body, dict) else ""
        if not message_id:
            raise ProviderRejected(
                f"unreadable answer from Vortext (HTTP {response.status_code}, no 'messageId'): "
                f"{response.text[:200]!r}",
                code="unreadable_answer",
                raw=response.text,
            )
        logger.debug("vortext: message %s accepted as %s", sms.reference, message_id)
        return SendResult(provider_message_id=message_id, status=DeliveryStatus.SENT, raw=body)

    def describe_error(self, response: requests.Response) -> str | None:
        detail = self._error_detail(response)
        suffix = f" ({detail})" if detail else ""
        if response.status_code == 401:
            return f"the username and password were not accepted{suffix}"
        if response.status_code == 403:
            return f"the account is not allowed to do this (check its rights with Cegedim){suffix}"
        if response.status_code == 404:
            path = requests.utils.urlparse(response.url or "").path or "this path"
            return f"no Vortext API at {self.base_url} ({path} not found): check the base URL"
        return detail

    @staticmethod
    def _error_detail(response: requests.Response) -> str | None:
        """The text of a JSON error body (``message``, ``error``, ``detail``), if there is one."""
        try:
            body = response.json()
        except (ValueError, RecursionError):
            return None
        if not isinstance(body, dict):
            return None
        parts = [
            str(body[key]).strip()
            for key in ("error", "message", "detail")
            if isinstance(body.get(key), str) and body[key].strip()
        ]
        return ": ".join(dict.fromkeys(parts)) or None

    def check(self) -> str:
        """Call ``GET /status`` with the account's credentials.

        A 2xx proves Vortext answers at the base URL; a 401/403 (ProviderAccountError) shows the
        credentials are refused. The doc does not say whether /status checks credentials at all.
        """
        response = self.call(self._request("GET", "/status"))
        host = requests.utils.urlparse(self.base_url).netloc or self.base_url
        return f"Vortext at {host} answered GET /status (HTTP {response.status_code})"

    # --- what Vortext sends us --------------------------------------------------------------
    def parse_inbound(self, request: HttpRequest) -> list[InboundSMS]:
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise WebhookValidationError("the Vortext reply is not JSON") from exc
        if not isinstance(body, dict):
            raise WebhookValidationError("the Vortext reply is not a JSON object")
        answer = body.get("response")
        if not isinstance(answer, dict):
            raise WebhookValidationError("the Vortext reply has no 'response' object")
        content = answer.get("content")
        if not isinstance(content, str):
            raise WebhookValidationError("the Vortext reply has no 'response.content' text")
        original = body.get("message")
        if original is None:
            original = {}  # the message it answers is not named: a reply from an unknown number
        if not isinstance(original, dict):
            raise WebhookValidationError(
                "the Vortext reply's 'message' (the message it answers) is not a JSON object"
            )
        in_reply_to = _identifier(original.get("messageId"))
        if not in_reply_to:
            in_reply_to = _identifier(original.get("id"))
        from_number = original.get("phoneNumber")
        from_number = from_number.strip() if isinstance(from_number, str) else ""
        if not from_number and not in_reply_to:
            logger.info("vortext: a reply names neither its number nor its message (doc example)")
        return [
            InboundSMS(
                from_number=from_number,
                to_number="",
                text=content,
                in_reply_to=in_reply_to,
                received_at=parse_vortext_datetime(answer.get("answeredAt"), "response.answeredAt"),
                raw=body,
            )
        ]


def _identifier(value: Any) -> str:
    """A provider id given as a string or a number; "" for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()
