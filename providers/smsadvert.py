"""SMSAdvert (smsadvert.io / smsadvert.ro): send through the customer's own phones or their network.

Wire protocol (``../shared/provider-docs/smsadvert.txt``):

- ``POST {base}/api/sms/`` (default base ``https://www.smsadvert.io``; the doc's own example uses
  ``https://www.smsadvert.ro``, so the base URL is the provider account's), header
  ``Authorization: <token>`` (the raw token, no scheme word), JSON body:
  ``phone`` (E.164; up to 1000 numbers comma-separated, no trailing comma), ``shortTextMessage``
  (3 to 480 characters), optional ``sendAsShort`` (true: SMSAdvert's network, else the
  customer's own devices), ``failover`` (``"short"``: fall back to SMSAdvert's network),
  ``startDate`` / ``endDate`` (a send window, UNIX time in milliseconds) and ``callback`` (URL).
- Answer: ``{"successMessage": "...", "msgId": "..."}``. Errors: ``{"errors": {field: text}}``
  or ``{"errorMessage": "..."}``; either is an error whatever the HTTP status, even 200.
- Delivery report: SMSAdvert ``POST``s JSON ``{"status": "delivered"|"failed", "msgId": "..."}``
  to ``callback``. The doc names no other status and no replies (no inbound webhook).

Credentials: ``token`` (required, secret), ``send_as_short`` (optional boolean, also the strings
"true"/"false"), ``failover`` (optional string, e.g. "short", passed through as given),
``multi_recipient`` (optional boolean, default false). Admin shows the last three as labelled
choices (`options`), with a warning on an account whose ``multi_recipient`` is true.

Deliberate choices where the doc is silent:

- Lengths are counted in characters as Python counts them (``len``), as the doc says
  "caractères" and the hub's compose counter shows. No charset is refused: the doc names none.
- ``sendAsShort`` is sent only when ``send_as_short`` is true (the doc: false and absent mean
  the same); ``failover`` only when set. The per-message ``sender`` is ignored: the API has no
  sender field (the customer's devices or SMSAdvert's network decide it).
- ``send_at`` is not sent: the hub keeps scheduled messages itself and hands them over when due.
  ``window_start`` / ``window_end`` become ``startDate`` / ``endDate`` (each independently, omitted
  when None); naive datetimes are read in the project's time zone. A window that ends before it
  starts, or has already ended, is refused before any call (SMSAdvert would never send it).
- The token is sent stripped of surrounding whitespace (pasted tokens often carry a newline).
- Errors, whatever the HTTP status they come with (``errors`` table, except that a 401/403
  stays a refusal of the credentials whatever the body says): ``{"errors": {field: text}}`` is a
  refusal of the message (its fields), ``code`` the refused field names. ``errorMessage`` is
  free text, classed by the first table word it contains: the doc's "There was a database
  error!" is temporary (SMSAdvert's side: the request was not taken, so trying again cannot
  send twice); a text about the token or authentication (``TOKEN``, ``AUTH``, e.g. "Invalid
  authentication token!") means the credentials were refused and one about credit that the
  account cannot pay (both account problems: the account is put on hold, no message fails for
  it). Any other ``errorMessage`` is a refusal of the message on a 2xx (not retried: it might
  have gone out), else the HTTP status decides (401/403/402 account, 404 account too since the
  send path is fixed and a 404 means a wrong base URL, 5xx temporary, other 4xx refusal).
  ``code`` is ``errorMessage``.
- A delivery report ``failed`` maps to FAILED (the doc's own word; with its own devices the SMS
  usually never left the phone), ``delivered`` to DELIVERED.
- One number per call by default, each with its ``callback``, so that every message gets its
  delivery report. The answer to a multi-recipient call holds one ``msgId`` for all of its
  numbers and a delivery report carries only that ``msgId``: a report could never tell which
  recipient it is about (the doc does not even say whether one comes). Sending many numbers per
  call is the provider account's explicit choice, ``multi_recipient: true`` (``sends_many``):
  the dispatcher then hands ``send_many`` whole batches, and messages with the same text, window
  and callback URL go in one call, up to 1000 distinct numbers each; a number that appears twice
  goes into a later call (SMSAdvert would drop the duplicate), so every message is really sent.
  A group of one is an ordinary ``send``, with its callback. In a multi-recipient call each
  message's provider id is ``"<msgId>:<phone>"`` (unique per message, the batch still readable)
  and **no ``callback`` is sent**: those messages get no delivery report and stay ``sent`` (admin
  and ``check`` say so for such an account). An error answer concerns the whole call, so each of
  its messages gets it; once the account is refused, the calls left are not made and their
  messages get that refusal too.
- ``check``: the doc has no read-only call, so it POSTs an empty JSON object to the send path
  with the token. SMSAdvert must refuse it (no phone, no text): nothing is sent or charged.
  Field errors (``errors``) mean the host answers and did not refuse the token; ``errorMessage``
  and error statuses fail the check with their class (a refused token is an account problem),
  and an answer in neither of the doc's shapes is a configuration error (the base URL is not
  SMSAdvert's API). Whether SMSAdvert checks the token before the fields is not documented, so a
  success says the token was "not refused", not "valid".
"""

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryReport, DeliveryStatus, OutboundSMS, SendResult
from providers.exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderError,
    ProviderRejected,
    WebhookValidationError,
)
from providers.options import Choice, Credential, Option, flag

logger = logging.getLogger(__name__)

SEND_PATH = "/api/sms/"
MIN_TEXT = 3
MAX_TEXT = 480
MAX_RECIPIENTS = 1000
E164_RE = re.compile(r"\+[1-9]\d{1,14}", re.ASCII)  # used with fullmatch()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
NO_REPORT_WARNING = _(
    "Messages with the same text are sent together, up to 1000 numbers per call: SMSAdvert "
    "gives such a call one msgId for all its numbers, so those messages get no delivery report "
    "and stay “sent”. Choose one number per call for every message to get its report."
)


def epoch_ms(moment: datetime) -> int:
    """UNIX time in milliseconds, exact (no float rounding); naive means the project's zone."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return (moment - EPOCH) // timedelta(milliseconds=1)


# The doc's {"errors": {field: text}} shape, as a word of the `errors` table.
FIELD_ERRORS = "FIELD ERRORS"
# What an administrator can do about an account problem, by word.
HINTS = {
    "TOKEN": "check the provider account's token",
    "AUTH": "check the provider account's token",
    "CREDIT": "top up the SMSAdvert account",
}


def field_errors(body: Any) -> dict[str, Any] | None:
    """The ``errors`` object of a body in the doc's first error shape, else None."""
    if isinstance(body, dict) and isinstance(body.get("errors"), dict) and body["errors"]:
        return body["errors"]
    return None


def error_message(body: Any) -> str | None:
    """The ``errorMessage`` of a body in the doc's second error shape, else None."""
    message = body.get("errorMessage") if isinstance(body, dict) else None
    return _text(message) if message not in (None, "") else None


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SmsAdvertProvider(BaseProvider):
    slug = "smsadvert"
    display_name = "SMSAdvert"
    default_base_url = "https://www.smsadvert.io"
    required_credentials = ("token",)
    secret_credentials = frozenset({"token"})
    credentials_help = (
        "token: the API token of your SMSAdvert account; send_as_short (optional, true/false, "
        "default false: sent from your own devices): true sends through SMSAdvert's network "
        '(sendAsShort); failover (optional, "short"): fall back to SMSAdvert\'s network when '
        "your devices cannot send; multi_recipient (optional, default false: one number per "
        "call, each message with its delivery report): true sends up to 1000 numbers per call "
        "for the same text, and those messages get no delivery report."
    )
    credential_fields = (
        Credential(
            "token",
            _("API token"),
            help=_("The API token of your SMSAdvert account (sent as the Authorization header)."),
            required=True,
            secret=True,
        ),
    )
    # The non-secret credentials, as admin shows them: labelled choices (the first: absent).
    options = (
        flag(
            "send_as_short",
            _("Sent through"),
            absent=_("Your own devices (sendAsShort absent: the doc's default)"),
            true=_("SMSAdvert's network (sendAsShort: true)"),
            help=_(
                "The doc: without sendAsShort (or with false) the message is sent through your "
                "own devices connected to SMSAdvert; with true, through SMSAdvert's network."
            ),
        ),
        Option(
            "failover",
            _("When your devices cannot send"),
            (
                Choice(None, _("The message is not sent another way (no failover)"), same_as=("",)),
                Choice("short", _('Fall back to SMSAdvert\'s network (failover: "short")')),
            ),
            help=_(
                "Only with your own devices: if none is connected or the operator refuses the "
                "message, SMSAdvert's network sends it."
            ),
        ),
        flag(
            "multi_recipient",
            _("Numbers per call"),
            absent=_("One number per call: every message gets its delivery report"),
            true=_("Up to 1000 numbers per call for the same text: NO delivery report for those"),
            warning=NO_REPORT_WARNING,
        ),
    )
    status_map = {
        "delivered": DeliveryStatus.DELIVERED,
        "failed": DeliveryStatus.FAILED,
    }
    # The doc's two error shapes. An errorMessage is free text: it takes the class of the first
    # word below that it contains (the doc gives one example; the others are our reading).
    errors = {
        FIELD_ERRORS: ErrorClass.REJECTED,  # {"errors": {field: text}}: this message's fields
        "DATABASE ERROR": ErrorClass.TEMPORARY,  # the doc's "There was a database error!"
        "TOKEN": ErrorClass.ACCOUNT,  # e.g. "Invalid authentication token!"
        "AUTH": ErrorClass.ACCOUNT,  # authentication, unauthorized
        "CREDIT": ErrorClass.ACCOUNT,  # no credit left: nothing goes until topped up
    }
    credential_errors = frozenset({"TOKEN", "AUTH"})
    # The send path is fixed: a 404 means the base URL is wrong for every message.
    http_errors = {404: ErrorClass.ACCOUNT}
    # `send_many` can put many recipients in one call; whether it does is the provider
    # account's choice (`sends_many`: credential multi_recipient, false by default).
    multi_recipient = True

    # --- configuration --------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = str(self.credential("token") or "").strip()
        if not token:
            raise ProviderConfigurationError(
                "the SMSAdvert provider account has an empty 'token'", code="config"
            )
        return {"Authorization": token}

    def _flag(self, name: str, default: bool) -> bool:
        """A true/false credential (a JSON boolean or a word such as "true", "no")."""
        value = self.credentials.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ProviderConfigurationError(
            f"the SMSAdvert credential {name!r} must be true or false, not {value!r}",
            code="config",
        )

    def _send_as_short(self) -> bool:
        return self._flag("send_as_short", default=False)

    def _options(self) -> dict[str, Any]:
        """The per-account fields of every send: sendAsShort and failover."""
        options: dict[str, Any] = {}
        if self._send_as_short():
            options["sendAsShort"] = True
        failover = str(self.credentials.get("failover") or "").strip()
        if failover:
            options["failover"] = failover
        return options

    # --- sending ------------------------------------------------------------------------
    def validate(self, sms: OutboundSMS) -> None:
        super().validate(sms)
        if not E164_RE.fullmatch(sms.to or ""):
            raise ProviderRejected(
                f"SMSAdvert needs the phone number in international E.164 format "
                f"(e.g. +40740123456), not {sms.to!r}",
                code="phone",
            )
        length = len(sms.text)
        if length < MIN_TEXT:
            raise ProviderRejected(
                f"SMSAdvert needs at least {MIN_TEXT} characters of text; this one has {length}",
                code="shortTextMessage",
            )
        if length > MAX_TEXT:
            raise ProviderRejected(
                f"SMSAdvert accepts at most {MAX_TEXT} characters of text; this one has {length}",
                code="shortTextMessage",
            )
        start, end = sms.window_start, sms.window_end
        if start is not None and end is not None and epoch_ms(end) <= epoch_ms(start):
            raise ProviderRejected(
                f"the send window ends ({end.isoformat()}) before it starts ({start.isoformat()})",
                code="window",
            )
        if end is not None and epoch_ms(end) <= epoch_ms(now()):
            raise ProviderRejected(
                f"the send window already ended ({end.isoformat()}): SMSAdvert would never send it",
                code="window",
            )

    def _body(self, phones: list[str], sms: OutboundSMS, *, callback: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"phone": ",".join(phones), "shortTextMessage": sms.text}
        body.update(self._options())
        if sms.window_start is not None:
            body["startDate"] = epoch_ms(sms.window_start)
        if sms.window_end is not None:
            body["endDate"] = epoch_ms(sms.window_end)
        if callback and sms.callback_url:
            body["callback"] = sms.callback_url
        return body

    def _request(self, body: dict[str, Any]) -> ProviderRequest:
        return ProviderRequest(
            "POST", f"{self.base_url}{SEND_PATH}", headers=self._headers(), json=body
        )

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        return self._request(self._body([sms.to], sms, callback=True))

    # --- errors -----------------------------------------------------------------------------
    def _word(self, message: str) -> str:
        """The first word of the `errors` table that an errorMessage contains, else the text."""
        text = message.upper()
        return next((word for word in self.errors if word in text), message)

    def _reading(self, body: Any) -> tuple[str, str, str] | None:
        """(word, detail, code) of a body in one of the doc's error shapes; None otherwise."""
        fields = field_errors(body)
        if fields is not None:
            details = "; ".join(f"{field}: {_text(text)}" for field, text in fields.items())
            return FIELD_ERRORS, details, ",".join(fields)
        message = error_message(body)
        if message is None:
            return None
        word = self._word(message)
        hint = f" ({HINTS[word]})" if word in HINTS else ""
        return word, f"{message}{hint}", "errorMessage"

    def answer_error(
        self,
        body: Any,
        *,
        status: int | None = None,
        known_only: bool = False,
        what: str = "the message",
    ) -> ProviderError | None:
        """The error a body in one of the doc's error shapes means; None for any other body,
        and with `known_only` for an errorMessage that no word of the table classes."""
        reading = self._reading(body)
        if reading is None or (known_only and reading[0] not in self.errors):
            return None
        word, detail, code = reading
        return self.error(word, detail, what=what, status=status, code=code, raw=body)

    def classify_error(self, response: requests.Response) -> ProviderError | None:
        return self.answer_error(_json(response), status=response.status_code, known_only=True)

    def describe_error(self, response: requests.Response) -> str | None:
        """The error body's own words (field errors, errorMessage), or None to keep the text."""
        reading = self._reading(_json(response))
        return reading[1] if reading else None

    def _msg_id(self, response: requests.Response) -> tuple[str, Any]:
        """The msgId of a send answer and the parsed body; errors for anything else."""
        body = _json(response)
        refusal = self.answer_error(body)
        if refusal is not None:
            raise refusal
        msg_id = body.get("msgId") if isinstance(body, dict) else None
        if isinstance(msg_id, bool) or not isinstance(msg_id, str | int) or msg_id == "":
            raise ProviderRejected(
                f"SMSAdvert gave an unreadable answer (HTTP {response.status_code}, no msgId): "
                f"{response.text[:200]}",
                code="unreadable",
                raw=response.text[:1000],
            )
        return str(msg_id), body

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        msg_id, body = self._msg_id(response)
        return SendResult(provider_message_id=msg_id, status=DeliveryStatus.SENT, raw=body)

    def sends_many(self) -> bool:
        try:
            return self._flag("multi_recipient", default=False)
        except ProviderError:
            return True  # `send_many` says what is wrong with the credential, message by message

    def send_many(self, messages: list[OutboundSMS]) -> list[SendResult | Exception]:
        """Send messages sharing text, window and callback URL together (see the module doc).

        One entry per message, in order: its SendResult, or the ProviderError it met. A message
        in a multi-recipient call gets the provider id ``"<msgId>:<phone>"`` and no callback.
        """
        try:
            multi_recipient = self._flag("multi_recipient", default=False)
        except ProviderError as exc:
            return [exc] * len(messages)
        if not multi_recipient:
            return super().send_many(messages)
        results: dict[int, SendResult | Exception] = {}
        # Group key → calls; each call maps phone → index of the message in `messages`.
        groups: dict[tuple, list[dict[str, int]]] = {}
        for index, sms in enumerate(messages):
            try:
                self.validate(sms)
                key = (
                    sms.text,
                    None if sms.window_start is None else epoch_ms(sms.window_start),
                    None if sms.window_end is None else epoch_ms(sms.window_end),
                    sms.callback_url,
                )
            except ProviderError as exc:
                results[index] = exc
                continue
            calls = groups.setdefault(key, [])
            for call in calls:
                if sms.to not in call and len(call) < MAX_RECIPIENTS:
                    call[sms.to] = index
                    break
            else:
                calls.append({sms.to: index})
        refused: ProviderError | None = None  # the account's refusal: no more calls
        for calls in groups.values():
            for call in calls:
                if refused is not None:
                    results.update(dict.fromkeys(call.values(), refused))
                    continue
                outcome = self._send_call(messages, call)
                results.update(outcome)
                first = next(iter(outcome.values()))
                if isinstance(first, ProviderError) and first.error_class == ErrorClass.ACCOUNT:
                    refused = first
        return [results[index] for index in range(len(messages))]

    def _send_call(
        self, messages: list[OutboundSMS], call: dict[str, int]
    ) -> dict[int, SendResult | Exception]:
        indexes = list(call.values())
        first = messages[indexes[0]]
        try:
            if len(call) == 1:
                return {
                    indexes[0]: self.parse_send_response(
                        self.call(self.build_request(first)), first
                    )
                }
            response = self.call(self._request(self._body(list(call), first, callback=False)))
            msg_id, body = self._msg_id(response)
        except ProviderError as exc:
            return dict.fromkeys(indexes, exc)
        logger.info("SMSAdvert accepted %d recipients in one call as %s", len(call), msg_id)
        return {
            index: SendResult(
                provider_message_id=f"{msg_id}:{phone}", status=DeliveryStatus.SENT, raw=body
            )
            for phone, index in call.items()
        }

    def check(self) -> str:
        """POST an empty object to the send path: SMSAdvert must refuse it, sending nothing.

        Field errors mean the host answers and did not refuse the token (the doc has no
        read-only call and does not say whether the token is checked before the fields).
        """
        self._options()  # a malformed send_as_short is a configuration error worth showing here
        multi_recipient = self._flag("multi_recipient", default=False)
        url = f"{self.base_url}{SEND_PATH}"
        try:
            response = self.call(ProviderRequest("POST", url, headers=self._headers(), json={}))
        except ProviderRejected as exc:
            if field_errors(exc.raw) is None:
                raise
            logger.info("SMSAdvert check: %s answered %s", url, exc.message)
        else:
            body = _json(response)
            if field_errors(body) is None:
                refusal = self.answer_error(body, what="the test request")
                raise refusal or ProviderConfigurationError(
                    f"{self.base_url} does not answer like SMSAdvert's API (check the base URL): "
                    f"it answered the test request unexpectedly: {response.text[:200]}",
                    code="check",
                    raw=body if body is not None else response.text[:1000],
                )
        described = (
            f"SMSAdvert answers at {self.base_url} and did not refuse the token "
            "(a test request without phone or text was refused field by field; nothing was sent)"
        )
        if multi_recipient:
            described += f". Warning: {NO_REPORT_WARNING}"
        return described

    # --- what SMSAdvert sends us ------------------------------------------------------------
    def parse_delivery_reports(self, request: HttpRequest) -> list[DeliveryReport]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookValidationError("the SMSAdvert delivery report is not JSON") from exc
        if not isinstance(body, dict):
            raise WebhookValidationError(
                "the SMSAdvert delivery report must be a JSON object with 'status' and 'msgId'"
            )
        msg_id, status = body.get("msgId"), body.get("status")
        if isinstance(msg_id, bool) or not isinstance(msg_id, str | int) or msg_id == "":
            raise WebhookValidationError("the SMSAdvert delivery report has no 'msgId'")
        if not isinstance(status, str) or not status.strip():
            raise WebhookValidationError("the SMSAdvert delivery report has no 'status'")
        return [
            DeliveryReport(
                provider_message_id=str(msg_id),
                status=self.map_status(status),
                raw=body,
            )
        ]
