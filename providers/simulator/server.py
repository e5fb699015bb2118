"""The provider simulator: a small HTTP server that pretends to be an SMS provider.

Used by local development (`manage.py runsimulator`), the end-to-end tests and benchmarks. It
needs only the standard library and `requests` (no Django), so it can run standalone and be
imported in tests without settings.

Protocols are served through a small route table, ``(method, path) -> handler``; a path may
hold ``{name}`` segments (e.g. ``/fake/{account}/messages``) whose values land in
``SimRequest.params``. Adding a fake of another provider is a matter of writing handlers and
registering them with :meth:`SimulatorServer.add_route`.

The "simulator" protocol (what `providers.simulator.adapter` speaks):

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
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import re
import socket
import socketserver
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

logger = logging.getLogger("providers.simulator")

E164_RE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)  # used with fullmatch()
UNREACHABLE_SUFFIX = "0000"  # magic: numbers ending so are reported undelivered
UNREACHABLE_ERROR_CODE = "UNREACHABLE"
MAX_LOG_ENTRIES = 1000
MAX_BODY_BYTES = 1024 * 1024
MAX_LOGGED_BODY_BYTES = 64 * 1024
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key"})
USER_AGENT = "SMSHub-Simulator/0.1"


def now_iso() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def mask_secret(value: str) -> str:
    """``"Bearer abcdefgh1234"`` → ``"Bearer ****1234"``; short secrets are hidden entirely."""
    scheme, sep, secret = value.strip().partition(" ")
    if not sep:
        scheme, secret = "", scheme
    secret = secret.strip()
    masked = "****" + (secret[-4:] if len(secret) > 8 else "")
    return f"{scheme} {masked}" if scheme else masked


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: mask_secret(value) if name.lower() in SENSITIVE_HEADERS else value
        for name, value in headers.items()
    }


@dataclass
class SimRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: Mapping[str, str]  # case-insensitive (an http.client.HTTPMessage)
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from {name} segments of the route

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)


@dataclass
class SimResponse:
    status: int
    body: Any = None  # JSON-serialisable, or str/bytes sent as they are
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    after: Callable[[], None] | None = None  # run once the response has been sent

    def encode(self) -> bytes:
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

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
        simulator = self.server.simulator
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            body, route, response = b"", None, error(exc.status, exc.message)
        else:
            request = SimRequest(self.command, split.path, split.query, self.headers, body)
            route, response = simulator.dispatch(request)
        if route is None or route.record:
            simulator.record_request(self.command, self.path, self.headers, body, response.status)
        self._send(response)
        if response.after is not None:
            try:
                response.after()
            except Exception:
                logger.exception("follow-up of %s %s failed", self.command, self.path)

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
        logger.info("%s -> %d %s", self.requestline or "-", code, message or phrase)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class SimulatorServer:
    """A fake SMS provider on a real socket (bound at construction; ``port=0`` picks a free one)."""

    callback_timeout = 10.0  # seconds per callback attempt
    callback_retries = 3  # extra attempts after a failed callback
    callback_retry_pause = 0.5  # seconds between attempts

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "simulator-key",
        dlr_delay: float = 1.0,
    ) -> None:
        if not api_key:
            raise ValueError("the simulator needs a non-empty api_key")
        if dlr_delay < 0:
            raise ValueError("dlr_delay must be zero or more seconds")
        self.host = host
        self.api_key = api_key
        self.dlr_delay = float(dlr_delay)
        self._routes: list[Route] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG_ENTRIES)
        self._log_lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._state_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._register_simulator_protocol()
        self._httpd = _HTTPServer((host, port), self)

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
            self._stopping.set()  # from now on no callback gets scheduled or retried
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

    # --- routing ---------------------------------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler, *, record: bool = True) -> None:
        """Serve ``method path`` with ``handler(request) -> SimResponse``."""
        self._routes.append(Route(method.upper(), path, handler, _compile_path(path), record))

    def dispatch(self, request: SimRequest) -> tuple[Route | None, SimResponse]:
        path_known = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            path_known = True
            if route.method != request.method:
                continue
            request.params = match.groupdict()
            try:
                return route, route.handler(request)
            except Exception:
                logger.exception("handler for %s %s failed", request.method, request.path)
                return route, error(500, "internal server error")
        if path_known:
            return None, error(405, "method not allowed")
        return None, error(404, "not found")

    # --- request log -------------------------------------------------------------------------
    @property
    def requests_log(self) -> list[dict[str, Any]]:
        """Recorded requests and callbacks, oldest first (at most the last 1000)."""
        with self._log_lock:
            return list(self._log)

    @property
    def pending_callbacks(self) -> int:
        with self._timers_lock:
            return len(self._timers)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)

    def record_request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, status: int
    ) -> None:
        masked = mask_headers(headers)
        described = _describe_body(body)
        self._record(
            {
                "kind": "request",
                "at": now_iso(),
                "method": method,
                "path": path,
                "headers": masked,
                "body": described,
                "status": status,
            }
        )
        auth = next((v for k, v in masked.items() if k.lower() == "authorization"), "-")
        summary = json.dumps(described, ensure_ascii=True, separators=(",", ":"))
        if len(summary) > 300:
            summary = summary[:297] + "..."
        logger.info("%s %s -> %d auth=%s body=%s", method, path, status, auth, summary)

    # --- the "simulator" protocol -----------------------------------------------------------
    def _register_simulator_protocol(self) -> None:
        self.add_route("POST", "/simulator/messages", self._send_message)
        self.add_route("GET", "/simulator/health", self._health)
        self.add_route("GET", "/simulator/log", self._show_log, record=False)

    def _authorized(self, request: SimRequest) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    def _health(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return error(401, "invalid api key")
        return SimResponse(200, {"status": "ok"})

    def _show_log(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, self.requests_log)

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
        response = SimResponse(201, {"id": message_id, "status": "accepted"})
        if callback_url is not None:
            response.after = functools.partial(
                self._schedule_callback, callback_url, message_id, to, data.get("reference")
            )
        return response

    # --- delivery report callbacks -----------------------------------------------------------
    def _schedule_callback(
        self, callback_url: str, message_id: str, to: str, reference: str | None
    ) -> None:
        def fire() -> None:
            try:
                self._deliver_report(callback_url, message_id, to, reference)
            except Exception:
                logger.exception("callback for %s failed", message_id)
            finally:
                with self._timers_lock:
                    self._timers.discard(timer)

        timer = threading.Timer(self.dlr_delay, fire)
        timer.daemon = True
        timer.name = f"simulator-dlr-{message_id}"
        with self._timers_lock:
            if self._stopping.is_set():
                return
            self._timers.add(timer)
            timer.start()

    def _deliver_report(
        self, callback_url: str, message_id: str, to: str, reference: str | None
    ) -> None:
        unreachable = to.endswith(UNREACHABLE_SUFFIX)
        payload = {
            "id": message_id,
            "status": "undelivered" if unreachable else "delivered",
            "timestamp": now_iso(),
            "reference": reference,
            "error_code": UNREACHABLE_ERROR_CODE if unreachable else "",
        }
        attempts = 1 + max(0, self.callback_retries)
        for attempt in range(1, attempts + 1):
            if self._stopping.is_set():
                return
            entry: dict[str, Any] = {
                "kind": "callback",
                "at": now_iso(),
                "callback_url": callback_url,
                "body": payload,
                "attempt": attempt,
            }
            try:
                response = requests.post(
                    callback_url,
                    json=payload,
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
                    "callback %s %s -> %s (%d)",
                    message_id,
                    payload["status"],
                    callback_url,
                    entry["response_status"],
                )
                return
            if attempt < attempts:
                logger.warning(
                    "callback %s to %s failed (%s), attempt %d of %d",
                    message_id,
                    callback_url,
                    problem,
                    attempt,
                    attempts,
                )
                if self._stopping.wait(self.callback_retry_pause):
                    return
            else:
                logger.error(
                    "callback %s to %s failed (%s), giving up after %d attempts",
                    message_id,
                    callback_url,
                    problem,
                    attempts,
                )
