"""Ogangi Mobile Engagement: everything in the URL path, HMAC-SHA256 signature, XML answers.

Wire protocol (``../shared/provider-docs/ogangi-mobile-engagement.txt`` and NOTES.md):

- Every call is ``{base}/rest/api/<method>/<param>/<param>/.../{publicKey}/{signature}``: no
  headers, no body, no query string. The public key travels in the path; the private key never
  travels, it only signs.
- Signature: HMAC-SHA256, keyed with the UTF-8 bytes of the **private** key, over the UTF-8 bytes
  of the parameters that precede ``publicKey`` joined with ``/``. Ogangi's public Java example
  (``signHmacSHA256``) writes the digest as lower-case hex; NOTES.md says the encoding is not
  documented, so the provider account chooses: ``signature_encoding`` = ``hex`` (default) or
  ``base64`` (standard alphabet, with padding).
- Send: ``GET {base}/rest/api/tools/sendSMS/{instanceId}/{carrier}/{from}/{mobileNumber}/{text}/
  {publicKey}/{signature}``, with ``mobileNumber`` and ``text`` Base64-encoded (UTF-8, standard
  alphabet, padded) as the doc requires for this method. The answer::

      <input>sendSMS</input> <status>OK</status> <description>Completed</description>
      <result><messages><message><id>-8174720676710228700</id> ...
      <status>SENT_TO_CARRIER</status><statusDescription>Sent to Carrier</statusDescription>
      ...</message></messages></result>

  The top-level ``status`` is ``OK``, ``BAD_SIGNATURE`` or ``ERROR`` and ``description`` explains
  it in words (Ogangi's "Response XML Basics"); ``message/id`` is the provider id and
  ``message/status`` the message's first state.
- Replies are polled, never pushed: ``GET {base}/rest/api/tools/getMOMessages/{instanceId}/{page}/
  {resultsPerPage}/{parameters}/{publicKey}/{signature}``, answered with
  ``<result><MOMessageList><records>17</records><MessageList><MOMessage><text/><from/><to/>
  <encoding/><keyword/><carrier/><sendDate/></MOMessage>...`` (``records`` is the total found).
  ``parameters`` is Ogangi's "MO Inline Search String" (``from=...&to=...&order=desc``...).
- One-time codes: ``GET {base}/rest/api/tools/sendSMSPinMobileNumberConfirm/{instanceId}/{carrier}/
  {from}/{mobileNumber}/{text}/{length}/{publicKey}/{signature}`` (only ``text`` Base64-encoded)
  answers ``<result><PinSMSConfirmation><pin>846547</pin></PinSMSConfirmation></result>``.

Deliberate choices where the doc is silent or ambiguous:

- Method: ``sendSMS`` (``tools/sendSMS``), not ``sendMT``: only ``sendSMS`` answers with the
  message and its id; ``sendMT`` answers with the static part alone, so a message sent with it
  could never be followed.
- HTTP method: the doc names none for these calls (it does say POST for the JSON variant of
  ``fireMessage``, which we do not use); Ogangi's Java example uses GET, so every call is a GET.
- Path segments: Base64 contains ``/``, ``+`` and ``=``, so every segment (not only the Base64
  ones) is percent-encoded with nothing left safe (``quote(value, safe="")``).
- What is signed: "the parameters joined with / exactly as they appear in the URL". In Ogangi's
  Java example the signed string *is* the text placed in the URL (``base + method + params + "/"
  + publicKey + "/" + signature``), so we sign the segments **after** percent-encoding: the signed
  string is exactly the path text between the method name and the public key. The two readings
  only differ when a segment holds a character that needs escaping (Base64 ``+``, ``/``, ``=``, a
  carrier name with a space, ``=``/``&`` in the search string).
- Numbers: ``to`` is E.164 in the hub; Ogangi's examples write numbers as bare international
  digits (``13056708084``), so the leading ``+`` is dropped before encoding. The sender (``from``)
  is a short or long code: digits only (3 to 15, a leading ``+`` is dropped); an alphanumeric
  sender name or a missing sender is refused by `validate`, since Ogangi needs the code.
- Carrier: the ``carrier`` credential, default the string ``null`` (the doc's way of letting the
  Campaign Manager choose the carrier).
- Text: sent as Base64 of its UTF-8 bytes, so any Unicode text goes (Ogangi answers
  ``<encoding>UTF-8</encoding>``). The doc sets no length limit; Ogangi's status list has
  ``SEGMENTS_EXCEEDED`` for texts over 1600 characters, so longer texts are refused beforehand.
- ``reference``, ``callback_url``, ``campaign_name``, ``category``, ``send_at`` and the send window
  are not sent: the doc has no place for them (the hub holds a message until it is due).
- XML: parsed with defusedxml (no entities, no external references). The doc's examples have no
  root element (``<input>``, ``<status>``, ``<description>`` and ``<result>`` side by side), so an
  answer that is not one well-formed document is parsed again inside a synthetic root; an answer
  that has a single root around the static part is read inside that root. What still cannot be
  parsed is a ProviderRejected with the provider's text (not retried: the message may have gone
  out). The doc's getMOMessages example closes ``MOMessageList`` with ``<MOMessageList>`` (a
  typo): such an answer is not XML and is refused like any other unreadable answer.
- Errors (the ``errors`` table; ``code`` is the word, the message carries ``description`` or
  ``statusDescription``): the top-level ``BAD_SIGNATURE`` means the credentials were refused
  (public or private key, instance or signature encoding: every call would fail) and ``ERROR``
  ("Internal error, please report this to support") is temporary: Ogangi failed on its side and
  took nothing, so trying again cannot send twice. A message whose own status says it was not
  sent is a refusal of the message (``NOT_SENT``, ``BAD_FROM``, ``BAD_TO``, ``BAD_ENCODING``,
  ``BAD_CARRIER/FROM``, ``SEGMENTS_EXCEEDED``, ``UNREACHABLE``, ``UNDELIVERED``, ``EXPIRED``),
  except ``NOT_ENOUGH_FUNDS`` (no credit: nothing goes until the account is topped up) and
  ``BAD_TIMEZONE`` (we send no time zone: it is the workspace's), which are account problems.
  An account problem puts the provider account on hold; no message fails for it. An unknown
  top-level word is a refusal; an unknown message status word next to an id is logged and
  taken as ``sent``: Ogangi accepted the message, and raising would get it resent. An ``OK``
  send answer without ``message/id`` is unreadable (ProviderRejected, not retried).
- HTTP statuses of Ogangi's answers are not documented: an error answer whose XML carries one of
  the words above is classed by the word (`classify_error`), except that 401/403 always mean the
  credentials were refused; any other error answer is classed by its status (429 throttling,
  5xx temporary, other 4xx a refusal: a 404 too, since the path carries the message itself).
  `describe_error` reads the same XML (status and description) when an error answer carries it,
  else the raw text is kept.
- Delivery reports: the doc defines neither a status query nor a push, so
  `parse_delivery_reports` keeps the base refusal. `status_map` still holds every SMS state word
  of Ogangi's "Message's Status" page (the doc's ``message.status`` points there) plus
  ``SENT_TO_CARRIER`` and ``DELIVERED``, for the send answer and any later status source.
- `check` makes the cheapest signed read the doc has: ``getMOMessages`` page 1, one result,
  ``order=desc``. It proves the base URL, the instance and both keys (a bad signature answers
  ``BAD_SIGNATURE``) without sending anything.
- `send_pin` wraps ``sendSMSPinMobileNumberConfirm`` and returns the PIN. The doc does not say
  where the PIN goes in the text: the text is sent as given and Ogangi composes the SMS.
  ``mobileNumber`` is not Base64 for this method (the doc says so only for ``text``).

Polling replies (`fetch_inbound`), where the doc is silent:

- An MO has no id in the doc's answer, and the search string has no date filter. So we ask for
  ``order=desc`` (newest first), 100 per page, pages numbered from 1, and walk pages until we
  reach replies at or before the cursor's floor, the last page (``records``, or a short page), or
  20 pages (then a warning is logged: older unseen replies may be left behind).
- Each MO gets a fingerprint: SHA-256 of (from, to, sendDate as written, text), 32 hex digits. It
  is the reply's ``provider_message_id`` (an ``<id>`` element, if an answer ever has one, wins),
  so the hub's own deduplication by provider id is a second safety net.
- The cursor must fit ``ProviderAccount.inbound_cursor`` (200 characters), so it is compact text:
  ``"<floor>:<fp>,<fp>,..."``, the floor a sendDate in epoch milliseconds and each ``fp`` the first
  10 hex digits of a fingerprint. A reply is new when it is dated after the floor and its
  fingerprint is not listed; anything at or before the floor counts as fetched. After a poll the
  floor becomes the newest sendDate seen minus 2 minutes (never lower than before) and the list
  holds the replies seen above it: the overlap catches replies that Ogangi stores a little out
  of date order, without fetching anything twice. At most 16 fingerprints are kept: in a burst
  the floor is raised to the oldest listed dates until 16 fit (the overlap shrinks, nothing is
  fetched twice). An empty cursor fetches everything Ogangi still holds (up to the page limit).
- ``sendDate`` is read as ``2014-10-13 10:30:51.922`` (the example) or ISO 8601 with an offset
  (the table's ``yyyy-MM-dd'T'HH:mm:ss.SSSZZ``); without an offset it is taken as UTC. An MO
  without ``from`` or a readable ``sendDate`` is skipped with a warning (it cannot be placed
  against the cursor), never allowed to block polling.
- The example shows ``from`` = the person (58123456789) and ``to`` = our long code (19893143924),
  although the field table describes them the other way round (copied from outgoing messages):
  we follow the example, ``from`` → ``from_number``, ``to`` → ``to_number``.
- Replies come back oldest first. ``text`` is plain text (not Base64) in the example.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_bytes
from django.utils.dateparse import parse_datetime

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderError,
    ProviderRejected,
)

logger = logging.getLogger(__name__)

# Ogangi's public documentation of its Mobile Engagement REST API (Messangi) puts {base_url} here;
# each customer's Campaign Manager may live elsewhere, hence the configurable base URL.
DEFAULT_BASE_URL = "https://www.messangi.com/messangi_mmc"

SIGNATURE_ENCODINGS = ("hex", "base64")
MAX_TEXT_CHARACTERS = 1600  # beyond this Ogangi reports SEGMENTS_EXCEEDED
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
MOBILE_NUMBER = re.compile(r"\+?([1-9]\d{6,14})")
SHORT_OR_LONG_CODE = re.compile(r"\+?(\d{3,15})")
PIN_LENGTHS = range(4, 13)

MO_PER_PAGE = 100
MO_MAX_PAGES = 20
MO_SEARCH = "order=desc"
MO_OVERLAP = timedelta(minutes=2)
# The cursor lives in ProviderAccount.inbound_cursor (200 characters): a 13-digit floor, ":" and at
# most 16 fingerprints of 10 hex digits, comma-separated (13 + 1 + 16 * 11 - 1 = 189).
CURSOR_FINGERPRINT = 10
CURSOR_MAX_SEEN = 16
FINGERPRINT = re.compile(r"[0-9a-f]{10}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What an administrator can do about an account problem, by word.
HINTS = {
    "BAD_SIGNATURE": "check public_key, private_key and signature_encoding",
    "NOT_ENOUGH_FUNDS": "top up the Ogangi account",
    "BAD_TIMEZONE": "check the workspace's time zone with Ogangi",
}
# The answer's <input> (the method called) → what was refused, for messages.
CALLS = {
    "sendSMS": "the message",
    "sendSMSPinMobileNumberConfirm": "the PIN message",
    "getMOMessages": "the reply search",
}

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_BOM = b"\xef\xbb\xbf"


def segment(value: str) -> str:
    """One path segment, percent-encoded with nothing left safe (Base64 has / + =)."""
    return quote(value, safe="")


def b64(value: str) -> str:
    """Standard, padded Base64 of the UTF-8 bytes of ``value``, as Ogangi's doc asks."""
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def parse_xml(content: bytes) -> Element:
    """The answer's element that holds ``status``; raises ParseError or DefusedXmlException.

    Ogangi's examples put ``<input>``, ``<status>``, ``<description>`` and ``<result>`` side by
    side with no root: if the body is not one document it is parsed again inside a synthetic root.
    """
    content = content.removeprefix(_BOM)
    try:
        root = parse_xml_bytes(content)
    except ParseError:
        match = _DECLARATION.match(content)
        declaration = match.group(0).strip() if match else b'<?xml version="1.0" encoding="UTF-8"?>'
        body = content[match.end() :] if match else content
        root = parse_xml_bytes(declaration + b"<ogangi-answer>" + body + b"</ogangi-answer>")
    if root.find("status") is None:
        children = list(root)
        if len(children) == 1 and children[0].find("status") is not None:
            return children[0]
    return root


def child_text(element: Element | None, tag: str) -> str:
    """The stripped text of ``element/tag``, or "" when absent."""
    if element is None:
        return ""
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def fields(element: Element) -> dict[str, str]:
    """The element's direct children as {tag: text}: the raw payload of an event."""
    return {child.tag: (child.text or "").strip() for child in element}


def parse_send_date(value: str) -> datetime | None:
    """``sendDate`` as aware datetime (no offset → UTC), or None when unreadable."""
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    """A parsed Ogangi answer whose static status was OK."""

    root: Element
    description: str
    text: str

    @property
    def result(self) -> Element | None:
        return self.root.find("result")


class OgangiProvider(BaseProvider):
    slug = "ogangi"
    display_name = "Ogangi Mobile Engagement"
    default_base_url = DEFAULT_BASE_URL
    required_credentials = ("instance_id", "public_key", "private_key")
    secret_credentials = frozenset({"private_key"})
    credentials_help = (
        "instance_id: your Ogangi workspace (instance) number; public_key: the API public key; "
        "private_key: the API private key that signs each call and is never sent; optional "
        "carrier (default null: Ogangi chooses) and signature_encoding (hex, the default, or "
        "base64)."
    )
    # Ogangi's SMS state words (lower-cased) → ours.
    status_map: ClassVar[dict[str, DeliveryStatus]] = {
        "sent_to_carrier": DeliveryStatus.SENT,
        "sent": DeliveryStatus.SENT,
        "sending": DeliveryStatus.SENT,
        "pending": DeliveryStatus.SENT,
        "delivered_to_carrier": DeliveryStatus.SENT,
        "sent_to_device": DeliveryStatus.SENT,
        "delivered_to_device": DeliveryStatus.DELIVERED,
        "delivered": DeliveryStatus.DELIVERED,
        "read": DeliveryStatus.DELIVERED,
        "undelivered": DeliveryStatus.UNDELIVERED,
        "unreachable": DeliveryStatus.UNDELIVERED,
        "expired": DeliveryStatus.EXPIRED,
        "not_sent": DeliveryStatus.FAILED,
        "bad_from": DeliveryStatus.FAILED,
        "bad_to": DeliveryStatus.FAILED,
        "bad_encoding": DeliveryStatus.FAILED,
        "bad_carrier/from": DeliveryStatus.FAILED,
        "not_enough_funds": DeliveryStatus.FAILED,
        "bad_timezone": DeliveryStatus.FAILED,
    }
    # What Ogangi's error words mean: the top-level statuses of "Response XML Basics", then the
    # message statuses that say it was not sent (see the module docstring).
    errors: ClassVar[dict[str, ErrorClass]] = {
        "BAD_SIGNATURE": ErrorClass.ACCOUNT,
        "ERROR": ErrorClass.TEMPORARY,
        "NOT_ENOUGH_FUNDS": ErrorClass.ACCOUNT,
        "BAD_TIMEZONE": ErrorClass.ACCOUNT,
        "NOT_SENT": ErrorClass.REJECTED,
        "BAD_FROM": ErrorClass.REJECTED,
        "BAD_TO": ErrorClass.REJECTED,
        "BAD_ENCODING": ErrorClass.REJECTED,
        "BAD_CARRIER/FROM": ErrorClass.REJECTED,
        "SEGMENTS_EXCEEDED": ErrorClass.REJECTED,
        "UNREACHABLE": ErrorClass.REJECTED,
        "UNDELIVERED": ErrorClass.REJECTED,
        "EXPIRED": ErrorClass.REJECTED,
    }
    credential_errors = frozenset({"BAD_SIGNATURE"})

    # --- signing ------------------------------------------------------------------------------
    def signature_encoding(self) -> str:
        encoding = str(self.credentials.get("signature_encoding") or "hex").strip().lower()
        if encoding not in SIGNATURE_ENCODINGS:
            raise ProviderConfigurationError(
                f"signature_encoding must be 'hex' or 'base64', not {encoding!r}", code="config"
            )
        return encoding

    def sign(self, signed: str) -> str:
        """HMAC-SHA256 of ``signed`` keyed with the private key, hex or Base64 per the account."""
        encoding = self.signature_encoding()
        key = str(self.credential("private_key")).encode("utf-8")
        digest = hmac.new(key, signed.encode("utf-8"), hashlib.sha256).digest()
        return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")

    def signed_url(self, method: str, params: list[str]) -> str:
        """``{base}/rest/api/{method}/{params...}/{publicKey}/{signature}``, every segment encoded.

        The signature covers the encoded parameters exactly as they appear in the path.
        """
        signed = "/".join(segment(str(param)) for param in params)
        public_key = segment(str(self.credential("public_key")))
        signature = segment(self.sign(signed))
        return f"{self.base_url}/rest/api/{method}/{signed}/{public_key}/{signature}"

    def carrier(self) -> str:
        return str(self.credentials.get("carrier") or "null").strip() or "null"

    # --- answers ------------------------------------------------------------------------------
    def refusal(
        self, word: str, description: str, *, what: str, raw: str, status: int | None = None
    ) -> ProviderError:
        """The error for one of Ogangi's words, with its description and what to do."""
        hint = f" ({HINTS[word.upper()]})" if word.upper() in HINTS else ""
        detail = f"{word}: {description or 'no description'}{hint}"
        return self.error(word, detail, what=what, status=status, raw=raw)

    def read_answer(self, response: requests.Response, what: str) -> Answer:
        """The answer if its static status is OK; its error (`errors`) otherwise, or a
        ProviderRejected if unreadable."""
        text = response.text
        try:
            root = parse_xml(response.content)
        except (ParseError, DefusedXmlException) as exc:
            raise ProviderRejected(
                f"unreadable answer from Ogangi to {what} (not XML): {text[:200]!r}",
                code="unreadable",
                raw=text,
            ) from exc
        status = child_text(root, "status")
        description = child_text(root, "description")
        if not status:
            raise ProviderRejected(
                f"unreadable answer from Ogangi to {what} (no <status>): {text[:200]!r}",
                code="unreadable",
                raw=text,
            )
        if status.upper() != "OK":
            raise self.refusal(status, description, what=what, raw=text)
        return Answer(root=root, description=description, text=text)

    @staticmethod
    def _static_part(response: requests.Response) -> tuple[str, str, str] | None:
        """(status, description, input) of an answer carrying Ogangi's XML; else None."""
        try:
            root = parse_xml(response.content)
        except (ParseError, DefusedXmlException):
            return None
        return (
            child_text(root, "status"),
            child_text(root, "description"),
            child_text(root, "input"),
        )

    def classify_error(self, response: requests.Response) -> ProviderError | None:
        """An HTTP error answer whose XML carries one of Ogangi's words is classed by it."""
        found = self._static_part(response)
        if found is None or found[0].upper() not in self.errors:
            return None
        status, description, method = found
        what = CALLS.get(method, "the request")
        return self.refusal(
            status, description, what=what, raw=response.text, status=response.status_code
        )

    def describe_error(self, response: requests.Response) -> str | None:
        """An HTTP error answer carrying Ogangi's XML → "STATUS: description"; else None."""
        found = self._static_part(response)
        if found is None or not (found[0] or found[1]):
            return None
        status, description, _ = found
        hint = f" ({HINTS[status.upper()]})" if status.upper() in HINTS else ""
        return ": ".join(part for part in (status, description) if part) + hint

    # --- sending ------------------------------------------------------------------------------
    def validate(self, sms: OutboundSMS) -> None:
        super().validate(sms)
        if not MOBILE_NUMBER.fullmatch(sms.to or ""):
            raise ProviderRejected(
                f"Ogangi needs the recipient as an international number of 7 to 15 digits "
                f"(E.164, e.g. +13056708084), not {sms.to!r}",
                code="invalid_number",
            )
        if not sms.sender:
            raise ProviderRejected(
                "Ogangi needs a sender: the short or long code assigned to the account "
                "(e.g. 19893653744)",
                code="invalid_sender",
            )
        if not SHORT_OR_LONG_CODE.fullmatch(sms.sender):
            raise ProviderRejected(
                f"Ogangi sends from a short or long code: the sender must be 3 to 15 digits, "
                f"not {sms.sender!r}",
                code="invalid_sender",
            )
        if len(sms.text) > MAX_TEXT_CHARACTERS:
            raise ProviderRejected(
                f"the text is {len(sms.text)} characters long; Ogangi refuses more than "
                f"{MAX_TEXT_CHARACTERS} (SEGMENTS_EXCEEDED)",
                code="too_long",
            )
        try:
            sms.text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProviderRejected(
                "the text holds characters that cannot be written in UTF-8 "
                f"(position {exc.start}), which Ogangi requires",
                code="invalid_text",
            ) from None

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        params = [
            str(self.credential("instance_id")),
            self.carrier(),
            sms.sender.removeprefix("+"),
            b64(sms.to.removeprefix("+")),
            b64(sms.text),
        ]
        return ProviderRequest("GET", self.signed_url("tools/sendSMS", params))

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        answer = self.read_answer(response, "the message")
        message = answer.root.find("result/messages/message")
        provider_id = child_text(message, "id")
        if message is None or not provider_id:
            raise ProviderRejected(
                f"unreadable answer from Ogangi to the message (no <message><id>): "
                f"{answer.text[:200]!r}",
                code="unreadable",
                raw=answer.text,
            )
        word = child_text(message, "status")
        status = self.status_map.get(word.lower())
        if word.upper() in self.errors or status not in (None, *SENT_STATUSES):
            explanation = child_text(message, "statusDescription")
            raise self.refusal(word, explanation, what="the message", raw=answer.text)
        if status is None:
            logger.warning(
                "ogangi: unknown message status %r for message %s; taken as sent", word, provider_id
            )
            status = DeliveryStatus.SENT
        logger.info("ogangi: message %s accepted (%s)", provider_id, word or "no status")
        raw = {
            "status": child_text(answer.root, "status"),
            "description": answer.description,
            "message": fields(message),
        }
        return SendResult(provider_message_id=provider_id, status=status, raw=raw)

    def send_pin(self, to: str, text: str, *, sender: str, length: int = 6) -> str:
        """Have Ogangi generate a PIN of ``length`` digits and text it to ``to``; returns the PIN.

        ``sendSMSPinMobileNumberConfirm``: the same rules as `send` for number, sender and text.
        """
        self.validate(OutboundSMS(to=to, text=text, sender=sender))
        if isinstance(length, bool) or not isinstance(length, int) or length not in PIN_LENGTHS:
            raise ProviderRejected(
                f"the PIN length must be a whole number from {PIN_LENGTHS.start} to "
                f"{PIN_LENGTHS.stop - 1}, not {length!r}",
                code="invalid_length",
            )
        params = [
            str(self.credential("instance_id")),
            self.carrier(),
            sender.removeprefix("+"),
            to.removeprefix("+"),
            b64(text),
            str(length),
        ]
        response = self.call(
            ProviderRequest("GET", self.signed_url("tools/sendSMSPinMobileNumberConfirm", params))
        )
        answer = self.read_answer(response, "the PIN message")
        pin = child_text(answer.root.find("result/PinSMSConfirmation"), "pin")
        if not pin:
            raise ProviderRejected(
                "unreadable answer from Ogangi to the PIN message (no <PinSMSConfirmation><pin>)",
                code="unreadable",
                raw=answer.text,
            )
        return pin

    # --- polling ------------------------------------------------------------------------------
    def mo_page(self, page: int, per_page: int) -> Answer:
        params = [str(self.credential("instance_id")), str(page), str(per_page), MO_SEARCH]
        url = self.signed_url("tools/getMOMessages", params)
        return self.read_answer(self.call(ProviderRequest("GET", url)), "the reply search")

    def check(self) -> str:
        """One signed read (getMOMessages, one result): proves base URL, instance and keys."""
        answer = self.mo_page(1, 1)
        records = child_text(answer.result, "MOMessageList/records")
        stored = f"; {records} replies stored" if records.isdigit() else ""
        return (
            f"Ogangi answers and accepts the signature for instance "
            f"{self.credential('instance_id')}{stored}"
        )

    def fetch_inbound(self, cursor: str = "") -> tuple[list[InboundSMS], str]:
        """Replies not fetched before, oldest first, and the cursor to pass next time."""
        floor, seen = self._load_cursor(cursor)
        walked: dict[str, int] = {}  # short fingerprint → sendDate (ms), for every MO looked at
        fresh: list[tuple[int, InboundSMS]] = []
        for page in range(1, MO_MAX_PAGES + 1):
            answer = self.mo_page(page, MO_PER_PAGE)
            listing = answer.result.find("MOMessageList") if answer.result is not None else None
            items = listing.findall("MessageList/MOMessage") if listing is not None else []
            reached_old = False
            for item in items:
                parsed = self._parse_mo(item)
                if parsed is None:
                    continue
                short, sent_ms, inbound = parsed
                if short in walked:  # a page boundary shifted by a new arrival
                    continue
                walked[short] = sent_ms
                if floor is not None and sent_ms <= floor:
                    reached_old = True
                    continue
                if short not in seen:
                    fresh.append((sent_ms, inbound))
            records = child_text(listing, "records")
            last_page = len(items) < MO_PER_PAGE or (
                records.isdigit() and page * MO_PER_PAGE >= int(records)
            )
            if reached_old or last_page:
                break
        else:
            logger.warning(
                "ogangi: stopped after %d pages of replies; older unseen replies may be left",
                MO_MAX_PAGES,
            )
        fresh.sort(key=lambda pair: pair[0])
        next_cursor = self._next_cursor(floor, seen, walked) if walked else cursor
        return [inbound for _, inbound in fresh], next_cursor

    def _parse_mo(self, item: Element) -> tuple[str, int, InboundSMS] | None:
        """(short fingerprint, sendDate in epoch ms, the reply), or None for an unplaceable MO."""
        raw = fields(item)
        sender, send_date = raw.get("from", ""), raw.get("sendDate", "")
        sent_at = parse_send_date(send_date) if send_date else None
        if not sender or sent_at is None:
            logger.warning(
                "ogangi: skipped a reply without 'from' or a readable 'sendDate' (%r)", send_date
            )
            return None
        text = item.findtext("text") or ""  # the text as sent, spaces included
        material = json.dumps([sender, raw.get("to", ""), send_date, text], ensure_ascii=False)
        fingerprint = hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]
        inbound = InboundSMS(
            from_number=sender,
            to_number=raw.get("to", ""),
            text=text,
            provider_message_id=raw.get("id") or fingerprint,
            received_at=sent_at,
            raw=raw,
        )
        sent_ms = (sent_at - EPOCH) // timedelta(milliseconds=1)
        return fingerprint[:CURSOR_FINGERPRINT], sent_ms, inbound

    @staticmethod
    def _load_cursor(cursor: str) -> tuple[int | None, set[str]]:
        """``"<floor ms>:<fp>,<fp>"`` → (floor, fingerprints); "" → (None, nothing seen)."""
        if not cursor:
            return None, set()
        floor, separator, listed = cursor.partition(":")
        seen = set(listed.split(",")) if listed else set()
        if (
            not separator
            or not floor.lstrip("-").isdigit()
            or not all(FINGERPRINT.fullmatch(item) for item in seen)
        ):
            raise ProviderConfigurationError(
                f"unreadable Ogangi reply cursor {cursor[:100]!r}: expected '<ms>:<fp>,<fp>'",
                code="cursor",
            )
        return int(floor), seen

    @staticmethod
    def _next_cursor(floor: int | None, seen: set[str], walked: dict[str, int]) -> str:
        """The floor moves up to newest minus the overlap, or higher so that the list fits."""
        newest = max(walked.values())
        candidate = newest - MO_OVERLAP // timedelta(milliseconds=1)
        next_floor = candidate if floor is None else max(floor, candidate)
        window = {short: ms for short, ms in walked.items() if ms > next_floor}
        if floor == next_floor:  # still the same floor: what was seen above it stays seen
            window |= {short: floor + 1 for short in seen if short not in window}
        while len(window) > CURSOR_MAX_SEEN:
            next_floor = min(window.values())
            window = {short: ms for short, ms in window.items() if ms > next_floor}
        return f"{next_floor}:{','.join(sorted(window))}"
