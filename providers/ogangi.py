"""Ogangi Mobile Engagement: everything in the URL path, HMAC-SHA256 signature, XML answers.

Wire protocol (``../shared/provider-docs/ogangi-mobile-engagement.txt`` and NOTES.md):

- Every call is ``{base}/rest/api/<method>/<param>/<param>/.../{publicKey}/{signature}``: no
  headers, no body, no query string. The public key travels in the path; the private key never
  travels, it only signs.
- Signature: HMAC-SHA256, keyed with the UTF-8 bytes of the **private** key, over the UTF-8 bytes
  of the parameters that precede ``publicKey`` joined with ``/`` ("it's involve all input
  parameters"; Ogangi's Java example signs ``8/peter/peterpassword``). How those parameters are
  written and how the digest is written are not documented: see the signature reading below.
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
  {from}/{mobileNumber}/{text}/{length}/{publicKey}/{signature}`` (only ``text`` Base64-encoded;
  ``carrier`` the "Mobile operator name (case sensitive)") answers
  ``<result><PinSMSConfirmation><pin>846547</pin></PinSMSConfirmation></result>``.

The signature reading (two provider-account credentials; a wrong one fails every call with
``BAD_SIGNATURE``, so `check` finds the right one):

- ``signature_segments``: ``encoded`` (the default) signs the segments exactly as they appear in
  the URL, percent-encoded: in Ogangi's Java example the signed string is the very text put in
  the URL (``base + method + params + "/" + publicKey + "/" + signature``). ``decoded`` signs the
  values before percent-encoding, as a server reading decoded path parameters would. The two
  differ whenever a segment holds a character that needs escaping: Base64's ``+``, ``/``, ``=``
  (the Base64 of every 11-digit number ends in ``=``), a carrier name with a space, the ``=`` of a
  search string.
- ``signature_encoding``: ``hex`` (the default: lower-case hex, as the Java example's
  ``signHmacSHA256``) or ``base64`` (standard alphabet, padded, percent-encoded in the path).
- Any other value is a configuration error, raised before any call.
- `check` makes the cheapest signed read the doc has: ``getMOMessages`` page 1, one result, search
  string ``order=desc`` (its ``=`` makes the two segment readings differ, so the check can tell
  them apart). It proves the base URL, the instance and both keys without sending anything. If
  Ogangi refuses the signature (``BAD_SIGNATURE``, or HTTP 401/403), it tries the three other
  readings in turn; the first one Ogangi answers with anything but a signature refusal is the
  one it accepts, and the check fails with a message naming the two credential values to set on
  the provider account (an adapter has no database: it changes nothing itself). When no reading
  is accepted, the keys or the instance are wrong, and the error says so.

Deliberate choices where the doc is silent or ambiguous:

- Method: ``sendSMS`` (``tools/sendSMS``), not ``sendMT``: only ``sendSMS`` answers with the
  message and its id; ``sendMT`` answers with the static part alone, so a message sent with it
  could never be followed.
- HTTP method: the doc names none for these calls (it does say POST for the JSON variant of
  ``fireMessage``, which we do not use); Ogangi's Java example uses GET, so every call is a GET.
- Path segments: Base64 contains ``/``, ``+`` and ``=``, so every segment (not only the Base64
  ones) is percent-encoded with nothing left safe (``quote(value, safe="")``), whatever the
  signature reading.
- Numbers: ``to`` is E.164 in the hub; Ogangi's examples write numbers as bare international
  digits (``13056708084``), so the leading ``+`` is dropped before encoding. The sender (``from``)
  is a short or long code: digits only (3 to 15, a leading ``+`` is dropped); an alphanumeric
  sender name or a missing sender is refused by `validate`, since Ogangi needs the code.
- Carrier: the ``carrier`` credential, default the string ``null`` for ``sendSMS`` (the doc's way,
  under ``sendMT``, of letting the Campaign Manager choose the carrier).
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
  (public or private key, instance or signature reading: every call would fail) and ``ERROR``
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
- One-time codes (`send_pin`): the PIN method wants the carrier's *name*, case sensitive, which
  only the account can know: it is the ``carrier`` credential, and without one (or with
  ``null``) `send_pin` refuses before any call and `pin_unavailable` says why, so that the hub
  sends its own code instead. The doc does not say where the PIN goes in the text: the text is
  sent as given and Ogangi composes the SMS. ``mobileNumber`` is not Base64 for this method (the
  doc says so only for ``text``).

Polling replies (`fetch_inbound`), where the doc is silent:

- The order of getMOMessages' list is not in the doc (Ogangi's public "MO Inline Search String"
  page lists ``order=asc|desc``, with no default). We ask for ``order=desc`` and rely on nothing:
  the list is taken to be in arrival order, oldest or newest first, and which one is read from
  the ``sendDate`` values: page 1's first and last replies when they are more than 2 minutes apart,
  else page 1's first against the last page's last; when every date is the same, from whether
  the first reply of page 1 changed since the last poll (the cursor's ``head``) while the list
  grew. Pages count from 1, 100 per page. Those one or two pages are read first.
- Every reply has a position counted from the oldest (0), worked out from its page, its place
  and ``records``: arrivals do not change it. A poll walks from the newest reply towards the
  oldest, page by page, until a page holds an old reply (below). Walking that way, a reply
  arriving meanwhile only pushes the others further along the walk (read twice, kept once),
  never past it; a page read before replies arrived is read again when the position sought is
  no longer on it. A page not full where more were announced ends the list.
- A reply is new when its fingerprint is not listed in the cursor and it stands at or after the
  cursor's count (how many replies the list held, as far as the last poll read it) or is dated
  after the cursor's floor; it is old when it stands before the count and is dated at or before
  the floor. The count catches every reply added at either end, whatever its date (a burst in
  one millisecond too); the floor catches one Ogangi files among older ones (a late store, or
  old replies purged), up to 2 minutes late.
- At most 20 pages are walked per poll (besides the one or two read to learn the order). When
  the walk stops there before an old reply, the replies still unread lie below the lowest
  position read: the cursor keeps that gap (floor, position, count of the poll it belongs to)
  and the next poll walks it first, before the replies newer than the top, so nothing is
  skipped however long the backlog. The first poll (empty cursor) reads the newest pages only
  and opens no gap: what lies below is from before the hub used the account (logged).
- An MO has no id in the doc's answer, and the search string has no date filter. Each MO gets a
  fingerprint: SHA-256 of (from, to, sendDate as written, text), 32 hex digits. It is the
  reply's ``provider_message_id`` (an ``<id>`` element, if an answer ever has one, wins), so the
  hub's own deduplication by provider id is a second safety net: no reply is stored twice.
- The cursor must fit ``ProviderAccount.inbound_cursor`` (200 characters), so it is compact text:
  ``"<floor>:<fp>,<fp>,...|<count>^<head>[;<gap floor>@<gap position>@<gap count>]"``, floors
  in epoch milliseconds, each ``fp`` (and ``head``) the first 10 hex digits of a fingerprint. A
  cursor of the older form ``"<floor>:<fp>,..."`` is still read (new by date only, until the
  next poll writes the count). After a poll the floor becomes the newest sendDate seen minus 2
  minutes (never lower than before) and the list holds the replies seen above it: the overlap
  catches replies stored a little out of date order without fetching anything twice. At most 10
  fingerprints are kept: in a burst the floor is raised until 10 fit (the count still catches
  every reply added since).
- ``sendDate`` is read as ``2014-10-13 10:30:51.922`` (the example) or ISO 8601 with an offset
  (the table's ``yyyy-MM-dd'T'HH:mm:ss.SSSZZ``); without an offset it is taken as UTC. An MO
  without ``from`` or a readable ``sendDate`` is skipped with a warning (it cannot be placed
  against the cursor), never allowed to block polling.
- The example shows ``from`` = the person (58123456789) and ``to`` = our long code (19893143924),
  although the field table describes them the other way round (copied from outgoing messages):
  we follow the example, ``from`` → ``from_number``, ``to`` → ``to_number``.
- `fetch_inbound` returns the replies oldest first. ``text`` is plain text (not Base64) in the
  example.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_bytes
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderError,
    ProviderRejected,
    reason,
)
from providers.options import CHOICE, NUMBER, Credential

logger = logging.getLogger(__name__)

# Ogangi's public documentation of its Mobile Engagement REST API (Messangi) puts {base_url} here;
# each customer's Campaign Manager may live elsewhere, hence the configurable base URL.
DEFAULT_BASE_URL = "https://www.messangi.com/messangi_mmc"

SIGNATURE_SEGMENTS = ("encoded", "decoded")
SIGNATURE_ENCODINGS = ("hex", "base64")
MAX_TEXT_CHARACTERS = 1600  # beyond this Ogangi reports SEGMENTS_EXCEEDED
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
MOBILE_NUMBER = re.compile(r"\+?([1-9]\d{6,14})")
SHORT_OR_LONG_CODE = re.compile(r"\+?(\d{3,15})")
PIN_LENGTHS = range(4, 13)
NO_CARRIER = "null"  # the doc's word for "let the Campaign Manager choose the carrier"

MO_PER_PAGE = 100
MO_MAX_PAGES = 20
# A hint only (the walk works whatever the order); its "=" also lets `check` tell the two
# signature_segments readings apart.
MO_SEARCH = "order=desc"
MO_OVERLAP = timedelta(minutes=2)
# The cursor lives in ProviderAccount.inbound_cursor (200 characters): a floor of at most 14
# characters, ":", at most 10 fingerprints of 10 hex digits comma-separated (10 * 11 - 1), "|" and
# a count of at most 15 digits, "^" and a fingerprint, then optionally a gap
# ";<floor>@<position>@<count>" (1 + 14 + 1 + 15 + 1 + 15): 14 + 1 + 109 + 16 + 11 + 47 = 198.
CURSOR_FINGERPRINT = 10
CURSOR_MAX_SEEN = 10
FINGERPRINT = re.compile(r"[0-9a-f]{10}")
WHOLE_NUMBER = re.compile(r"-?\d{1,14}")
POSITION = re.compile(r"\d{1,15}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What an administrator can do about an account problem, by word.
HINTS = {
    "BAD_SIGNATURE": (
        "check public_key, private_key, signature_segments and signature_encoding; "
        "Test connection (manage.py checkprovider) finds the signature reading Ogangi accepts"
    ),
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


@dataclass(frozen=True)
class Reading:
    """How the signature is made: which text is signed, and how the digest is written."""

    segments: str = "encoded"  # SIGNATURE_SEGMENTS
    encoding: str = "hex"  # SIGNATURE_ENCODINGS

    def __str__(self) -> str:
        return f"signature_segments={self.segments}, signature_encoding={self.encoding}"

    def signed_text(self, params: list[str]) -> str:
        """The parameters before ``publicKey`` joined with ``/``, as this reading signs them."""
        if self.segments == "encoded":
            return "/".join(segment(param) for param in params)
        return "/".join(params)

    def sign(self, signed: str, private_key: str) -> str:
        digest = hmac.new(private_key.encode("utf-8"), signed.encode("utf-8"), hashlib.sha256)
        if self.encoding == "hex":
            return digest.hexdigest()
        return base64.b64encode(digest.digest()).decode("ascii")


# Every reading the doc allows, the defaults first.
READINGS = tuple(Reading(s, e) for s in SIGNATURE_SEGMENTS for e in SIGNATURE_ENCODINGS)


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


@dataclass(frozen=True)
class MO:
    """One reply of a getMOMessages page, placed: its fingerprint and its date."""

    short: str  # the first CURSOR_FINGERPRINT hex digits of the fingerprint
    sent_ms: int  # sendDate, epoch milliseconds
    inbound: InboundSMS


@dataclass(frozen=True)
class MOPage:
    number: int
    records: int  # the total found, as this answer says
    items: list[MO | None]  # None: a reply that cannot be placed (no sender, no date)

    def position(self, index: int, newest_first: bool) -> int:
        """Where the reply at ``index`` stands counted from the oldest (0), which arrivals at
        the newest end do not change."""
        rank = (self.number - 1) * MO_PER_PAGE + index
        return self.records - 1 - rank if newest_first else rank


@dataclass(frozen=True)
class Gap:
    """Replies left unread by a poll cut short: those at positions below ``below`` that are new
    by the rule of the cursor the poll started from (``floor``, ``boundary``)."""

    floor: int
    below: int
    boundary: int | None


@dataclass(frozen=True)
class Cursor:
    """Where polling stands. A reply is new when its fingerprint is not in ``seen`` and it stands
    at or after ``boundary`` (the number of replies the list held at the last poll) or is dated
    after ``floor``; an empty cursor has read nothing."""

    floor: int | None = None
    seen: frozenset[str] = frozenset()
    boundary: int | None = None
    gap: Gap | None = None
    head: str | None = None  # the first reply of page 1 at the last poll (`newest_first`)

    @classmethod
    def load(cls, text: str) -> "Cursor":
        """``"<floor>:<fp>,<fp>[|<boundary>[^<head>]][;<gap floor>@<below>[@<gap boundary>]]"``."""
        if not text:
            return cls()
        main, separator, gap_text = text.partition(";")
        dates, bar, places = main.partition("|")
        boundary, caret, head = places.partition("^")
        floor, colon, listed = dates.partition(":")
        seen = frozenset(listed.split(",")) if listed else frozenset()
        gap_parts = gap_text.split("@")
        if (
            not colon
            or not WHOLE_NUMBER.fullmatch(floor)
            or not all(FINGERPRINT.fullmatch(item) for item in seen)
            or (bar and not POSITION.fullmatch(boundary))
            or (caret and not FINGERPRINT.fullmatch(head))
            or (separator and not 2 <= len(gap_parts) <= 3)
            or (separator and not WHOLE_NUMBER.fullmatch(gap_parts[0]))
            or (separator and not all(POSITION.fullmatch(part) for part in gap_parts[1:]))
        ):
            raise ProviderConfigurationError(
                f"unreadable Ogangi reply cursor {text[:100]!r}: expected "
                "'<ms>:<fp>,<fp>|<count>' (then optionally ';<ms>@<position>@<count>')",
                code="cursor",
            )
        gap = None
        if separator:
            gap_boundary = int(gap_parts[2]) if len(gap_parts) == 3 else None
            gap = Gap(int(gap_parts[0]), int(gap_parts[1]), gap_boundary)
        return cls(int(floor), seen, int(boundary) if bar else None, gap, head if caret else None)

    def dump(self) -> str:
        if self.floor is None:
            return ""
        text = f"{self.floor}:{','.join(sorted(self.seen))}"
        if self.boundary is not None:
            text += f"|{self.boundary}"
            if self.head is not None:
                text += f"^{self.head}"
        if self.gap is not None:
            text += f";{self.gap.floor}@{self.gap.below}"
            if self.gap.boundary is not None:
                text += f"@{self.gap.boundary}"
        return text


@dataclass
class Walk:
    """One walk through the reply list, from a position towards the oldest reply."""

    floor: int | None  # replies dated after it are new (None: every reply is)...
    seen: frozenset[str] = frozenset()  # ...unless listed here...
    boundary: int | None = None  # ...and so are those at or after it (None: by date only)
    below: int | None = None  # only replies at positions below it (a gap)
    walked: dict[str, int] = field(default_factory=dict)  # short fingerprint → sendDate (ms)
    finished: bool = False  # reached an old reply, or the oldest one
    lowest: int | None = None  # the lowest position read
    highest: int | None = None  # the highest position read

    def read(self, position: int) -> None:
        self.lowest = position if self.lowest is None else min(self.lowest, position)
        self.highest = position if self.highest is None else max(self.highest, position)

    def is_old(self, position: int, mo: MO) -> bool:
        """Fetched by an earlier poll for sure: before the boundary and at or before the floor."""
        before = self.boundary is None or position < self.boundary
        return self.floor is not None and before and mo.sent_ms <= self.floor

    def is_new(self, position: int, mo: MO) -> bool:
        if self.floor is None:
            return True
        if mo.short in self.seen:
            return False
        after = self.boundary is not None and position >= self.boundary
        return after or mo.sent_ms > self.floor


class OgangiProvider(BaseProvider):
    slug = "ogangi"
    display_name = "Ogangi Mobile Engagement"
    default_base_url = DEFAULT_BASE_URL
    required_credentials = ("instance_id", "public_key", "private_key")
    secret_credentials = frozenset({"private_key"})
    credentials_help = (
        "instance_id: your Ogangi workspace (instance) number; public_key: the API public key; "
        "private_key: the API private key that signs each call and is never sent; optional "
        "carrier (the carrier's name, case sensitive: needed for one-time codes by Ogangi's PIN "
        "method; default null: Ogangi chooses for ordinary messages), signature_segments "
        "(encoded, the default, or decoded) and signature_encoding (hex, the default, or "
        "base64): Test connection finds the signature reading Ogangi accepts."
    )
    credential_fields = (
        Credential(
            "instance_id",
            _("Instance id"),
            help=_("Your Ogangi workspace (instance) number; ask Ogangi's support if unknown."),
            required=True,
            kind=NUMBER,
            min_value=1,
        ),
        Credential(
            "public_key",
            _("Public key"),
            help=_("The API public key (it travels in every call's path)."),
            required=True,
        ),
        Credential(
            "private_key",
            _("Private key"),
            help=_("The API private key: it signs each call and is never sent."),
            required=True,
            secret=True,
        ),
        Credential(
            "carrier",
            _("Carrier"),
            help=_(
                "The carrier's name, case sensitive: needed for one-time codes (Ogangi's PIN "
                "method). Empty: Ogangi chooses the carrier for ordinary messages."
            ),
            placeholder=NO_CARRIER,
            max_length=100,
        ),
        Credential(
            "signature_segments",
            _("Signature: text signed"),
            help=_("Test connection finds the reading Ogangi accepts and names it."),
            kind=CHOICE,
            choices=(
                ("encoded", _("The path segments as sent, percent-encoded (default)")),
                ("decoded", _("The values before percent-encoding")),
            ),
            default="encoded",
        ),
        Credential(
            "signature_encoding",
            _("Signature: digest written as"),
            help=_("Test connection finds the reading Ogangi accepts and names it."),
            kind=CHOICE,
            choices=(
                ("hex", _("Lower-case hexadecimal (default)")),
                ("base64", _("Base64")),
            ),
            default="hex",
        ),
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
    def _choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = str(self.credentials.get(key) or allowed[0]).strip().lower()
        if value not in allowed:
            choices = " or ".join(f"'{choice}'" for choice in allowed)
            raise ProviderConfigurationError(
                f"{key} must be {choices} (default '{allowed[0]}'), not {value!r}", code="config"
            )
        return value

    def signature_reading(self) -> Reading:
        """The provider account's reading: ``signature_segments`` and ``signature_encoding``."""
        return Reading(
            self._choice("signature_segments", SIGNATURE_SEGMENTS),
            self._choice("signature_encoding", SIGNATURE_ENCODINGS),
        )

    def sign(self, signed: str, reading: Reading | None = None) -> str:
        """HMAC-SHA256 of ``signed`` keyed with the private key, hex or Base64 per the reading."""
        reading = reading or self.signature_reading()
        return reading.sign(signed, str(self.credential("private_key")))

    def signed_url(self, method: str, params: list[str], reading: Reading | None = None) -> str:
        """``{base}/rest/api/{method}/{params...}/{publicKey}/{signature}``, every segment encoded.

        The signature covers the parameters as the reading (the account's by default) says.
        """
        reading = reading or self.signature_reading()
        params = [str(param) for param in params]
        path = "/".join(segment(param) for param in params)
        public_key = segment(str(self.credential("public_key")))
        signature = segment(self.sign(reading.signed_text(params), reading))
        return f"{self.base_url}/rest/api/{method}/{path}/{public_key}/{signature}"

    def carrier(self) -> str:
        return str(self.credentials.get("carrier") or NO_CARRIER).strip() or NO_CARRIER

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

    # --- one-time codes -----------------------------------------------------------------------
    def pin_unavailable(self) -> str | None:
        """Why `send_pin` cannot be used with this provider account, or None when it can."""
        carrier = str(self.credentials.get("carrier") or "").strip()
        if not carrier or carrier.lower() == NO_CARRIER:
            return (
                "Ogangi's PIN method needs the carrier's name (case sensitive), and the provider "
                "account has no 'carrier' credential"
            )
        return None

    def send_pin(self, to: str, text: str, *, sender: str, length: int = 6) -> str:
        """Have Ogangi generate a PIN of ``length`` digits and text it to ``to``; returns the PIN.

        ``sendSMSPinMobileNumberConfirm``: the same rules as `send` for number, sender and text;
        the ``carrier`` credential must name the carrier (`pin_unavailable`).
        """
        why_not = self.pin_unavailable()
        if why_not:
            raise ProviderConfigurationError(why_not, code="no_carrier")
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

    # --- check --------------------------------------------------------------------------------
    def mo_page(self, page: int, per_page: int, reading: Reading | None = None) -> Answer:
        params = [str(self.credential("instance_id")), str(page), str(per_page), MO_SEARCH]
        url = self.signed_url("tools/getMOMessages", params, reading)
        return self.read_answer(self.call(ProviderRequest("GET", url)), "the reply search")

    @staticmethod
    def _signature_refused(error: ProviderError) -> bool:
        """Whether Ogangi refused the call's signature (or its keys) rather than answering it."""
        return error.error_class == ErrorClass.ACCOUNT and error.code.upper() in (
            "BAD_SIGNATURE",
            "401",
            "403",
        )

    def check(self) -> str:
        """One signed read (getMOMessages, one result): proves base URL, instance and keys; if
        the signature is refused, finds the signature reading Ogangi accepts (module docstring).
        """
        configured = self.signature_reading()
        instance = self.credential("instance_id")
        try:
            answer = self.mo_page(1, 1, configured)
        except ProviderError as exc:
            if not self._signature_refused(exc):
                raise
            refused = exc
        else:
            records = child_text(answer.result, "MOMessageList/records")
            stored = f"; {records} replies stored" if records.isdigit() else ""
            return (
                f"Ogangi answers and accepts the signature for instance {instance} "
                f"({configured}){stored}"
            )
        logger.info("ogangi: signature refused with %s; trying the other readings", configured)
        for reading in READINGS:
            if reading == configured:
                continue
            try:
                self.mo_page(1, 1, reading)
            except ProviderError as exc:
                if self._signature_refused(exc):
                    continue
                if exc.code.upper() not in self.errors:
                    raise  # unreachable, unreadable...: which reading is right is not known
                answered = f" (it then answered {exc.code.upper()})"
            else:
                answered = ""
            logger.warning("ogangi: Ogangi refuses %s but accepts %s", configured, reading)
            detail = (
                f"Ogangi refuses the signature as configured ({configured}) but accepts "
                f"{reading}{answered}: set the provider account's credentials signature_segments "
                f'to "{reading.segments}" and signature_encoding to "{reading.encoding}", then '
                "test again (nothing was changed automatically)"
            )
            message = reason(ErrorClass.ACCOUNT, self.display_name, detail, credentials=True)
            raise ProviderConfigurationError(message, code="signature_reading")
        tried = "; ".join(str(reading) for reading in READINGS)
        raise type(refused)(
            f"{refused.message}. No signature reading is accepted (tried {tried}): the keys or "
            "the instance are wrong",
            code=refused.code,
            raw=refused.raw,
        )

    # --- polling ------------------------------------------------------------------------------
    def fetch_inbound(self, cursor: str = "") -> tuple[list[InboundSMS], str]:
        """Replies not fetched before, oldest first, and the cursor to pass next time."""
        state = Cursor.load(cursor)
        reader = _PageReader(self)
        first = reader.read(1)
        if not first.items:
            return [], cursor
        newest_first = reader.newest_first(first, state)
        head = first.items[0].short if first.items[0] is not None else None
        fresh: dict[str, tuple[int, InboundSMS]] = {}
        if state.gap is not None:
            gap = state.gap
            walk = Walk(floor=gap.floor, seen=state.seen, boundary=gap.boundary, below=gap.below)
            reader.walk(walk, gap.below - 1, newest_first, fresh)
            if not walk.finished:
                lowest = gap.below if walk.lowest is None else min(walk.lowest, gap.below)
                logger.info("ogangi: %d older replies read; more at the next poll", len(fresh))
                left = Cursor(
                    state.floor,
                    state.seen,
                    state.boundary,
                    Gap(gap.floor, lowest, gap.boundary),
                    state.head,
                )
                return _oldest_first(fresh), left.dump()
            if reader.spent:
                done = Cursor(state.floor, state.seen, state.boundary, None, state.head)
                return _oldest_first(fresh), done.dump()
        top = Walk(floor=state.floor, seen=state.seen, boundary=state.boundary)
        reader.walk(top, reader.records - 1, newest_first, fresh)
        gap = None
        if not top.finished and top.lowest is not None:
            if state.floor is None:
                logger.warning(
                    "ogangi: first poll: read the newest %d pages of replies; the %d older ones "
                    "Ogangi holds are from before this provider account was polled",
                    MO_MAX_PAGES,
                    top.lowest,
                )
            else:
                logger.info(
                    "ogangi: more than %d pages of new replies: the rest are read by the next "
                    "polls",
                    MO_MAX_PAGES,
                )
                gap = Gap(state.floor, top.lowest, state.boundary)
        if not top.walked:
            kept = Cursor(state.floor, state.seen, state.boundary, gap, state.head)
            return _oldest_first(fresh), kept.dump()
        if gap is None:
            floor, seen = _next_floor(state, top.walked, CURSOR_MAX_SEEN)
        else:  # the replies listed stay listed for the gap; the new ones share what room is left
            floor, seen = _next_floor(state, top.walked, CURSOR_MAX_SEEN - len(state.seen))
            seen |= state.seen
        boundary = top.highest + 1 if top.highest is not None else state.boundary
        return _oldest_first(fresh), Cursor(floor, seen, boundary, gap, head).dump()

    def parse_mo(self, item: Element) -> MO | None:
        """A reply placed (fingerprint, date), or None for an MO without sender or date."""
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
        return MO(fingerprint[:CURSOR_FINGERPRINT], sent_ms, inbound)


class _PageReader:
    """The getMOMessages pages of one poll, each read once: the first and last pages to learn
    the order, then at most MO_MAX_PAGES more for the walks."""

    def __init__(self, adapter: OgangiProvider) -> None:
        self.adapter = adapter
        self.pages: dict[int, MOPage] = {}
        self.records = 0  # the total found, as the latest answer says
        self.reads = 0
        self.free = 1  # the pages read to learn the order do not count

    @property
    def spent(self) -> bool:
        return self.reads - self.free >= MO_MAX_PAGES

    def read(self, number: int) -> MOPage:
        if number in self.pages:
            return self.pages[number]
        self.reads += 1
        answer = self.adapter.mo_page(number, MO_PER_PAGE)
        listing = answer.result.find("MOMessageList") if answer.result is not None else None
        elements = listing.findall("MessageList/MOMessage") if listing is not None else []
        total = child_text(listing, "records")
        if total.isdigit():
            records = int(total)
        elif number == 1 and len(elements) < MO_PER_PAGE:
            records = len(elements)
        elif self.pages:
            records = self.records
        else:
            raise ProviderRejected(
                "Ogangi's reply list has no <records> (the total found): its pages cannot be "
                f"walked: {answer.text[:200]!r}",
                code="unreadable",
                raw=answer.text,
            )
        page = MOPage(number, records, [self.adapter.parse_mo(item) for item in elements])
        self.pages[number] = page
        self.records = records
        return page

    def newest_first(self, first: MOPage, state: Cursor) -> bool:
        """Whether the list comes newest first (module docstring). The pages read to learn it
        are not counted in the walks' budget."""
        answer = self._newest_first(first, state)
        self.free = self.reads
        return answer

    def _newest_first(self, first: MOPage, state: Cursor) -> bool:
        dated = [mo.sent_ms for mo in first.items if mo is not None]
        overlap = MO_OVERLAP // timedelta(milliseconds=1)
        if len(dated) >= 2 and abs(dated[0] - dated[-1]) > overlap:
            return dated[0] > dated[-1]
        if first.records > len(first.items) and dated:
            last = self.read((first.records - 1) // MO_PER_PAGE + 1)
            at_the_end = [mo.sent_ms for mo in last.items if mo is not None]
            if at_the_end and at_the_end[-1] != dated[0]:
                return dated[0] > at_the_end[-1]
        grown = state.boundary is not None and first.records > state.boundary
        if grown and state.head is not None and first.items[0] is not None:
            # The dates cannot tell: new replies came first if the list's head changed.
            return first.items[0].short != state.head
        if len(dated) >= 2 and dated[0] != dated[-1]:
            return dated[0] > dated[-1]
        return False  # all on one page, or all of one date: the order changes nothing

    def page_of(self, position: int, newest_first: bool) -> int:
        rank = self.records - 1 - position if newest_first else position
        return max(rank, 0) // MO_PER_PAGE + 1

    def walk(
        self,
        walk: Walk,
        start: int,
        newest_first: bool,
        fresh: dict[str, tuple[int, InboundSMS]],
    ) -> None:
        """Read from position ``start`` towards the oldest reply, page by page, until a page that
        holds an old reply (`Walk.is_old`), the oldest reply, or the page budget; new replies go
        to ``fresh`` (by provider id)."""
        position = start
        while position >= 0:
            number = self.page_of(position, newest_first)
            cached = number in self.pages
            if not cached and self.spent:
                return  # not finished: the budget is spent
            page = self.read(number)
            positions = [page.position(index, newest_first) for index in range(len(page.items))]
            if positions and not min(positions) <= position <= max(positions):
                if cached:  # read before replies arrived: read it again
                    del self.pages[number]
                    continue
                if min(positions) > position:  # replies arrived: the position is further on
                    if self.page_of(position, newest_first) != number:
                        continue
                    break  # the list ends before the position the total announced
            reached_old = False
            for pos, mo in zip(positions, page.items, strict=True):
                walk.read(pos)
                if mo is None or (walk.below is not None and pos >= walk.below):
                    continue
                if mo.short in walk.walked:  # pushed along by an arrival: read already
                    continue
                walk.walked[mo.short] = mo.sent_ms
                if walk.is_old(pos, mo):
                    reached_old = True
                elif walk.is_new(pos, mo):
                    fresh[mo.inbound.provider_message_id] = (mo.sent_ms, mo.inbound)
            if reached_old:
                break
            if positions:
                position = min(positions) - 1
            elif not newest_first and number > 1:
                logger.warning("ogangi: page %d of the replies came back empty", number)
                position = (number - 1) * MO_PER_PAGE - 1
            else:
                break  # no reply where the total announced some: the list ends here
        walk.finished = True


def _oldest_first(fresh: dict[str, tuple[int, InboundSMS]]) -> list[InboundSMS]:
    return [inbound for _, inbound in sorted(fresh.values(), key=lambda pair: pair[0])]


def _next_floor(state: Cursor, walked: dict[str, int], room: int) -> tuple[int, frozenset[str]]:
    """The floor moves up to newest minus the overlap, or higher so that at most ``room``
    replies above it are listed."""
    floor, seen = state.floor, state.seen
    newest = max(walked.values())
    candidate = newest - MO_OVERLAP // timedelta(milliseconds=1)
    next_floor = candidate if floor is None else max(floor, candidate)
    window = {short: ms for short, ms in walked.items() if ms > next_floor}
    if floor == next_floor:  # still the same floor: what was seen above it stays seen
        window |= {short: floor + 1 for short in seen if short not in window}
    while len(window) > room:
        next_floor = min(window.values())
        window = {short: ms for short, ms in window.items() if ms > next_floor}
    return next_floor, frozenset(window)
