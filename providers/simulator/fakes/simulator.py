"""The hub's own "simulator" protocol (what `providers.simulator.adapter` speaks).

- ``POST /simulator/messages`` with ``Authorization: Bearer <api_key>`` and JSON
  ``{"to", "text", "from"?, "reference"?, "callback_url"?}`` → 201 ``{"id": "sim-<hex>",
  "status": "accepted"}``; 401 ``{"error": "invalid api key"}``; 400 ``{"error": "..."}`` naming
  the field. ``dlr_delay`` seconds later, when ``callback_url`` is given, the simulator POSTs
  ``{"id", "status", "timestamp", "reference", "error_code"}`` to it (retried on failure).
- Magic number: a recipient ending in ``0000`` is reported ``undelivered`` with error code
  ``UNREACHABLE``; every other number is ``delivered``.
- ``GET /simulator/health`` (same auth) → 200 ``{"status": "ok"}``.
- ``GET /simulator/log`` (no auth, dev tool) → the last requests and callbacks, newest last,
  with secrets masked.
- Replies (injected, or automatic for numbers ending in 9999) are POSTed as JSON to the hub URL
  ``hub_urls["simulator"]["inbound"]``: ``{"id": "sim-mo-<hex>", "from", "to", "text",
  "in_reply_to", "timestamp"}`` (``to``: the reply's ``to``, else the sender of the message it
  answers, else null; ``in_reply_to``: the ``id`` of the message it answers, or null).
"""

from __future__ import annotations

import functools
import hmac
import uuid
from urllib.parse import urlsplit

from ..server import (
    E164_RE,
    UNREACHABLE_ERROR_CODE,
    UNREACHABLE_SUFFIX,
    Fake,
    Reply,
    SentMessage,
    SimRequest,
    SimResponse,
    error,
    now_iso,
)


class SimulatorFake(Fake):
    slug = "simulator"
    default_credentials = {"api_key": "simulator-key"}
    secret_credentials = frozenset({"api_key"})
    hub_url_kinds = ("inbound",)

    def register(self) -> None:
        self.route("POST", "/simulator/messages", self._send_message)
        self.route("GET", "/simulator/health", self._health)
        self.server.add_route("GET", "/simulator/log", self._show_log, record=False)

    def _authorized(self, request: SimRequest) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.credentials["api_key"].encode())

    def _health(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return error(401, "invalid api key")
        return SimResponse(200, {"status": "ok"})

    def _show_log(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, self.server.requests_log)

    def _send_message(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return error(401, "invalid api key")
        try:
            data = request.json()
        except ValueError:
            return error(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return error(400, "the body must be a JSON object")
        to = data.get("to")
        if not isinstance(to, str) or not E164_RE.fullmatch(to):
            return error(400, "field 'to' must be an E.164 phone number such as +33612345678")
        text = data.get("text")
        if not isinstance(text, str) or not text:
            return error(400, "field 'text' is required and must be a non-empty string")
        for name in ("from", "reference"):
            if data.get(name) is not None and not isinstance(data[name], str):
                return error(400, f"field '{name}' must be a string")
        callback_url = data.get("callback_url") or None
        if callback_url is not None:
            parts = urlsplit(callback_url) if isinstance(callback_url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                return error(400, "field 'callback_url' must be an absolute http(s) URL")

        message_id = f"sim-{uuid.uuid4().hex}"
        self.accepted(SentMessage(message_id, to, data.get("from") or None))
        response = SimResponse(201, {"id": message_id, "status": "accepted"})
        if callback_url is not None:
            response.after = functools.partial(
                self.server.schedule_callback,
                callback_url,
                functools.partial(self._report, message_id, to, data.get("reference")),
                provider=self.slug,
                label=message_id,
            )
        return response

    @staticmethod
    def _report(message_id: str, to: str, reference: str | None) -> dict[str, str | None]:
        unreachable = to.endswith(UNREACHABLE_SUFFIX)
        return {
            "id": message_id,
            "status": "undelivered" if unreachable else "delivered",
            "timestamp": now_iso(),
            "reference": reference,
            "error_code": UNREACHABLE_ERROR_CODE if unreachable else "",
        }

    def deliver_reply(self, reply: Reply, delay: float) -> dict[str, str]:
        url = self.push_url("inbound")
        original = self.original(reply)
        reply_id = f"sim-mo-{reply.id}"
        payload = {
            "id": reply_id,
            "from": reply.from_number,
            "to": reply.to or (original.sender if original else None),
            "text": reply.text,
            "in_reply_to": reply.in_reply_to or (original.id if original else None),
        }
        self.server.schedule_callback(  # the timestamp is the time of the push
            url,
            lambda: {**payload, "timestamp": now_iso()},
            provider=self.slug,
            label=reply_id,
            delay=delay,
        )
        return {"delivery": "push", "url": url}
