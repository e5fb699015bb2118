"""Expertflow SMS Connector: JSON send, Twilio-style form posts back to the hub.

What the fake accepts and answers (``expertflow-sms-connector.txt`` and NOTES.md):

- ``POST /msg-client/send`` with JSON ``{"To": "+923001234567", "Body": "...", "From"?: "...",
  "channel": "sms"}`` → 200 with **no content** (no body, no Content-Type), exactly as the doc
  shows ("OK, message queued at SMS Connector"): no provider id comes back.
- Refusals, with no content either (the doc's answers all say "No Content"): 400 when the body
  is not a JSON object, ``To`` is not a phone number (digits, an optional leading ``+``, 3 to
  15 digits), ``Body`` is missing or empty, ``From`` is not a string, or ``channel`` is not the
  configured channel (default ``sms``); 401 when basic auth is configured (``username`` and
  ``password`` credentials, empty by default: no auth asked) and the request does not carry it.
  The reason is in an ``X-Simulator-Reason`` header (and the request log), for debugging.
- ``GET /msg-client/send`` (what the hub's connection test calls, never a POST) → 405 with no
  content, or 401 first when basic auth is configured and missing or wrong: a Spring connector
  checks authentication before the method.
- Delivery reports: ``dlr_delay`` seconds after a send the fake POSTs a Twilio-style form
  (``application/x-www-form-urlencoded``) to ``hub_urls["expertflow"]["dlr"]``; ``undelivered``
  for a number ending in 0000, else ``delivered``. Nothing is sent when no ``dlr`` URL is
  configured. By default, as Twilio's status callbacks:
  ``MessageSid=SM<32 hex>&To=<the number as sent>&SmsStatus=delivered&MessageStatus=delivered``.
- Replies: POSTed as a Twilio-style form to ``hub_urls["expertflow"]["inbound"]``:
  ``Body``, ``From`` (the replying number), ``To`` (the reply's ``to``, else the ``From`` of the
  message it answers, else ``12345``) and ``SmsSid=SM<32 hex>``.

The report form is where the doc is silent or contradicts itself, so each reading it allows is a
setting, per run (``POST /_simulator/config`` ``{"credentials": {"expertflow": {...}}}``, ``null``
back to the default), and the hub is tested against every one:

- ``report_sid``: ``yes`` (default) sends ``MessageSid`` (the endpoint's parameter table: the id
  the downstream gateway gave the message, never returned at send time); ``no`` leaves it out.
- ``report_to``: the number the message went to, which the doc's delivery-notification does not
  list but Twilio's callbacks carry: ``as_sent`` (default: as the hub sent it, ``+9230…``),
  ``digits`` (without ``+``, an MSISDN), or ``none`` (the doc's table alone: no number).
- ``report_status``: ``both`` (default: ``SmsStatus`` and ``MessageStatus``, equal, as Twilio
  sends them), ``SmsStatus`` (the endpoint's parameter table) or ``MessageStatus`` (the doc's
  ``delivery-status`` definition).

Other choices where the doc is silent: the status words of reports are the doc's enum
(delivered, undelivered, failed, queued, sent); the fake sends only the final one,
``undelivered`` (not ``failed``) for the unreachable number, as Twilio does when the carrier
cannot deliver. The ActiveMQ ``delivery-report`` queue is not simulated. Faults answer with no
content too, at any ``error_status`` (401: refused credentials; the doc's 404 "wrong API url" and
500 "Internal server error"); setting ``username``/``password`` at run time makes the connector
refuse a hub that sends other credentials, or none.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid
from typing import Any

from ..server import UNREACHABLE_SUFFIX, Fake, Reply, SentMessage, SimRequest, SimResponse

PHONE_RE = re.compile(r"\+?\d{3,15}", re.ASCII)
DEFAULT_SHORT_CODE = "12345"
# The readings of the delivery-report form (see the module docstring): setting → its values.
READINGS = {
    "report_sid": ("yes", "no"),
    "report_to": ("as_sent", "digits", "none"),
    "report_status": ("both", "SmsStatus", "MessageStatus"),
}


def _no_content(status: int, reason: str = "") -> SimResponse:
    headers = {"X-Simulator-Reason": reason} if reason else {}
    return SimResponse(status, None, content_type=None, headers=headers)


def twilio_sid() -> str:
    return f"SM{uuid.uuid4().hex}"


class ExpertflowFake(Fake):
    slug = "expertflow"
    default_credentials = {
        "channel": "sms",
        "username": "",
        "password": "",
        **{key: values[0] for key, values in READINGS.items()},
    }
    secret_credentials = frozenset({"password"})
    hub_url_kinds = ("dlr", "inbound")

    def register(self) -> None:
        self.route("POST", "/msg-client/send", self._send)
        self.route("GET", "/msg-client/send", self._wrong_method)

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        return _no_content(status, message)

    def check_credential(self, key: str, value: str) -> str:
        if key in READINGS and value not in READINGS[key]:
            raise ValueError(
                f"credentials: expertflow {key} must be one of {', '.join(READINGS[key])}"
            )
        return value

    def report_form(self, sid: str, to: str, status: str) -> dict[str, str]:
        """A delivery report as the configured reading has it."""
        settings = self.credentials
        form: dict[str, str] = {}
        if settings["report_sid"] == "yes":
            form["MessageSid"] = sid
        if settings["report_to"] == "as_sent":
            form["To"] = to
        elif settings["report_to"] == "digits":
            form["To"] = to.lstrip("+")
        fields = settings["report_status"]
        for name in ("SmsStatus", "MessageStatus"):
            if fields in ("both", name):
                form[name] = status
        return form

    def _auth_ok(self, request: SimRequest) -> bool:
        expected = self.credentials
        if not expected["username"]:
            return True
        scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        return (
            scheme.lower() == "basic"
            and bool(sep)
            and hmac.compare_digest(username.encode(), expected["username"].encode())
            and hmac.compare_digest(password.encode(), expected["password"].encode())
        )

    def _wrong_method(self, request: SimRequest) -> SimResponse:
        if not self._auth_ok(request):
            return _no_content(401, "basic auth missing or wrong")
        return _no_content(405, "the send path takes POST")

    def _send(self, request: SimRequest) -> SimResponse:
        if not self._auth_ok(request):
            return _no_content(401, "basic auth missing or wrong")
        try:
            data = request.json()
        except ValueError:
            return _no_content(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return _no_content(400, "the body must be a JSON object")
        to = data.get("To")
        if not isinstance(to, str) or not PHONE_RE.fullmatch(to):
            return _no_content(400, "'To' must be a phone number")
        body = data.get("Body")
        if not isinstance(body, str) or not body:
            return _no_content(400, "'Body' is required")
        sender = data.get("From")
        if sender is not None and not isinstance(sender, str):
            return _no_content(400, "'From' must be a string")
        channel = data.get("channel")
        if channel != self.credentials["channel"]:
            return _no_content(400, f"unknown 'channel' {channel!r}")

        sid = twilio_sid()
        self.accepted(SentMessage(sid, to, sender or None))
        url = self.hub_url("dlr")
        if url is not None:
            status = "undelivered" if to.endswith(UNREACHABLE_SUFFIX) else "delivered"
            self.server.schedule_callback(
                url,
                self.report_form(sid, to, status),
                provider=self.slug,
                label=f"{sid} {status}",
                form=True,
            )
        return _no_content(200)

    def deliver_reply(self, reply: Reply, delay: float) -> dict[str, Any]:
        url = self.push_url("inbound")
        original = self.original(reply)
        to = reply.to or (original.sender if original else None) or DEFAULT_SHORT_CODE
        sid = twilio_sid()
        form = {"Body": reply.text, "From": reply.from_number, "To": to, "SmsSid": sid}
        self.server.schedule_callback(
            url, form, provider=self.slug, label=sid, form=True, delay=delay
        )
        return {"delivery": "push", "url": url}
