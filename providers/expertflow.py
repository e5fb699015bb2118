"""Expertflow SMS Connector: a self-hosted connector; JSON in, Twilio-style forms and a queue out.

Wire protocol (``../shared/provider-docs/expertflow-sms-connector.txt`` and NOTES.md):

- Base URL: the connector is installed by its owner, so there is no production URL. The doc's
  example host is ``localhost:8080`` over HTTP, hence the default ``http://localhost:8080``; set
  the provider account's base URL to the real connector. Every path below is appended to it (the
  doc's BasePath ``/msg-client`` is part of the paths).
- Send: ``POST {base}/msg-client/send`` with ``Content-Type: application/json`` and
  ``{"To": "+923001234567", "Body": "...", "From": "...", "channel": "smpp"}``. ``From`` is
  optional and left out when the message has no sender; ``channel`` comes from the provider
  account. HTTP basic auth (``username``/``password``) is added when both are configured.
- Answers: 200 "OK, message queued at SMS Connector", with no content; 400 a required field is
  missing; 404 wrong API URL; 500 internal error. None of them has a documented body.
- Delivery status in the Twilio form style (``application/x-www-form-urlencoded``):
  ``MessageSid`` and ``SmsStatus`` (the doc's definitions name it ``MessageStatus``; both are
  read) with the words delivered, undelivered, failed, queued, sent, and ``To`` (the number the
  message went to) when the form has it → `parse_delivery_reports`.
- Inbound SMS in the Twilio form style: ``Body``, ``From``, ``To``, ``SmsSid`` (``MessageSid``
  accepted too) → `parse_inbound`.
- Delivery reports on the connector's ActiveMQ queue ``delivery-report``, JSON
  ``{"MessageSID", "DeliveryStatus": "DELIVERED"|"FAILED", "ProviderStatusCode"}`` →
  `parse_queue_report` (read over STOMP by ``manage.py consume_delivery_reports``).

The Twilio-style parsing is in two module-level functions, `parse_twilio_status` and
`parse_twilio_inbound`, so that any gateway speaking that style can reuse them.

Deliberate choices where the doc is silent or ambiguous:

- Provider message id: the send answer has no content, so the connector gives us no id. The
  ``MessageSid`` of its delivery statuses (and the ``MessageSID`` of its queue reports) is the id
  the downstream gateway (Twilio, an SMSC over SMPP...) gave the message, which the connector never
  returns to its caller; and the send body has no field in which to pass the hub's own reference
  for the connector to echo. So `SendResult.provider_message_id` is empty (``""``) and the
  adapter declares ``reports_match_by_number``: a report whose id names no message is matched by
  its ``To`` to the oldest message of the provider account to that number still awaiting a
  report (`campaigns.services.delivery`, within ``SMSHUB_DLR_NUMBER_WINDOW_HOURS``); the
  message then takes the report's ``MessageSid``, when it has one, as its id, so that the report
  again (or the queue's report with the same id) finds it by id. A report with neither a
  matching id nor a ``To`` (the doc's delivery-notification table lists no ``To``; a queue
  report never has one) stays an unmatched delivery report.
  Using the hub's reference as the id instead was rejected: the connector never sees it, so no
  report could carry it, while a numeric SMPP id could equal a hub message number and move the
  wrong message. The database's (provider account, provider id) index ignores empty ids, and an
  empty id matches no message.
  If a connector does answer the send with a JSON object carrying ``MessageSid`` (or
  ``MessageSID``), that id is used, and its reports then match by id.
- The send answer: any 2xx with an empty body, or any JSON body, is "queued" (``sent`` in the
  hub). A 2xx with a non-JSON body (an HTML page from a proxy or another application at the
  base URL) is refused as unreadable (ProviderRejected, not retried: it may have been queued,
  so it must not be resent blindly).
- Basic auth: sent only when ``username`` and ``password`` are both set; exactly one of them
  set is a configuration error (ProviderConfigurationError) rather than a silent send without
  auth. An empty ``channel`` is a configuration error too.
- Validation: the doc sets no length, charset or sender rule, so none is invented. `validate`
  refuses what the doc says the connector refuses (400, "required parameters not supplied"): an
  empty text (base rule) and an empty recipient. Numbers are sent as the hub gives them (E.164).
- Errors: the doc's only error vocabulary is its status table, so ``errors`` is empty and
  ``http_errors`` holds that table: 400 "required parameters not supplied" is a refusal of the
  message (its ``To`` and ``Body``; ``channel`` is checked non-empty before any call); 404
  "wrong API url supplied" an account problem (ProviderAccountError: a misconfigured base URL
  would fail every message, so the account is put on hold instead); 500 "Internal server
  error" temporary (the connector did not queue it: 200 is "message queued"). 401/403 (the
  connector's basic auth refusing the credentials) are account problems, 429 throttling, other
  5xx and 408 temporary, other 4xx refusals. Error bodies are undocumented: `describe_error`
  turns each documented status into a sentence and appends whatever text the connector sent.
- `check`: the connector has no health endpoint and no side-effect-free documented call. It
  sends ``GET {base}/msg-client/send`` (never a POST: that could queue an SMS). A connector
  (Spring) answers 405 Method Not Allowed there, or 401/403 when its auth refuses the
  credentials; a 404 means no connector at that base URL (both account problems). So a pass
  proves: the configuration is complete, the base URL is reachable, the connector's send path
  exists, and the credentials were not refused (if the connector checks none, that proves
  nothing about them).
- Twilio forms: ``SmsStatus`` is read before ``MessageStatus`` (Twilio sends both, equal). A
  delivery status needs a status word and ``MessageSid`` or ``To`` (either can match it; the
  doc lists ``MessageSid``, Twilio's callbacks carry ``To`` too); ``To`` is taken as given (E.164,
  or an MSISDN without ``+``: the hub reads both). An ``ErrorCode`` field (Twilio sends one with
  failures; not in the doc) is kept as the error code when present. The forms carry no time, so
  ``occurred_at``/``received_at`` are left empty. ``SmsSid`` is read before ``MessageSid`` for
  inbound messages. A Twilio inbound needs ``From``, ``To``, ``Body`` (may be empty) and an id;
  the id is required because the hub de-duplicates replies by it.
- Queue reports: ``DeliveryStatus`` is read case-insensitively; ``ProviderStatusCode`` (string or
  integer, optional) becomes the error code of a FAILED report and stays in ``raw`` otherwise.
"""

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import requests
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryReport, DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderRejected,
    WebhookValidationError,
)
from providers.options import Credential

logger = logging.getLogger(__name__)

SEND_PATH = "/msg-client/send"

# The status words of the Twilio form style, as the connector's doc lists them.
TWILIO_STATUS_MAP: dict[str, DeliveryStatus] = {
    "queued": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}

# The connector's queue reports: DELIVERED or FAILED.
QUEUE_STATUS_MAP: dict[str, DeliveryStatus] = {
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# --- the Twilio form style, reusable by any gateway that speaks it --------------------------
def _form(request: HttpRequest, what: str) -> dict[str, str]:
    """The request's form fields (last value of each), or a WebhookValidationError."""
    content_type = (request.content_type or "").lower()
    try:
        if content_type in _FORM_TYPES:
            return request.POST.dict()
        empty = not request.body
    except Exception as exc:  # a broken multipart body, a body over the size limit...
        raise WebhookValidationError(f"the {what} is not a readable form: {exc}") from exc
    if empty:
        return {}  # an empty POST without Content-Type: report the missing fields
    raise WebhookValidationError(
        f"the {what} must be form-encoded (application/x-www-form-urlencoded), "
        f"not {content_type or 'a body without Content-Type'!r}"
    )


def _missing(form: Mapping[str, str], *names: str) -> list[str]:
    return [name for name in names if not form.get(name, "").strip()]


def parse_twilio_status(
    request: HttpRequest,
    *,
    status_map: Mapping[str, DeliveryStatus] = TWILIO_STATUS_MAP,
    id_required: bool = True,
) -> DeliveryReport:
    """A Twilio-style delivery status: form ``MessageSid`` + ``SmsStatus`` (or ``MessageStatus``),
    and the number the message went to (``To``) when the form has it.

    `status_map` (lower-case words) lets a gateway with more words extend the default map. With
    `id_required` false (a provider whose reports are matched by number), a form without
    ``MessageSid`` is read when it has a ``To``.
    """
    form = _form(request, "delivery status")
    status_word = form.get("SmsStatus", "").strip() or form.get("MessageStatus", "").strip()
    message_id = form.get("MessageSid", "").strip()
    to_number = form.get("To", "").strip()
    missing = []
    if not message_id and (id_required or not to_number):
        missing.append("MessageSid" if id_required else "MessageSid (or To)")
    if not status_word:
        missing.append("SmsStatus (or MessageStatus)")
    if missing:
        raise WebhookValidationError(f"the delivery status has no {', '.join(missing)}")
    try:
        status = status_map[status_word.lower()]
    except KeyError:
        raise WebhookValidationError(
            f"unknown delivery status {status_word!r} (expected one of: {', '.join(status_map)})"
        ) from None
    return DeliveryReport(
        provider_message_id=message_id,
        status=status,
        error_code=form.get("ErrorCode", "").strip(),
        raw=form,
        to_number=to_number,
    )


def parse_twilio_inbound(request: HttpRequest) -> InboundSMS:
    """A Twilio-style inbound SMS: form ``Body``, ``From``, ``To``, ``SmsSid`` or ``MessageSid``."""
    form = _form(request, "inbound SMS")
    message_id = form.get("SmsSid", "").strip() or form.get("MessageSid", "").strip()
    missing = _missing(form, "From", "To")
    if "Body" not in form:
        missing.append("Body")
    if not message_id:
        missing.append("SmsSid (or MessageSid)")
    if missing:
        raise WebhookValidationError(f"the inbound SMS has no {', '.join(missing)}")
    return InboundSMS(
        from_number=form["From"].strip(),
        to_number=form["To"].strip(),
        text=form["Body"],
        provider_message_id=message_id,
        raw=form,
    )


# --- the connector's message queue ----------------------------------------------------------
def _identifier(value: Any) -> str:
    """A non-empty string or integer id as text; "" for anything else (bool is not an id)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return ""


def parse_queue_report(body: bytes | str) -> DeliveryReport:
    """A delivery report from the connector's ``delivery-report`` queue (JSON)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookValidationError("the queue delivery report is not JSON") from exc
    if not isinstance(data, dict):
        raise WebhookValidationError("the queue delivery report is not a JSON object")
    message_id = _identifier(data.get("MessageSID"))
    word = data.get("DeliveryStatus")
    missing = [] if message_id else ["MessageSID"]
    if not isinstance(word, str) or not word.strip():
        missing.append("DeliveryStatus")
    if missing:
        raise WebhookValidationError(f"the queue delivery report has no {', '.join(missing)}")
    try:
        status = QUEUE_STATUS_MAP[word.strip().lower()]
    except KeyError:
        raise WebhookValidationError(
            f"unknown queue delivery status {word!r} (expected DELIVERED or FAILED)"
        ) from None
    code = data.get("ProviderStatusCode")
    if code is not None and (isinstance(code, bool) or not isinstance(code, str | int)):
        raise WebhookValidationError(
            f"'ProviderStatusCode' is neither a string nor an integer: {code!r}"
        )
    return DeliveryReport(
        provider_message_id=message_id,
        status=status,
        error_code=_identifier(code) if status == DeliveryStatus.FAILED else "",
        raw=data,
    )


# --- the adapter ------------------------------------------------------------------------------
class ExpertflowProvider(BaseProvider):
    slug = "expertflow"
    display_name = "Expertflow SMS Connector"
    default_base_url = "http://localhost:8080"
    required_credentials = ("channel",)
    secret_credentials = frozenset({"password"})
    credentials_help = (
        "channel: the connector channel to send through (e.g. smpp); username and password: "
        "optional HTTP basic auth of the connector (set both or neither)."
    )
    credential_fields = (
        Credential(
            "channel",
            _("Channel"),
            help=_("The connector channel to send through, as configured on the connector."),
            required=True,
            placeholder="smpp",
            max_length=100,
        ),
        Credential(
            "username",
            _("User name"),
            help=_("Optional HTTP basic auth of the connector: set both or neither."),
            requires="password",
        ),
        Credential(
            "password",
            _("Password"),
            help=_("Optional HTTP basic auth of the connector: set both or neither."),
            secret=True,
            requires="username",
        ),
    )
    status_map: ClassVar[dict[str, DeliveryStatus]] = TWILIO_STATUS_MAP
    # The send answer has no content: reports are matched by their `To` (see the docstring).
    reports_match_by_number = True
    # The doc's status table for /msg-client/send (its only error vocabulary).
    http_errors: ClassVar[dict[int, ErrorClass]] = {
        400: ErrorClass.REJECTED,  # "required parameters are not supplied": this message's
        404: ErrorClass.ACCOUNT,  # "wrong API url supplied": every message would fail
        500: ErrorClass.TEMPORARY,  # "Internal server error": not queued
    }

    # --- configuration ----------------------------------------------------------------------
    def parse_queue_reports(self, body: bytes | str) -> list[DeliveryReport]:
        return [parse_queue_report(body)]

    def _channel(self) -> str:
        channel = str(self.credentials.get("channel") or "").strip()
        if not channel:
            raise ProviderConfigurationError(
                "the provider account has no 'channel' in its credentials (e.g. smpp)",
                code="config",
            )
        return channel

    def _auth(self) -> tuple[str, str] | None:
        username = str(self.credentials.get("username") or "")
        password = str(self.credentials.get("password") or "")
        if username and password:
            return (username, password)
        if username or password:
            absent = "password" if username else "username"
            raise ProviderConfigurationError(
                f"the provider account has basic auth half set up: no '{absent}' "
                "(set both username and password, or neither)",
                code="config",
            )
        return None

    # --- sending ----------------------------------------------------------------------------
    def validate(self, sms: OutboundSMS) -> None:
        super().validate(sms)
        if not (sms.to or "").strip():
            raise ProviderRejected(
                "the Expertflow SMS Connector needs a recipient number ('To') and none was given",
                code="invalid_number",
            )

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        body: dict[str, str] = {"To": sms.to, "Body": sms.text}
        if sms.sender:
            body["From"] = sms.sender
        body["channel"] = self._channel()
        return ProviderRequest(
            "POST",
            f"{self.base_url}{SEND_PATH}",
            headers={"Content-Type": "application/json"},
            json=body,
            auth=self._auth(),
        )

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        text = response.text
        if not 200 <= response.status_code < 300:
            raise ProviderRejected(
                f"unexpected answer from the Expertflow SMS Connector (HTTP "
                f"{response.status_code}): {text[:200]!r}",
                code="unreadable_answer",
                raw=text,
            )
        body: Any = ""
        if text.strip():
            try:
                body = json.loads(text)
            except ValueError:
                raise ProviderRejected(
                    "unexpected answer from the Expertflow SMS Connector (HTTP "
                    f"{response.status_code}, not empty and not JSON; is the base URL the "
                    f"connector?): {text[:200]!r}",
                    code="unreadable_answer",
                    raw=text,
                ) from None
        message_id = ""
        if isinstance(body, dict):
            message_id = _identifier(body.get("MessageSid")) or _identifier(body.get("MessageSID"))
        if not message_id:
            logger.debug(
                "expertflow: message %s queued at the connector; no id comes back, so its "
                "delivery reports are matched by number",
                sms.reference,
            )
        return SendResult(
            provider_message_id=message_id,
            status=DeliveryStatus.SENT,
            raw={"http_status": response.status_code, "body": body, "reference": sms.reference},
        )

    def describe_error(self, response: requests.Response) -> str | None:
        sentences = {
            400: "a required field (To, Body or channel) is missing or invalid",
            401: "the connector refused the username/password (HTTP basic auth)",
            403: "the connector refused the username/password (HTTP basic auth)",
            404: f"no SMS connector API at {self.base_url}{SEND_PATH}: wrong API URL, "
            "check the base URL",
            500: "the connector had an internal error (see its server logs)",
        }
        sentence = sentences.get(response.status_code)
        if sentence is None:
            return None
        detail = response.text.strip()[:300]
        return f"{sentence}: {detail}" if detail else sentence

    def check(self) -> str:
        """Verify the configuration, that the base URL answers and that its send path exists.

        No health endpoint exists, so this GETs the send path (never POSTs: that could queue an
        SMS). A connector answers 405 (or 400); 401/403 (the credentials refused) and 404 (no
        connector at that base URL) are account problems. A pass does not prove the credentials
        are right when the connector checks none.
        """
        self._channel()
        auth = self._auth()
        url = f"{self.base_url}{SEND_PATH}"
        try:
            self.call(ProviderRequest("GET", url, auth=auth))
        except ProviderRejected as exc:
            if exc.code not in ("400", "405"):
                raise
        credentials = "with basic auth not refused" if auth else "without basic auth"
        return f"the SMS connector answers at {url} ({credentials})"

    # --- what the connector sends us ---------------------------------------------------------
    def parse_delivery_reports(self, request: HttpRequest) -> list[DeliveryReport]:
        return [parse_twilio_status(request, status_map=self.status_map, id_required=False)]

    def parse_inbound(self, request: HttpRequest) -> list[InboundSMS]:
        return [parse_twilio_inbound(request)]
