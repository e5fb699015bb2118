"""Ogangi Mobile Engagement: everything in the path, HMAC-SHA256 signature, XML answers.

What the fake accepts and answers (``ogangi-mobile-engagement.txt`` and NOTES.md), on GET (or
POST, body ignored), each path ending in ``/{publicKey}/{signature}``:

- ``/rest/api/tools/sendSMS/{instanceId}/{carrier}/{from}/{mobileNumber}/{text}/...``:
  ``mobileNumber`` and ``text`` Base64 (standard alphabet, UTF-8) → 200::

      <response><input>sendSMS</input><status>OK</status><description>Completed</description>
      <result><messages><message><id>-8174720676710228700</id><carrier>..</carrier>
      <from>..</from><to>..</to><text>..</text><status>SENT_TO_CARRIER</status>
      <statusDescription>Sent to Carrier</statusDescription><encoding>UTF-8</encoding>
      <date>2013-09-17T10:13:59.176+00:00</date><timezone>UTC</timezone>
      <clientId>{publicKey}</clientId></message></messages></result></response>

- ``/rest/api/sendMT/{instanceId}/{from}/{carrier}/{mobileNumber}/{text}[/{flags}]/...``:
  only ``text`` Base64 → 200 with the static part alone (``<input>sendMT</input>``, ``OK``,
  ``Completed``), as the doc shows: no message id.
- ``/rest/api/tools/sendSMSPinMobileNumberConfirm/{instanceId}/{carrier}/{from}/{mobileNumber}/
  {text}/{length}/...``: only ``text`` Base64; ``length`` 1 to 12; ``carrier`` a name (the
  doc: "Mobile operator name (case sensitive)"), so ``null`` is refused like a bad input →
  200 with ``<result><PinSMSConfirmation><pin>…</pin></PinSMSConfirmation></result>``.
- ``/rest/api/tools/getMOMessages/{instanceId}/{page}/{resultsPerPage}/{parameters}/...`` →
  200 with ``<result><MOMessageList><records>N</records><MessageList><MOMessage><text/>
  <from/><to/><encoding/><keyword/><carrier/><sendDate/></MOMessage>...</MessageList>
  </MOMessageList></result>``: the stored replies (injected, or automatic for numbers ending in
  9999), ``records`` the total that match, then the page asked for.
- Replies are never pushed: ``POST /_simulator/replies`` with ``"provider": "ogangi"`` stores
  one for ``getMOMessages``.

Authentication: ``instanceId`` must be the configured one (default ``1001``), ``publicKey`` the
configured public key (default ``ogangi-public``) and ``signature`` the HMAC-SHA256, keyed with
the UTF-8 private key (default ``ogangi-private``), of the parameters that precede
``publicKey`` joined with ``/``. The doc leaves two things open, and the fake accepts exactly one
reading of each, the one it is configured for (settings below): ``signature_segments``
``encoded`` (the default: the segments exactly as they appear in the URL, still
percent-encoded) or ``decoded`` (the values once percent-decoded); ``signature_encoding`` ``hex``
(the default: 64 hex digits, either case) or ``base64`` (standard alphabet, padded, itself
percent-encoded in the path). Anything else → 403 with ``<status>BAD_SIGNATURE</status>
<description>Invalid signature, access denied</description>``.
A segment that is not valid Base64 (or not UTF-8), a mobile number that is not 6 to 15 digits
(optional leading ``+``), an empty text or ``from``, a bad page, count or length, an invalid
search string → 400 with ``<status>ERROR</status>`` and the doc's linked description
(``Internal error, please report this to support@messangi.com``). The reason of a refusal is in
an ``X-Simulator-Reason`` header. Faults answer ``ERROR`` the same way (5xx, or 429: Ogangi's
internal error, temporary), except an ``error_status`` of 401 or 403, answered ``BAD_SIGNATURE``
as for revoked keys (changing ``public_key``/``private_key`` at run time does that too).

Choices where the doc is silent: the doc's examples have no root element (``<input>``,
``<status>``, ``<description>``, ``<result>`` side by side), which is not a well-formed XML
document: the fake wraps them in ``<response>``, with an XML declaration, and answers
``application/xml;charset=UTF-8``; its getMOMessages example closes ``MOMessageList`` with a
second opening tag (a typo): the fake closes it properly. Status words and descriptions are those
of Ogangi's "Response XML Basics" page (OK/Completed, BAD_SIGNATURE/"Invalid signature, access
denied", ERROR/"Internal error, please report this to support@messangi.com"); the HTTP statuses
(403, 400) are the fake's. A message ``id`` is a random signed 64-bit number, as in the example.
``carrier`` ``null`` (let Ogangi choose) is answered as ``SimCarrier``; ``clientId`` is the public
key; ``date`` is ``yyyy-MM-dd'T'HH:mm:ss.SSSZZ`` in UTC (``+00:00``). getMOMessages follows the
example where it contradicts the field table: ``from`` is the phone that replied, ``to`` the
short/long code it wrote to (the reply's ``to``, else the ``from`` of the message it answers,
else ``12345``), numbers as bare digits (no ``+``), ``sendDate`` as ``2014-10-13
10:30:51.922`` (UTC: when an injected reply was made, when a delayed automatic one is stored;
a test may date a `Reply` itself), ``keyword`` ``^WORD.*`` from the reply's first word,
``carrier`` that of the message it answers (else ``SimCarrier``). Pages count from 1;
``parameters`` is Ogangi's "MO Inline Search String" (``from=…&to=…&carrier=…&keyword=<regex>&
order=asc|desc``, names in any case, comma-separated alternatives, unknown names ignored;
``null`` or any segment without ``=`` means no filter); the list's order is a setting (below).
Ogangi pushes no delivery reports (``SENT_TO_CARRIER`` is all the fake says), so a number ending
in 0000 is accepted like any other.

Settings (the readings where the doc is silent), per run: ``SimulatorServer(credentials=
{"ogangi": {...}})`` or ``POST /_simulator/config {"credentials": {"ogangi": {...}}}``:

- ``signature_segments``: ``encoded`` (default) or ``decoded``; ``signature_encoding``: ``hex``
  (default) or ``base64``: the one signature reading accepted (see above).
- ``mo_order``: the order of getMOMessages' list: ``search`` (the default: as the search
  string's ``order`` asks, oldest first without it), ``asc`` (always oldest first, whatever the
  search string says) or ``desc`` (always newest first).

These are the fake's own: `runsimulator` does not copy them from the hub's provider account, so
the simulator never silently agrees with whatever the hub is configured for.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.etree.ElementTree import Element, SubElement, tostring

from ..server import Fake, Reply, SentMessage, SimRequest, SimResponse

CONTENT_TYPE = "application/xml;charset=UTF-8"
DESCRIPTIONS = {
    "OK": "Completed",
    "BAD_SIGNATURE": "Invalid signature, access denied",
    "ERROR": "Internal error, please report this to support@messangi.com",
}
MOBILE_RE = re.compile(r"\+?\d{6,15}", re.ASCII)
HEX_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
DEFAULT_CARRIER = "SimCarrier"
DEFAULT_CODE = "12345"
MAX_STORED_REPLIES = 10_000
# The readings where the doc is silent (module docstring), the default first.
SETTINGS = {
    "signature_segments": ("encoded", "decoded"),
    "signature_encoding": ("hex", "base64"),
    "mo_order": ("search", "asc", "desc"),
}
BASE64_RE = re.compile(r"[A-Za-z0-9+/]{43}=", re.ASCII)  # 32 bytes, standard alphabet, padded

# method, path prefix, signed parameters in order, which of them are Base64
METHODS: tuple[tuple[str, str, tuple[str, ...], frozenset[str]], ...] = (
    (
        "sendSMS",
        "/rest/api/tools/sendSMS",
        ("instanceId", "carrier", "from", "mobileNumber", "text"),
        frozenset({"mobileNumber", "text"}),
    ),
    (
        "sendMT",
        "/rest/api/sendMT",
        ("instanceId", "from", "carrier", "mobileNumber", "text"),
        frozenset({"text"}),
    ),
    (
        "sendMT",
        "/rest/api/sendMT",
        ("instanceId", "from", "carrier", "mobileNumber", "text", "flags"),
        frozenset({"text"}),
    ),
    (
        "sendSMSPinMobileNumberConfirm",
        "/rest/api/tools/sendSMSPinMobileNumberConfirm",
        ("instanceId", "carrier", "from", "mobileNumber", "text", "length"),
        frozenset({"text"}),
    ),
    (
        "getMOMessages",
        "/rest/api/tools/getMOMessages",
        ("instanceId", "page", "resultsPerPage", "parameters"),
        frozenset(),
    ),
)


class Refusal(Exception):
    def __init__(self, http_status: int, status: str, reason: str) -> None:
        super().__init__(reason)
        self.http_status, self.status, self.reason = http_status, status, reason


def answer(
    method: str, status: str = "OK", result: Element | None = None, http_status: int = 200
) -> SimResponse:
    """The static part (``input``, ``status``, ``description``) and the optional result."""
    root = Element("response")
    SubElement(root, "input").text = method
    SubElement(root, "status").text = status
    SubElement(root, "description").text = DESCRIPTIONS[status]
    if result is not None:
        root.append(result)
    body = tostring(root, encoding="utf-8", xml_declaration=True)
    return SimResponse(http_status, body, content_type=CONTENT_TYPE)


def _elements(parent: Element, fields: dict[str, str]) -> None:
    for tag, text in fields.items():
        SubElement(parent, tag).text = text


def sign(params: str, private_key: str) -> bytes:
    """The HMAC-SHA256 digest of the signed string (what a client writes as hex or Base64)."""
    return hmac.new(private_key.encode("utf-8"), params.encode("utf-8"), hashlib.sha256).digest()


def _decode_signature(text: str, encoding: str) -> bytes | None:
    """The digest a signature carries in the configured form, or None when it is not that form."""
    if encoding == "hex":
        return bytes.fromhex(text) if HEX_RE.fullmatch(text) else None
    return base64.b64decode(text) if BASE64_RE.fullmatch(text) else None


def _b64_text(value: str, name: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Refusal(400, "ERROR", f"{name} is not Base64 of UTF-8 text") from None


def _bare(number: str) -> str:
    return number[1:] if number.startswith("+") else number


def _positive(value: str, name: str, maximum: int | None = None) -> int:
    if not value.isdigit() or int(value) < 1 or (maximum is not None and int(value) > maximum):
        bound = f" up to {maximum}" if maximum else ""
        raise Refusal(400, "ERROR", f"{name} must be a whole number from 1{bound}")
    return int(value)


class OgangiFake(Fake):
    slug = "ogangi"
    default_credentials = {
        "instance_id": "1001",
        "public_key": "ogangi-public",
        "private_key": "ogangi-private",
        **{key: choices[0] for key, choices in SETTINGS.items()},
    }
    secret_credentials = frozenset({"private_key"})
    credential_aliases = {
        "instanceId": "instance_id",
        "instance": "instance_id",
        "publicKey": "public_key",
        "privateKey": "private_key",
        "signature_format": "signature_encoding",
    }

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self._replies: deque[dict[str, Any]] = deque(maxlen=MAX_STORED_REPLIES)
        self._replies_lock = threading.Lock()

    def check_credential(self, key: str, value: str) -> str:
        if key not in SETTINGS:
            return value
        if value.lower() not in SETTINGS[key]:
            raise ValueError(f"ogangi {key} must be one of {SETTINGS[key]}, not {value!r}")
        return value.lower()

    @classmethod
    def normalize_credentials(cls, raw: Mapping[str, Any]) -> dict[str, str]:
        """The hub account's keys only: the readings stay the fake's own (module docstring)."""
        normalized = super().normalize_credentials(raw)
        return {key: value for key, value in normalized.items() if key not in SETTINGS}

    def register(self) -> None:
        handlers: dict[str, Callable[[str, dict[str, str], str], SimResponse]] = {
            "sendSMS": self._send_sms,
            "sendMT": self._send_mt,
            "sendSMSPinMobileNumberConfirm": self._send_pin,
            "getMOMessages": self._get_mo_messages,
        }
        for method, prefix, names, base64_names in METHODS:
            path = prefix + "".join(f"/{{{name}}}" for name in names) + "/{publicKey}/{signature}"
            handler = functools.partial(self._call, method, names, base64_names, handlers[method])
            self.route("GET", path, handler)
            self.route("POST", path, handler)

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        method = next(
            (name for name, prefix, *_ in METHODS if request.path.startswith(prefix + "/")), ""
        )
        word = "BAD_SIGNATURE" if status in (401, 403) else "ERROR"
        response = answer(method, word, http_status=status)
        response.headers["X-Simulator-Reason"] = message
        return response

    # --- the common part: authentication, decoding ------------------------------------------
    def _call(
        self,
        method: str,
        names: tuple[str, ...],
        base64_names: frozenset[str],
        handler: Callable[[str, dict[str, str], str], SimResponse],
        request: SimRequest,
    ) -> SimResponse:
        try:
            raw = [request.params[name] for name in names]
            public_key = unquote(request.params["publicKey"])
            self._authenticate(raw, public_key, unquote(request.params["signature"]))
            values = {name: unquote(value) for name, value in zip(names, raw, strict=True)}
            for name in base64_names:
                values[name] = _b64_text(values[name], name)
            return handler(method, values, public_key)
        except Refusal as refusal:
            response = answer(method, refusal.status, http_status=refusal.http_status)
            response.headers["X-Simulator-Reason"] = refusal.reason
            return response

    def _authenticate(self, raw: list[str], public_key: str, signature: str) -> None:
        expected = self.credentials
        if unquote(raw[0]) != expected["instance_id"]:
            raise Refusal(403, "BAD_SIGNATURE", "unknown instanceId")
        if not hmac.compare_digest(public_key.encode(), expected["public_key"].encode()):
            raise Refusal(403, "BAD_SIGNATURE", "unknown publicKey")
        signed = raw if expected["signature_segments"] == "encoded" else map(unquote, raw)
        digest = sign("/".join(signed), expected["private_key"])
        given = _decode_signature(signature, expected["signature_encoding"])
        if given is None or not hmac.compare_digest(given, digest):
            raise Refusal(403, "BAD_SIGNATURE", "the signature does not match")

    def _message_fields(self, values: dict[str, str]) -> tuple[str, str, str, str]:
        number, sender, text = values["mobileNumber"], values["from"], values["text"]
        if not MOBILE_RE.fullmatch(number):
            raise Refusal(400, "ERROR", "mobileNumber must be 6 to 15 digits")
        if not sender:
            raise Refusal(400, "ERROR", "from must not be empty")
        if not text:
            raise Refusal(400, "ERROR", "text must not be empty")
        carrier = values["carrier"]
        return number, sender, text, DEFAULT_CARRIER if carrier.lower() == "null" else carrier

    def _remember(self, number: str, sender: str, text: str, carrier: str) -> str:
        message_id = str(int.from_bytes(secrets.token_bytes(8), "big", signed=True))
        self.accepted(SentMessage(message_id, number, sender, {"carrier": carrier, "text": text}))
        return message_id

    # --- the methods -------------------------------------------------------------------------
    def _send_sms(self, method: str, values: dict[str, str], public_key: str) -> SimResponse:
        number, sender, text, carrier = self._message_fields(values)
        message_id = self._remember(number, sender, text, carrier)
        result = Element("result")
        message = SubElement(SubElement(result, "messages"), "message")
        _elements(
            message,
            {
                "id": message_id,
                "carrier": carrier,
                "from": sender,
                "to": number,
                "text": text,
                "status": "SENT_TO_CARRIER",
                "statusDescription": "Sent to Carrier",
                "encoding": "UTF-8",
                "date": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "timezone": "UTC",
                "clientId": public_key,
            },
        )
        return answer(method, result=result)

    def _send_mt(self, method: str, values: dict[str, str], public_key: str) -> SimResponse:
        self._remember(*self._message_fields(values))
        return answer(method)

    def _send_pin(self, method: str, values: dict[str, str], public_key: str) -> SimResponse:
        length = _positive(values["length"], "length", maximum=12)
        if values["carrier"].strip().lower() in ("", "null"):
            raise Refusal(400, "ERROR", "carrier must be the carrier's name for the PIN method")
        self._remember(*self._message_fields(values))
        pin = "".join(secrets.choice("0123456789") for _ in range(length))
        result = Element("result")
        SubElement(SubElement(result, "PinSMSConfirmation"), "pin").text = pin
        return answer(method, result=result)

    def _get_mo_messages(self, method: str, values: dict[str, str], public_key: str) -> SimResponse:
        page = _positive(values["page"], "page")
        per_page = _positive(values["resultsPerPage"], "resultsPerPage", maximum=1000)
        selected = self._search(values["parameters"])
        shown = selected[(page - 1) * per_page : page * per_page]
        result = Element("result")
        mo_list = SubElement(result, "MOMessageList")
        SubElement(mo_list, "records").text = str(len(selected))
        messages = SubElement(mo_list, "MessageList")
        for stored in shown:
            _elements(SubElement(messages, "MOMessage"), stored)
        return answer(method, result=result)

    def _search(self, parameters: str) -> list[dict[str, str]]:
        """The stored replies the MO Inline Search String selects, in its order."""
        filters: dict[str, list[str]] = {}
        if "=" in parameters:
            for name, value in parse_qsl(parameters, keep_blank_values=True):
                filters.setdefault(name.lower(), []).extend(value.split(","))
        with self._replies_lock:
            replies = list(self._replies)
        try:
            keywords = [re.compile(pattern, re.DOTALL) for pattern in filters.get("keyword", [])]
        except re.error:
            raise Refusal(400, "ERROR", "keyword is not a valid regular expression") from None

        def wanted(name: str, value: str, same: Callable[[str, str], bool]) -> bool:
            return name not in filters or any(same(value, option) for option in filters[name])

        def same_number(a: str, b: str) -> bool:
            return re.sub(r"\D", "", a) == re.sub(r"\D", "", b) if b.strip() else False

        selected = [
            reply
            for reply in replies
            if wanted("from", reply["from"], same_number)
            and wanted("to", reply["to"], lambda a, b: a == b.strip() or same_number(a, b))
            and wanted("carrier", reply["carrier"], lambda a, b: a.lower() == b.strip().lower())
            and (not keywords or any(k.fullmatch(reply["text"]) for k in keywords))
        ]
        order = self.credentials["mo_order"]
        if order == "search":
            order = (filters.get("order") or ["asc"])[0].strip().lower()
            if order not in ("asc", "desc"):
                raise Refusal(400, "ERROR", "order must be asc or desc")
        return selected[::-1] if order == "desc" else selected

    # --- replies -------------------------------------------------------------------------------
    def deliver_reply(self, reply: Reply, delay: float) -> dict[str, Any]:
        original = self.original(reply)
        to = reply.to or (original.sender if original else None) or DEFAULT_CODE
        words = re.findall(r"\w+", reply.text)
        carrier = original.record.get("carrier", DEFAULT_CARRIER) if original else DEFAULT_CARRIER

        def store() -> None:
            # An injected reply is dated as it says (the time it was made); a delayed one when
            # it is stored.
            received = reply.received_at.astimezone(UTC) if delay <= 0 else datetime.now(UTC)
            stored = {
                "text": reply.text,
                "from": _bare(reply.from_number),
                "to": _bare(to),
                "encoding": "UTF-8",
                "keyword": f"^{words[0].upper()}.*" if words else "",
                "carrier": carrier,
                "sendDate": received.strftime("%Y-%m-%d %H:%M:%S.")
                + f"{received.microsecond // 1000:03d}",
            }
            with self._replies_lock:
                self._replies.append(stored)

        if delay > 0:
            self.server.schedule(delay, store, f"simulator-ogangi-mo-{reply.id}")
        else:
            store()
        return {"delivery": "stored"}
