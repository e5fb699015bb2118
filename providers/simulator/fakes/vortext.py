"""Vortext (Cegedim): HTTP Basic auth, JSON in and out; replies are pushed, unauthenticated.

What the fake accepts and answers (``vortext-cegedim.txt`` and NOTES.md):

- Every request needs ``Authorization: Basic base64(username:password)`` (defaults ``vortext`` /
  ``vortext-secret``); otherwise 401 with ``WWW-Authenticate: Basic realm="Vortext"`` and
  ``{"error": "..."}``.
- ``POST /sms`` with ``Content-Type: application/json`` and ``{"phoneNumber": "+33612345678",
  "message": "..."}`` → 200 ``{"messageId": "<uuid>", "phoneNumber": ..., "message": ...}``.
  Other fields (a ``sender``...) are ignored: the sender name is set per account on Vortext's
  side. 415 when the body is not declared JSON, 400 ``{"error": "..."}`` naming the field when
  ``phoneNumber`` is not E.164 or ``message`` is missing or empty.
- ``GET /status`` → 200 ``{"status": "UP"}``.
- Replies (MO): POSTed, with no authentication, as JSON to ``hub_urls["vortext"]["inbound"]``::

      {"response": {"content": "<text>", "answeredAt": "2020-02-12T13:00:00.000+0000"},
       "message": {...the message it answers...}}

  The original is found by ``in_reply_to`` (its ``messageId``), else it is the latest message
  sent to the replying number. What ``message`` holds is the doc's open question (its example
  shows ``{ }``), so it is a reading, the credential ``reply_message`` (settable per run with
  ``POST /_simulator/config {"credentials": {"vortext": {"reply_message": ...}}}``):

  - ``send_answer`` (the default): the send answer of the original (``messageId``,
    ``phoneNumber``, ``message``); with no original known, what is known:
    ``{"phoneNumber": <from>}`` (plus ``"messageId"`` when ``in_reply_to`` was given).
  - ``send_request``: the fields of the send request only (``phoneNumber``, and ``message``
    when the original is known): no id.
  - ``empty``: ``{}``, exactly the doc's example: neither the number nor the message.

Choices where the doc is silent (NOTES.md gives the send call from a public client, nothing
more): the send answers 200 and its body is the message object (``messageId``, ``phoneNumber``,
``message``: no invented fields) that the reply push carries back as ``message`` in the
``send_answer`` reading;
``phoneNumber`` must be E.164 as in NOTES.md's example; ``/status`` checks the credentials too
("basic authentication is used for every request") and answers ``{"status": "UP"}``; error bodies
are ``{"error": "..."}``. Vortext documents no delivery reports, so none is sent (a number
ending in 0000 is accepted like any other). ``answeredAt`` uses the doc's date format (ISO 8601,
milliseconds, numeric offset without a colon), in UTC. Faults answer ``{"error": "..."}``; an
``error_status`` of 401 exactly as refused credentials (with ``WWW-Authenticate``), and revoked
credentials are also simulated by changing ``username``/``password`` at run time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

from ..server import E164_RE, Fake, Reply, SentMessage, SimRequest, SimResponse, error

REALM = 'Basic realm="Vortext"'


def vortext_date(moment: datetime) -> str:
    """``2016-06-01T12:27:19.000+0200``: the doc's date format."""
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}"
        + (moment.strftime("%z") or "+0000")
    )


def _credentials_refused() -> SimResponse:
    response = error(401, "full authentication is required: bad username or password")
    response.headers["WWW-Authenticate"] = REALM
    return response


# What a reply push's "message" holds (the doc's example shows "{ }"): see the module docstring.
REPLY_MESSAGE_READINGS = ("send_answer", "send_request", "empty")


class VortextFake(Fake):
    slug = "vortext"
    default_credentials = {
        "username": "vortext",
        "password": "vortext-secret",
        "reply_message": "send_answer",
    }
    secret_credentials = frozenset({"password"})
    credential_aliases = {"user": "username", "login": "username"}
    hub_url_kinds = ("inbound",)

    def check_credential(self, key: str, value: str) -> str:
        if key == "reply_message" and value not in REPLY_MESSAGE_READINGS:
            raise ValueError(f"vortext reply_message must be one of {REPLY_MESSAGE_READINGS}")
        return value

    def register(self) -> None:
        self.route("POST", "/sms", self._send)
        self.route("GET", "/status", self._status)

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        return _credentials_refused() if status == 401 else error(status, message)

    def _refusal(self, request: SimRequest) -> SimResponse | None:
        scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        expected = self.credentials
        good = (
            scheme.lower() == "basic"
            and bool(sep)
            and hmac.compare_digest(username.encode(), expected["username"].encode())
            and hmac.compare_digest(password.encode(), expected["password"].encode())
        )
        return None if good else _credentials_refused()

    def _status(self, request: SimRequest) -> SimResponse:
        return self._refusal(request) or SimResponse(200, {"status": "UP"})

    def _send(self, request: SimRequest) -> SimResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if request.content_type != "application/json":
            return error(415, "Content-Type must be application/json")
        try:
            data = request.json()
        except ValueError:
            return error(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return error(400, "the body must be a JSON object")
        phone = data.get("phoneNumber")
        if not isinstance(phone, str) or not E164_RE.fullmatch(phone):
            return error(400, "field 'phoneNumber' must be an E.164 number such as +33612345678")
        text = data.get("message")
        if not isinstance(text, str) or not text:
            return error(400, "field 'message' is required and must be a non-empty string")
        answer = {"messageId": str(uuid.uuid4()), "phoneNumber": phone, "message": text}
        self.accepted(SentMessage(answer["messageId"], phone, None, dict(answer)))
        return SimResponse(200, answer)

    def deliver_reply(self, reply: Reply, delay: float) -> dict[str, Any]:
        url = self.push_url("inbound")
        message = self._reply_message(reply)

        def payload() -> dict[str, Any]:  # built when sent: answeredAt is the time of the push
            answered = vortext_date(datetime.now(UTC))
            return {"response": {"content": reply.text, "answeredAt": answered}, "message": message}

        self.server.schedule_callback(url, payload, provider=self.slug, label=reply.id, delay=delay)
        return {"delivery": "push", "url": url}

    def _reply_message(self, reply: Reply) -> dict[str, Any]:
        """The push's ``message``, in the reading the fake is configured for."""
        reading = self.credentials["reply_message"]
        if reading == "empty":
            return {}
        original = self.original(reply)
        if reading == "send_request":
            message = {"phoneNumber": original.to if original else reply.from_number}
            if original is not None:
                message["message"] = original.record.get("message", "")
            return message
        if original is not None:
            return dict(original.record)
        message = {"phoneNumber": reply.from_number}
        if reply.in_reply_to:
            message = {"messageId": reply.in_reply_to, **message}
        return message
