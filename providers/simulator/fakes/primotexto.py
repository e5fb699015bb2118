"""Primotexto: notification SMS, header ``X-Primotexto-ApiKey``, JSON in and out.

What the fake accepts and answers (``primotexto.txt`` and NOTES.md):

- ``POST /v2/notification/messages/send`` with ``X-Primotexto-ApiKey: <api_key>`` (default
  ``primotexto-key``) and JSON ``{"number", "message", "sender"?, "campaignName"?,
  "category"?, "date"?}`` → 200 ``{"creditsUsed": 1.0, "snapshotId": "386480"}`` with
  ``Content-Type: application/json;charset=UTF-8`` as the doc shows. ``creditsUsed`` is the
  number of SMS parts as a float (the text's GSM-7 segments: 160 characters, 153 per part
  beyond); ``snapshotId`` is 6 digits like the doc's, counting up from 386480 and coming back
  to 100000 after 999999: ids repeat, as a provider's do when it does not promise otherwise
  (`id_space`, the number of distinct ids, is 900000; a test may make it small).
- The doc's other spellings are accepted too: ``identifier`` for ``number`` and ``tag`` for
  ``category`` (its Ruby and Node examples), and the browser form
  ``GET /v2/notification/messages/send?apiKey=...&identifier=...&sender=...&message=...``.
- Refusals: a missing or wrong key → 401; ``number`` not ``0600000000``-style (10 digits from
  a leading 0) nor E.164 → 400; ``message`` missing or empty, or holding characters outside
  the doc's list → 400 naming them; ``sender`` (when given and not empty) not 3 to 11 ASCII
  letters or digits → 400; ``campaignName``/``category`` not strings, ``date`` not a
  non-negative integer (epoch milliseconds) → 400.
- ``GET /v2/account/stats`` (same header) → 200 ``{"credits": <left>}``, starting at 10000.0
  and decreasing with ``creditsUsed``. Not in the doc: it is the account call of Primotexto's
  own PHP library, served because the hub's adapter uses it as its side-effect-free check.

Choices where the doc is silent: error bodies are not documented (NOTES.md): they are
``{"error": "..."}`` with 400 or 401 (faults too; an ``error_status`` of 401 or 403 says the key
is refused, as a revoked key does; changing ``api_key`` at run time revokes it too). The allowed
characters are the doc's list taken verbatim plus the whitespace it cannot show (space, line
feed, carriage return: its own example has spaces), the same reading as the adapter. A
``date`` in the future is accepted (the fake does not hold messages: the answer is the same).
What Primotexto does with a ``date`` in the past is not documented, so it is a reading, the
credential ``past_date`` (settable per run with ``POST /_simulator/config {"credentials":
{"primotexto": {"past_date": ...}}}``): ``refuse`` (the default, as a real provider plausibly
would: 400 ``{"error": "field 'date' is in the past ..."}``, nothing sent) or ``send_now``
(accepted, sent at once). "Past" is before the fake's clock when the request arrives. The doc
documents no delivery reports and no replies ("callbacks" appears only as a use of
``category``): none is sent, a number ending in 0000 is accepted like any other, and injected
replies are refused.
"""

from __future__ import annotations

import hmac
import itertools
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from ...gsm import analyze
from ..server import E164_RE, Fake, SentMessage, SimRequest, SimResponse, error

SEND_PATH = "/v2/notification/messages/send"
CONTENT_TYPE = "application/json;charset=UTF-8"
DOC_CHARACTERS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
)
ALLOWED_CHARACTERS = frozenset(DOC_CHARACTERS + " \n\r")
NATIONAL_RE = re.compile(r"0[1-9]\d{8}", re.ASCII)
SENDER_RE = re.compile(r"[A-Za-z0-9]{3,11}", re.ASCII)
INITIAL_CREDITS = 10000.0
KEY_REFUSED = "invalid API key (X-Primotexto-ApiKey)"


def _refuse(status: int, message: str) -> SimResponse:
    response = error(status, message)
    response.content_type = CONTENT_TYPE
    return response


# What the fake does with a `date` in the past (the doc is silent): see the module docstring.
PAST_DATE_READINGS = ("refuse", "send_now")


class PrimotextoFake(Fake):
    slug = "primotexto"
    id_space = 900_000  # distinct snapshotIds before they repeat
    default_credentials = {"api_key": "primotexto-key", "past_date": "refuse"}
    secret_credentials = frozenset({"api_key"})
    credential_aliases = {"apiKey": "api_key", "key": "api_key"}

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self._snapshots = itertools.count()
        self._credits = INITIAL_CREDITS
        self._credits_lock = threading.Lock()

    def check_credential(self, key: str, value: str) -> str:
        if key == "past_date" and value not in PAST_DATE_READINGS:
            raise ValueError(f"primotexto past_date must be one of {PAST_DATE_READINGS}")
        return value

    def register(self) -> None:
        self.route("POST", SEND_PATH, self._send_json)
        self.route("GET", SEND_PATH, self._send_query)
        self.route("GET", "/v2/account/stats", self._stats)

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        return _refuse(status, KEY_REFUSED if status in (401, 403) else message)

    def _key_ok(self, key: str) -> bool:
        return bool(key) and hmac.compare_digest(
            key.strip().encode(), self.credentials["api_key"].encode()
        )

    def _stats(self, request: SimRequest) -> SimResponse:
        if not self._key_ok(request.headers.get("X-Primotexto-ApiKey", "")):
            return _refuse(401, KEY_REFUSED)
        with self._credits_lock:
            return SimResponse(200, {"credits": self._credits}, content_type=CONTENT_TYPE)

    def _send_json(self, request: SimRequest) -> SimResponse:
        if not self._key_ok(request.headers.get("X-Primotexto-ApiKey", "")):
            return _refuse(401, KEY_REFUSED)
        try:
            data = request.json()
        except ValueError:
            return _refuse(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return _refuse(400, "the body must be a JSON object")
        return self._send(data)

    def _send_query(self, request: SimRequest) -> SimResponse:
        fields: dict[str, Any] = dict(parse_qsl(request.query, keep_blank_values=True))
        key = fields.pop("apiKey", "") or request.headers.get("X-Primotexto-ApiKey", "")
        if not self._key_ok(key):
            return _refuse(401, "invalid API key (apiKey)")
        if "date" in fields:
            date = fields["date"]
            fields["date"] = int(date) if date.isdigit() else date
        return self._send(fields)

    def _send(self, data: dict[str, Any]) -> SimResponse:
        number = data.get("number", data.get("identifier"))
        if not isinstance(number, str) or not (
            NATIONAL_RE.fullmatch(number) or E164_RE.fullmatch(number)
        ):
            return _refuse(400, "field 'number' must look like 0600000000 or +33600000000")
        message = data.get("message")
        if not isinstance(message, str) or not message:
            return _refuse(400, "field 'message' is required and must be a non-empty string")
        refused = list(dict.fromkeys(char for char in message if char not in ALLOWED_CHARACTERS))
        if refused:
            shown = " ".join(repr(char) for char in refused)
            return _refuse(400, f"field 'message' holds characters that are not allowed: {shown}")
        sender = data.get("sender")
        if sender not in (None, "") and (
            not isinstance(sender, str) or not SENDER_RE.fullmatch(sender)
        ):
            return _refuse(400, "field 'sender' must be 3 to 11 alphanumeric characters")
        for name in ("campaignName", "category", "tag"):
            if data.get(name) is not None and not isinstance(data[name], str):
                return _refuse(400, f"field '{name}' must be a string")
        date = data.get("date")
        if date is not None and (isinstance(date, bool) or not isinstance(date, int) or date < 0):
            return _refuse(400, "field 'date' must be a timestamp in milliseconds")
        if date is not None and self.credentials["past_date"] == "refuse":
            now = int(time.time() * 1000)
            if date < now:
                return _refuse(
                    400, f"field 'date' is in the past ({date} < {now}): nothing was sent"
                )

        credits = float(analyze(message).segments)
        snapshot = str(100000 + (286480 + next(self._snapshots)) % self.id_space)
        with self._credits_lock:
            self._credits -= credits
        self.accepted(SentMessage(snapshot, number, sender or None, {"creditsUsed": credits}))
        return SimResponse(
            200, {"creditsUsed": credits, "snapshotId": snapshot}, content_type=CONTENT_TYPE
        )
