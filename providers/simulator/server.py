"""The provider simulator: one small HTTP server that fakes all the hub's SMS providers.

Used by local development (`manage.py runsimulator`), the end-to-end tests, benchmarks and fault
tests. It needs only the standard library and `requests` (no Django), so it can run standalone
and be imported in tests without settings.

Structure
---------
This module is the core: HTTP, the route table, the request log, callbacks (timers with
retries), faults, configuration and the control endpoints. Each provider's wire protocol is a
`Fake` in ``providers/simulator/fakes/<slug>.py`` (registered in ``fakes/__init__.py``) that adds
its routes at the documented paths, so **one simulator URL is the base URL of every provider**:

=============  ===========================================================================
``simulator``  ``POST /simulator/messages``, ``GET /simulator/health``, ``GET /simulator/log``
``vortext``    ``POST /sms``, ``GET /status``
``primotexto`` ``POST|GET /v2/notification/messages/send``, ``GET /v2/account/stats``
``smsadvert``  ``POST /api/sms/``
``expertflow`` ``POST|GET /msg-client/send`` (GET: 405, or 401 without the credentials)
``ogangi``     ``GET|POST /rest/api/tools/sendSMS/...``, ``/rest/api/sendMT/...``,
               ``/rest/api/tools/sendSMSPinMobileNumberConfirm/...``,
               ``/rest/api/tools/getMOMessages/...``
=============  ===========================================================================

Each fake's module docstring says exactly what it accepts and answers, and every choice made
where the provider's doc is silent (the same choices as ``../shared/provider-docs/NOTES.md``).
Routes are ``(method, path) -> handler``; a path may hold ``{name}`` segments (matched on the raw,
still percent-encoded path) whose values land in ``SimRequest.params``.

Configuration (constructor keywords, or ``POST /_simulator/config`` at runtime)
-------------------------------------------------------------------------------
``SimulatorServer(host="127.0.0.1", port=0, api_key="simulator-key", dlr_delay=1.0, *,
credentials=None, hub_urls=None, faults=None, seed=None, auto_reply_suffix="9999",
auto_reply_text=AUTO_REPLY_TEXT)``

- ``credentials``: ``{slug: {key: value}}`` merged over each fake's defaults: simulator
  ``api_key`` (the ``api_key`` argument); vortext ``username="vortext"``,
  ``password="vortext-secret"`` and its reading ``reply_message="send_answer"``; primotexto
  ``api_key="primotexto-key"`` and its reading ``past_date="refuse"``; smsadvert
  ``token="smsadvert-token"`` and its reading ``multi_recipient_reports="none"`` (each reading:
  see its fake's module); expertflow ``channel="sms"``, ``username``/``password`` empty (no
  basic auth asked; set both to require it) and its readings ``report_sid="yes"``,
  ``report_to="as_sent"``, ``report_status="both"``; ogangi ``instance_id="1001"``,
  ``public_key="ogangi-public"``, ``private_key="ogangi-private"`` and its readings
  ``signature_segments="encoded"``, ``signature_encoding="hex"``, ``mo_order="search"`` (see
  ``fakes/ogangi.py``). Wrong credentials get that provider's own refusal.
- ``hub_urls``: ``{slug: {"dlr": URL, "inbound": URL}}``, where to push delivery reports and
  replies for providers that have no per-message callback URL: vortext (``inbound``), expertflow
  (``dlr``, ``inbound``), simulator (``inbound``). SMSAdvert and the simulator protocol call back
  the URL given with each message; Primotexto documents no callbacks; Ogangi is polled.
- ``dlr_delay``: seconds between an accepted send and its delivery report. A reply (automatic,
  see below) comes ``2 * dlr_delay`` after the send, so after its delivery report.
- ``faults``: ``{slug: {key: value}}`` with keys ``error_rate`` (0 to 1: answer
  ``error_status``),
  ``throttle_rate`` (0 to 1: answer 429 with ``Retry-After``), ``timeout_rate`` (0 to 1: hang
  ``hang_seconds``, then answer normally, the message accepted: longer than a client timeout),
  ``latency_ms`` (added to every answer), ``retry_after`` (seconds, default 1),
  ``hang_seconds`` (default 30, at most 60) and ``error_status`` (400 to 599 but 429, default
  500: 401 and 403 answer as refused credentials, other 4xx as a refusal of the message). Faults
  apply to that provider's routes only (never to the ``/_simulator`` control routes), in this
  order: latency, then at most one of throttle, error, timeout. Rates are drawn from one
  ``random.Random(seed)``: 0 never and 1 always happen without a draw, so they are
  deterministic; with a ``seed`` a sequential client sees the same faults on every run.
  Fault answers take the provider's own error shape.
- Magic numbers: a recipient ending in ``0000`` is reported undelivered in that provider's own
  words (simulator ``undelivered``/``UNREACHABLE``, smsadvert ``failed``, expertflow
  ``undelivered``); providers without delivery reports (vortext, primotexto, ogangi) accept it
  like any number. A recipient ending in ``auto_reply_suffix`` (``"9999"``; empty disables)
  answers with ``auto_reply_text`` ``2 * dlr_delay`` after the send, delivered like an injected
  reply (below) with ``in_reply_to`` set to the message's id; providers without a reply
  channel (primotexto, smsadvert), or without a configured inbound URL, skip it (logged).

Control endpoints (no authentication: a development tool, like ``/simulator/log``)
---------------------------------------------------------------------------------------
- ``GET /_simulator/config`` → 200 ``{"dlr_delay", "seed", "auto_reply": {"suffix", "text"},
  "credentials", "hub_urls", "faults", "routes"}`` with every provider's effective settings;
  secrets are masked (``****`` plus the last 4 characters of long ones) and so are long path
  segments of hub URLs (the hub's webhook tokens).
- ``POST /_simulator/config`` with a JSON object holding any of ``dlr_delay``,
  ``auto_reply`` (``{"suffix", "text"}``), ``credentials``, ``hub_urls``, ``faults`` (shaped as
  the constructor keywords) → 200 and the new settings as ``GET`` shows them; 400
  ``{"error"}`` and nothing changed when anything is invalid. Per provider, the keys given
  replace those keys; ``null`` as a key's value (or as a whole provider's value) goes back to
  the default. A masked value sent back unchanged keeps the stored secret.
- ``POST /_simulator/replies`` with ``{"provider": slug, "from": number, "text": ...,
  "to"?: number or sender, "in_reply_to"?: provider message id}`` → 202 ``{"id", "provider",
  "delivery": "push"|"stored", "url"?}``: the reply is pushed to the hub at once in that
  provider's own format (vortext, expertflow, simulator) or stored for polling (ogangi); 400
  for a provider with no reply channel or an invalid body, 409 when the push URL is not set.
- ``GET /_simulator/log`` (also ``GET /simulator/log``) → the request log.

The request log
---------------
The last 1000 requests and callbacks, oldest first, each with the ``provider`` slug (``null``
for control routes and unknown paths) and, for requests, the ``fault`` applied (or ``null``).
Secret headers (``Authorization``, ``X-Primotexto-ApiKey``...) and secret query parameters are
masked; the Ogangi private key never travels.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import socketserver
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

logger = logging.getLogger("providers.simulator")

E164_RE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)  # used with fullmatch()
UNREACHABLE_SUFFIX = "0000"  # magic: numbers ending so are reported undelivered
UNREACHABLE_ERROR_CODE = "UNREACHABLE"
AUTO_REPLY_SUFFIX = "9999"  # magic: numbers ending so answer with AUTO_REPLY_TEXT
AUTO_REPLY_TEXT = "Thanks, received (automatic reply from the SMS Hub simulator)"
MAX_LOG_ENTRIES = 1000
MAX_BODY_BYTES = 1024 * 1024
MAX_LOGGED_BODY_BYTES = 64 * 1024
MAX_HANG_SECONDS = 60.0
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-primotexto-apikey"}
)
SENSITIVE_QUERY_PARAMETERS = frozenset({"apikey", "api_key", "token", "password", "key"})
HUB_URL_KINDS = ("dlr", "inbound")
USER_AGENT = "SMSHub-Simulator/0.2"
DEFAULT_FAULTS: dict[str, float | int] = {
    "error_rate": 0.0,
    "throttle_rate": 0.0,
    "timeout_rate": 0.0,
    "latency_ms": 0,
    "retry_after": 1,
    "hang_seconds": 30.0,
    "error_status": 500,
}


def now_iso() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def mask_secret(value: str) -> str:
    """``"Bearer abcdefgh1234"`` → ``"Bearer ****1234"``; short secrets are hidden entirely.

    Basic credentials are hidden entirely too: the end of ``base64(user:password)`` is the end
    of the password.
    """
    scheme, sep, secret = value.strip().partition(" ")
    if not sep:
        scheme, secret = "", scheme
    secret = secret.strip()
    if scheme.lower() == "basic":
        return f"{scheme} ****"
    masked = "****" + (secret[-4:] if len(secret) > 8 else "")
    return f"{scheme} {masked}" if scheme else masked


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: mask_secret(value) if name.lower() in SENSITIVE_HEADERS else value
        for name, value in headers.items()
    }


def mask_target(target: str) -> str:
    """A request target with secret query parameters (``apiKey=...``) masked."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SENSITIVE_QUERY_PARAMETERS for name, _ in pairs):
        return target
    masked = [
        (name, mask_secret(value) if name.lower() in SENSITIVE_QUERY_PARAMETERS else value)
        for name, value in pairs
    ]
    return f"{path}?{urlencode(masked, safe='*')}"


# A hub webhook path (`/hooks/<slug>/<token>/<kind>/`), percent-encoded or not: its token.
HOOK_TOKEN_RE = re.compile(
    r"((?:/|%2F)hooks(?:/|%2F)[\w-]+(?:/|%2F))(?!\*{4})((?:(?!%2F)[^/\s?#\"'&])+)", re.IGNORECASE
)
# `scheme://user:password@` or `scheme://token@` in a URL.
USERINFO_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/\s@]+)@", re.IGNORECASE)


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _password = userinfo.partition(":")
    return f"{user}:****" if sep else "****"


def mask_text(text: str) -> str:
    """Text with webhook tokens and URL credentials masked; the rest (slug, kind) kept."""
    text = USERINFO_RE.sub(lambda m: f"{m.group(1)}{_mask_userinfo(m.group(2))}@", text)
    return HOOK_TOKEN_RE.sub(lambda m: m.group(1) + mask_secret(m.group(2)), text)


def mask_url(url: str) -> str:
    """A hub URL with its secrets masked: credentials, secret query parameters, the webhook
    token and any other long path segment (a token in a URL of another shape)."""
    parts = urlsplit(mask_text(url))
    path = "/".join(
        mask_secret(segment) if len(segment) >= 16 else segment for segment in parts.path.split("/")
    )
    query = mask_target(f"?{parts.query}")[1:] if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


# Keys of a logged body whose values are secrets (`POST /_simulator/config` credentials...).
SECRET_KEY_RE = re.compile(r"pass|secret|token|key|signature", re.IGNORECASE)


def mask_values(value: Any) -> Any:
    """A logged body or entry with its secrets masked: values of secret-named keys, whole URLs
    (`mask_url`) and tokens or credentials inside other strings (`mask_text`)."""
    if isinstance(value, dict):
        return {
            key: "****" + (item[-4:] if len(item) > 8 else "")
            if isinstance(item, str) and item and SECRET_KEY_RE.search(str(key))
            else mask_values(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_values(item) for item in value]
    if isinstance(value, str):
        return mask_url(value) if is_http_url(value) else mask_text(value)
    return value


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass
class SimRequest:
    method: str
    path: str  # without the query string, still percent-encoded
    query: str
    headers: Mapping[str, str]  # case-insensitive (an http.client.HTTPMessage)
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from {name} segments of the route
    provider: str | None = None  # the slug of the route that matched
    fault: str | None = None  # the fault applied: "throttle", "error", "timeout" or None

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()


@dataclass
class SimResponse:
    status: int
    body: Any = None  # JSON-serialisable, or str/bytes sent as they are; None with no content type
    content_type: str | None = "application/json"  # None: no Content-Type header, empty body
    headers: dict[str, str] = field(default_factory=dict)
    after: Callable[[], None] | None = None  # run once the response has been sent

    def encode(self) -> bytes:
        if self.content_type is None and self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def error(status: int, message: str) -> SimResponse:
    return SimResponse(status, {"error": message})


Handler = Callable[[SimRequest], SimResponse]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    pattern: re.Pattern[str]
    record: bool = True  # whether requests on this route go to the request log
    provider: str | None = None  # the provider it belongs to: its faults apply, the log names it


def _compile_path(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", path)  # even indexes: literal text, odd: parameter names
    return re.compile(
        "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
        )
    )


def _describe_body(body: bytes) -> Any:
    """What the request log keeps of a body: parsed JSON, else text, else None when empty."""
    if not body:
        return None
    if len(body) > MAX_LOGGED_BODY_BYTES:
        return f"<{len(body)} bytes, not recorded>"
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReplyRefused(Exception):
    """A reply a fake cannot deliver: the HTTP status and text the control endpoint answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Reply:
    """A reply (MO) from a phone, injected or automatic, before it takes a provider's format."""

    provider: str
    from_number: str  # the phone that answers
    text: str
    to: str | None = None  # the number or sender name it answers to
    in_reply_to: str | None = None  # the provider's id of the message it answers
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class SentMessage:
    """What a fake remembers of an accepted message, to answer replies about it."""

    id: str
    to: str
    sender: str | None
    record: dict[str, Any] = field(default_factory=dict)  # provider-specific (e.g. the answer)


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number or "")


class Fake:
    """One provider's wire protocol, served by a `SimulatorServer` (see ``fakes/``)."""

    slug: ClassVar[str]
    default_credentials: ClassVar[dict[str, str]] = {}
    secret_credentials: ClassVar[frozenset[str]] = frozenset()
    # Other names the hub's provider accounts may use for a credential: {alias: key}.
    credential_aliases: ClassVar[dict[str, str]] = {}
    # Which hub URLs the fake pushes to ("dlr", "inbound"), for documentation and the config.
    hub_url_kinds: ClassVar[tuple[str, ...]] = ()
    max_remembered = 10_000

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self._sent: OrderedDict[str, SentMessage] = OrderedDict()
        self._sent_lock = threading.Lock()

    # --- for subclasses ------------------------------------------------------------------
    def register(self) -> None:
        """Add the provider's routes with `route`."""
        raise NotImplementedError

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        """A simulated 5xx/429 in the provider's own error shape."""
        return error(status, message)

    def deliver_reply(self, reply: Reply, delay: float) -> dict[str, Any]:
        """Push `reply` to the hub (or store it for polling) ``delay`` seconds from now.

        Returns what the control endpoint reports (``{"delivery": "push", "url": ...}``);
        raises `ReplyRefused` when the provider has no way to deliver it.
        """
        raise ReplyRefused(400, f"{self.slug} has no documented way to deliver replies")

    # --- helpers ---------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler, *, record: bool = True) -> None:
        self.server.add_route(method, path, handler, record=record, provider=self.slug)

    @property
    def credentials(self) -> dict[str, str]:
        return self.server.credentials_for(self.slug)

    def hub_url(self, kind: str) -> str | None:
        return self.server.hub_url(self.slug, kind)

    def push_url(self, kind: str) -> str:
        """The hub URL a push needs, or `ReplyRefused` (409) when it is not configured."""
        url = self.hub_url(kind)
        if url is None:
            raise ReplyRefused(
                409,
                f"no hub URL for {self.slug} {kind}: set hub_urls "
                f'{{"{self.slug}": {{"{kind}": URL}}}} with POST /_simulator/config',
            )
        return url

    def accepted(self, message: SentMessage) -> None:
        """Remember an accepted message and, for an auto-reply number, schedule its reply."""
        with self._sent_lock:
            self._sent[message.id] = message
            self._sent.move_to_end(message.id)
            while len(self._sent) > self.max_remembered:
                self._sent.popitem(last=False)
        suffix, text = self.server.auto_reply_suffix, self.server.auto_reply_text
        if not suffix or not message.to.endswith(suffix):
            return
        reply = Reply(
            self.slug, message.to, text, to=message.sender or None, in_reply_to=message.id
        )
        try:
            self.deliver_reply(reply, delay=2 * self.server.dlr_delay)
        except ReplyRefused as exc:
            logger.info("no automatic reply to %s %s: %s", self.slug, message.id, exc.message)

    def original(self, reply: Reply) -> SentMessage | None:
        """The message a reply answers: by ``in_reply_to``, else the latest one to its sender."""
        with self._sent_lock:
            if reply.in_reply_to and reply.in_reply_to in self._sent:
                return self._sent[reply.in_reply_to]
            wanted = _digits(reply.from_number)
            for message in reversed(self._sent.values()):
                if wanted and _digits(message.to) == wanted:
                    return message
        return None

    @classmethod
    def normalize_credentials(cls, raw: Mapping[str, Any]) -> dict[str, str]:
        """The credentials of a hub provider account, as this fake's keys (unknown keys dropped)."""
        result: dict[str, str] = {}
        for name, value in raw.items():
            key = cls.credential_aliases.get(name, name)
            if key in cls.default_credentials and value not in (None, ""):
                result[key] = str(value)
        return result

    def check_credential(self, key: str, value: str) -> str:
        """Validate one credential; raise ValueError when it is not acceptable."""
        return value


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Clients open hundreds of connections at once (the hub keeps its calls in flight): the
    # default backlog of 5 would drop their connection attempts.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], simulator: SimulatorServer) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()  # open (keep-alive) client connections
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        with self._connections_lock:
            self._connections.add(conn)
        return conn, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so a stopped simulator answers nobody."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() does a reverse DNS lookup (getfqdn) that can be slow; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _SharedPortHTTPServer(_HTTPServer):
    allow_reuse_port = True  # SO_REUSEPORT


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, for benchmarks; every answer has Content-Length
    server_version = USER_AGENT
    sys_version = ""
    timeout = 30  # seconds a client may idle on a connection
    disable_nagle_algorithm = True  # headers and body go in separate writes: avoid 40 ms stalls

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        arrived = now_iso()  # what a provider's rate limit counts: when the request came in
        simulator = self.server.simulator
        split = urlsplit(self.path)
        request = SimRequest(self.command, split.path, split.query, self.headers, b"")
        try:
            request.body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            route, response = None, error(exc.status, exc.message)
        else:
            route, response = simulator.dispatch(request)
        if route is None or route.record:
            simulator.record_request(
                self.command,
                self.path,
                self.headers,
                request.body,
                response.status,
                provider=request.provider,
                fault=request.fault,
                at=arrived,
            )
        self._send(response)
        if response.after is not None:
            try:
                response.after()
            except Exception:
                logger.exception("follow-up of %s %s failed", self.command, mask_text(self.path))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _BodyError(411, "chunked bodies are not supported; send Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BodyError(400, "invalid Content-Length header") from None
        if length < 0:
            raise _BodyError(400, "invalid Content-Length header")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"body too large (more than {MAX_BODY_BYTES} bytes)")
        return self.rfile.read(length)

    def _send(self, response: SimResponse) -> None:
        payload = response.encode()
        try:
            self.send_response(response.status)
            if response.content_type is not None:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError as exc:  # the client went away
            self.close_connection = True
            logger.debug("could not answer %s %s: %s", self.command, self.path, exc)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised by http.server itself (malformed request, unknown method): JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        payload = json.dumps({"error": message or phrase}).encode()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            with_body = code >= 200 and code not in (204, 304) and self.command != "HEAD"
            self.send_header("Content-Length", str(len(payload) if with_body else 0))
            self.end_headers()
            if with_body:
                self.wfile.write(payload)
        except OSError:
            pass
        logger.info("%s -> %d %s", mask_text(self.requestline or "-"), code, message or phrase)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


def _check_fault(key: str, value: Any) -> float | int:
    if key not in DEFAULT_FAULTS:
        raise ValueError(f"unknown fault {key!r} (known: {', '.join(DEFAULT_FAULTS)})")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {key!r} must be a number")
    if key.endswith("_rate"):
        if not 0 <= value <= 1:
            raise ValueError(f"fault {key!r} must be between 0 and 1")
        return float(value)
    if key == "hang_seconds":
        if not 0 <= value <= MAX_HANG_SECONDS:
            raise ValueError(f"fault 'hang_seconds' must be between 0 and {MAX_HANG_SECONDS:g}")
        return float(value)
    if key == "error_status":
        if value != int(value) or not 400 <= value <= 599 or value == 429:
            raise ValueError(
                "fault 'error_status' must be an HTTP status from 400 to 599 (429: throttle_rate)"
            )
        return int(value)
    if value < 0:  # latency_ms, retry_after
        raise ValueError(f"fault {key!r} must be zero or more")
    return int(value) if key == "retry_after" else float(value)


def _check_dlr_delay(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("dlr_delay must be zero or more seconds")
    return float(value)


class SimulatorServer:
    """The fake providers on a real socket (bound at construction; ``port=0`` picks a free one)."""

    callback_timeout = 10.0  # seconds per callback attempt
    callback_retries = 3  # extra attempts after a failed callback
    callback_retry_pause = 0.5  # seconds between attempts

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "simulator-key",
        dlr_delay: float = 1.0,
        *,
        credentials: Mapping[str, Mapping[str, Any]] | None = None,
        hub_urls: Mapping[str, Mapping[str, str]] | None = None,
        faults: Mapping[str, Mapping[str, Any]] | None = None,
        seed: int | None = None,
        auto_reply_suffix: str = AUTO_REPLY_SUFFIX,
        auto_reply_text: str = AUTO_REPLY_TEXT,
        reuse_port: bool = False,
    ) -> None:
        """`reuse_port`: several simulator processes may listen on the same port, the kernel
        sharing the connections among them (benchmarks, where one process would be the limit)."""
        from .fakes import FAKES  # the fakes import this module's building blocks

        if not api_key:
            raise ValueError("the simulator needs a non-empty api_key")
        self.host = host
        self.seed = seed
        self.dlr_delay = _check_dlr_delay(dlr_delay)
        self.auto_reply_suffix = ""
        self.auto_reply_text = AUTO_REPLY_TEXT
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._config_lock = threading.RLock()
        self._credentials: dict[str, dict[str, str]] = {}  # overrides of the fakes' defaults
        self._hub_urls: dict[str, dict[str, str]] = {}
        self._faults: dict[str, dict[str, float | int]] = {}
        self._routes: list[Route] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG_ENTRIES)
        self._recorded = 0
        self._log_lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._state_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.fakes: dict[str, Fake] = {slug: cls(self) for slug, cls in FAKES.items()}
        self.configure(
            credentials={"simulator": {"api_key": api_key}, **(credentials or {})},
            hub_urls=hub_urls,
            faults=faults,
            auto_reply={"suffix": auto_reply_suffix, "text": auto_reply_text},
        )
        for fake in self.fakes.values():
            fake.register()
        self._register_control_routes()
        self._httpd = (_SharedPortHTTPServer if reuse_port else _HTTPServer)((host, port), self)

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The bearer token of the "simulator" protocol."""
        return self.credentials_for("simulator")["api_key"]

    def start(self) -> None:
        """Serve in a daemon thread and return at once."""
        self._mark_started()
        self._thread = threading.Thread(
            target=self._serve, name=f"simulator-{self.port}", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` (from another thread) or an exception."""
        self._mark_started()
        self._serve()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cancel pending callbacks and close the socket. Safe to call twice."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        with self._timers_lock:
            self._stopping.set()  # from now on no callback gets scheduled or retried; hangs end
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        if started:
            self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        deadline = time.monotonic() + timeout
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for timer in timers:  # cancelled ones end at once; one mid-callback ends after its attempt
            timer.join(max(0.0, deadline - time.monotonic()))
        logger.info("simulator stopped (%s)", self.url)

    def _mark_started(self) -> None:
        with self._state_lock:
            if self._closed:
                raise RuntimeError("this simulator has been stopped")
            if self._started:
                raise RuntimeError("this simulator is already serving")
            self._started = True

    def _serve(self) -> None:
        logger.info("simulator listening on %s", self.url)
        self._httpd.serve_forever(poll_interval=0.05)

    # --- configuration -----------------------------------------------------------------------
    def credentials_for(self, slug: str) -> dict[str, str]:
        """The credentials the fake of ``slug`` accepts: its defaults, then the overrides."""
        with self._config_lock:
            return {**self.fakes[slug].default_credentials, **self._credentials.get(slug, {})}

    def hub_url(self, slug: str, kind: str) -> str | None:
        with self._config_lock:
            return self._hub_urls.get(slug, {}).get(kind)

    def faults_for(self, slug: str) -> dict[str, float | int]:
        with self._config_lock:
            return {**DEFAULT_FAULTS, **self._faults.get(slug, {})}

    def configure(
        self,
        *,
        credentials: Mapping[str, Any] | None = None,
        hub_urls: Mapping[str, Any] | None = None,
        faults: Mapping[str, Any] | None = None,
        dlr_delay: Any = None,
        auto_reply: Mapping[str, Any] | None = None,
    ) -> None:
        """Change settings (what ``POST /_simulator/config`` does); all or nothing.

        Per provider, the keys given replace those keys and ``None`` goes back to the default;
        ``None`` for a whole provider resets all its keys. Raises ValueError when anything is
        invalid, having changed nothing.
        """
        with self._config_lock:
            new_credentials = self._merged(
                "credentials", self._credentials, credentials, self._check_credential
            )
            new_hub_urls = self._merged("hub_urls", self._hub_urls, hub_urls, self._check_hub_url)
            new_faults = self._merged(
                "faults", self._faults, faults, lambda slug, key, value: _check_fault(key, value)
            )
            new_delay = self.dlr_delay if dlr_delay is None else _check_dlr_delay(dlr_delay)
            suffix, text = self.auto_reply_suffix, self.auto_reply_text
            if auto_reply is not None:
                if not isinstance(auto_reply, Mapping):
                    raise ValueError("auto_reply must be an object {suffix, text}")
                unknown = set(auto_reply) - {"suffix", "text"}
                if unknown:
                    raise ValueError(f"unknown auto_reply keys: {', '.join(sorted(unknown))}")
                suffix = auto_reply.get("suffix", suffix)
                text = auto_reply.get("text", text)
                if suffix is None:
                    suffix = ""
                if not isinstance(suffix, str) or not re.fullmatch(r"\d*", suffix):
                    raise ValueError("auto_reply suffix must be digits (empty: no automatic reply)")
                if not isinstance(text, str) or not text:
                    raise ValueError("auto_reply text must be a non-empty string")
            self._credentials, self._hub_urls, self._faults = (
                new_credentials,
                new_hub_urls,
                new_faults,
            )
            self.dlr_delay, self.auto_reply_suffix, self.auto_reply_text = new_delay, suffix, text

    def _merged(
        self,
        name: str,
        current: dict[str, dict[str, Any]],
        update: Mapping[str, Any] | None,
        check: Callable[[str, str, Any], Any],
    ) -> dict[str, dict[str, Any]]:
        merged = {slug: dict(values) for slug, values in current.items()}
        if update is None:
            return merged
        if not isinstance(update, Mapping):
            raise ValueError(f"{name} must be an object {{provider: {{key: value}}}}")
        for slug, values in update.items():
            if slug not in self.fakes:
                raise ValueError(
                    f"{name}: unknown provider {slug!r} (known: {', '.join(self.fakes)})"
                )
            if values is None:
                merged.pop(slug, None)
                continue
            if not isinstance(values, Mapping):
                raise ValueError(f"{name}[{slug!r}] must be an object {{key: value}}")
            entry = merged.setdefault(slug, {})
            for key, value in values.items():
                if value is None:
                    entry.pop(key, None)
                else:
                    entry[key] = check(slug, key, value)
        return merged

    def _check_credential(self, slug: str, key: str, value: Any) -> str:
        fake = self.fakes[slug]
        if key not in fake.default_credentials:
            known = ", ".join(fake.default_credentials)
            raise ValueError(f"credentials: {slug} has no {key!r} (known: {known})")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError(f"credentials: {slug} {key} must be a string")
        current = self.credentials_for(slug).get(key, "")
        if key in fake.secret_credentials and current and str(value) == mask_secret(current):
            return current  # the masked value shown by GET, sent back unchanged
        return fake.check_credential(key, str(value))

    def _check_hub_url(self, slug: str, kind: str, url: Any) -> str:
        if kind not in HUB_URL_KINDS:
            raise ValueError(f"hub_urls: unknown kind {kind!r} (known: {', '.join(HUB_URL_KINDS)})")
        current = self.hub_url(slug, kind)
        if current and url == mask_url(current):
            return current
        if not is_http_url(url):
            raise ValueError(f"hub_urls: {slug} {kind} must be an absolute http(s) URL")
        return url

    def config_snapshot(self) -> dict[str, Any]:
        """The settings as ``GET /_simulator/config`` shows them (secrets masked)."""
        with self._config_lock:
            credentials = {
                slug: {
                    key: mask_secret(value) if key in fake.secret_credentials and value else value
                    for key, value in self.credentials_for(slug).items()
                }
                for slug, fake in self.fakes.items()
            }
            hub_urls = {
                slug: {kind: mask_url(url) for kind, url in self._hub_urls.get(slug, {}).items()}
                for slug in self.fakes
            }
            faults = {slug: self.faults_for(slug) for slug in self.fakes}
            routes: dict[str, list[str]] = {slug: [] for slug in self.fakes}
            for route in self._routes:
                if route.provider in routes:
                    routes[route.provider].append(f"{route.method} {route.path}")
            return {
                "dlr_delay": self.dlr_delay,
                "seed": self.seed,
                "auto_reply": {"suffix": self.auto_reply_suffix, "text": self.auto_reply_text},
                "credentials": credentials,
                "hub_urls": hub_urls,
                "faults": faults,
                "routes": routes,
            }

    # --- routing ---------------------------------------------------------------------------
    def add_route(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        record: bool = True,
        provider: str | None = None,
    ) -> None:
        """Serve ``method path`` with ``handler(request) -> SimResponse``.

        With a ``provider``, that provider's faults apply and the request log names it.
        """
        self._routes.append(
            Route(method.upper(), path, handler, _compile_path(path), record, provider)
        )

    def dispatch(self, request: SimRequest) -> tuple[Route | None, SimResponse]:
        path_known = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            path_known = True
            request.provider = route.provider
            if route.method != request.method:
                continue
            request.params = match.groupdict()
            try:
                if route.provider is not None:
                    faulty = self._apply_faults(request)
                    if faulty is not None:
                        return route, faulty
                return route, route.handler(request)
            except Exception:
                logger.exception("handler for %s %s failed", request.method, request.path)
                return route, error(500, "internal server error")
        if path_known:
            return None, error(405, "method not allowed")
        return None, error(404, "not found")

    # --- faults ------------------------------------------------------------------------------
    def _happens(self, rate: float) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._rng_lock:
            return self._rng.random() < rate

    def _apply_faults(self, request: SimRequest) -> SimResponse | None:
        """Sleep the latency; answer a throttle or an error; or hang then let the handler answer."""
        slug = request.provider or ""
        faults = self.faults_for(slug)
        if faults["latency_ms"] > 0 and self._stopping.wait(faults["latency_ms"] / 1000):
            return None
        fake = self.fakes.get(slug)
        if self._happens(faults["throttle_rate"]):
            request.fault = "throttle"
            message = "too many requests (simulated)"
            response = fake.fault_response(request, 429, message) if fake else error(429, message)
            response.headers["Retry-After"] = str(faults["retry_after"])
            return response
        if self._happens(faults["error_rate"]):
            request.fault = "error"
            status, message = int(faults["error_status"]), "internal error (simulated)"
            return fake.fault_response(request, status, message) if fake else error(status, message)
        if self._happens(faults["timeout_rate"]):
            request.fault = "timeout"
            logger.info("%s %s: hanging %gs", request.method, request.path, faults["hang_seconds"])
            self._stopping.wait(faults["hang_seconds"])
        return None

    # --- request log -------------------------------------------------------------------------
    @property
    def requests_log(self) -> list[dict[str, Any]]:
        """Recorded requests and callbacks, oldest first (at most the last 1000), as the log
        shows them: secrets masked (hub URLs' tokens and credentials when read, since the
        callbacks themselves need them whole)."""
        with self._log_lock:
            entries = list(self._log)
        return mask_values(entries)

    @property
    def pending_callbacks(self) -> int:
        with self._timers_lock:
            return len(self._timers)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._recorded += 1
            entry["seq"] = self._recorded
            self._log.append(entry)

    @property
    def recorded(self) -> int:
        """How many entries were ever recorded: each entry's `seq` counts from 1 (the log keeps
        the last 1000, so its length stops telling what is new)."""
        with self._log_lock:
            return self._recorded

    def record_request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int,
        *,
        provider: str | None = None,
        fault: str | None = None,
        at: str | None = None,
    ) -> None:
        """Log a request; `at` is when it arrived (default: now)."""
        masked = mask_headers(headers)
        described = _describe_body(body)
        target = mask_target(path)
        self._record(
            {
                "kind": "request",
                "at": at or now_iso(),
                "provider": provider,
                "method": method,
                "path": target,
                "headers": masked,
                "body": described,
                "status": status,
                "fault": fault,
            }
        )
        auth = next((v for k, v in masked.items() if k.lower() == "authorization"), "-")
        summary = json.dumps(mask_values(described), ensure_ascii=True, separators=(",", ":"))
        if len(summary) > 300:
            summary = summary[:297] + "..."
        logger.info(
            "[%s] %s %s -> %d%s auth=%s body=%s",
            provider or "-",
            method,
            mask_text(target),
            status,
            f" (fault: {fault})" if fault else "",
            auth,
            summary,
        )

    # --- control endpoints -------------------------------------------------------------------
    def _register_control_routes(self) -> None:
        self.add_route("GET", "/_simulator/config", self._show_config, record=False)
        self.add_route("POST", "/_simulator/config", self._change_config)
        self.add_route("POST", "/_simulator/replies", self._inject_reply)
        self.add_route("GET", "/_simulator/log", self._show_log, record=False)

    def _show_log(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, self.requests_log)

    def _show_config(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, self.config_snapshot())

    def _change_config(self, request: SimRequest) -> SimResponse:
        try:
            data = request.json()
        except ValueError:
            return error(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return error(400, "the body must be a JSON object")
        known = {"credentials", "hub_urls", "faults", "dlr_delay", "auto_reply"}
        unknown = set(data) - known
        if unknown:
            return error(400, f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            self.configure(**data)
        except ValueError as exc:
            return error(400, str(exc))
        logger.info("configuration changed: %s", ", ".join(sorted(data)) or "nothing")
        return SimResponse(200, self.config_snapshot())

    def _inject_reply(self, request: SimRequest) -> SimResponse:
        try:
            data = request.json()
        except ValueError:
            return error(400, "the body must be valid JSON")
        if not isinstance(data, dict):
            return error(400, "the body must be a JSON object")
        slug = data.get("provider")
        if slug not in self.fakes:
            return error(400, f"field 'provider' must be one of: {', '.join(self.fakes)}")
        for name in ("from", "text"):
            if not isinstance(data.get(name), str) or not data[name]:
                return error(400, f"field '{name}' is required and must be a non-empty string")
        for name in ("to", "in_reply_to"):
            if data.get(name) is not None and not isinstance(data[name], str):
                return error(400, f"field '{name}' must be a string")
        reply = Reply(
            slug,
            data["from"],
            data["text"],
            to=data.get("to") or None,
            in_reply_to=data.get("in_reply_to") or None,
        )
        try:
            outcome = self.fakes[slug].deliver_reply(reply, delay=0.0)
        except ReplyRefused as exc:
            return error(exc.status, exc.message)
        return SimResponse(202, mask_values({"id": reply.id, "provider": slug, **outcome}))

    # --- callbacks ---------------------------------------------------------------------------
    def schedule(self, delay: float, action: Callable[[], None], name: str) -> None:
        """Run ``action`` in ``delay`` seconds, unless the simulator stops first."""

        def fire() -> None:
            try:
                action()
            except Exception:
                logger.exception("%s failed", name)
            finally:
                with self._timers_lock:
                    self._timers.discard(timer)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.name = name
        with self._timers_lock:
            if self._stopping.is_set():
                return
            self._timers.add(timer)
            timer.start()

    def schedule_callback(
        self,
        url: str,
        body: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        *,
        provider: str,
        label: str,
        form: bool = False,
        delay: float | None = None,
    ) -> None:
        """POST ``body`` (JSON, or form-encoded when ``form``) to ``url`` after ``delay`` seconds.

        ``delay`` defaults to ``dlr_delay``; a callable ``body`` is built when the timer fires
        (once: each retry sends the same body). Failures are retried `callback_retries` times.
        """
        wait = self.dlr_delay if delay is None else delay

        def post() -> None:
            payload = dict(body() if callable(body) else body)
            self.post_callback(url, payload, provider=provider, label=label, form=form)

        self.schedule(wait, post, f"simulator-callback-{provider}-{label}")

    def post_callback(
        self, url: str, payload: dict[str, Any], *, provider: str, label: str, form: bool = False
    ) -> None:
        """POST ``payload`` now, in this thread, retrying on failure; every attempt is logged."""
        attempts = 1 + max(0, self.callback_retries)
        for attempt in range(1, attempts + 1):
            if self._stopping.is_set():
                return
            entry: dict[str, Any] = {
                "kind": "callback",
                "at": now_iso(),
                "provider": provider,
                "callback_url": url,
                "format": "form" if form else "json",
                "body": payload,
                "attempt": attempt,
            }
            try:
                response = requests.post(
                    url,
                    data=payload if form else None,
                    json=None if form else payload,
                    timeout=self.callback_timeout,
                    headers={"User-Agent": USER_AGENT},
                )
            except requests.RequestException as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                problem = entry["error"]
            else:
                response.close()
                entry["response_status"] = response.status_code
                problem = (
                    None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
                )
            self._record(entry)
            if problem is None:
                logger.info(
                    "[%s] callback %s -> %s (%d)",
                    provider,
                    label,
                    mask_url(url),
                    entry["response_status"],
                )
                return
            if attempt < attempts:
                logger.warning(
                    "[%s] callback %s to %s failed (%s), attempt %d of %d",
                    provider,
                    label,
                    mask_url(url),
                    mask_text(problem),
                    attempt,
                    attempts,
                )
                if self._stopping.wait(self.callback_retry_pause):
                    return
            else:
                logger.error(
                    "[%s] callback %s to %s failed (%s), giving up after %d attempts",
                    provider,
                    label,
                    mask_url(url),
                    mask_text(problem),
                    attempts,
                )
