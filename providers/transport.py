"""Provider calls kept in flight by the hundred: one asyncio loop per process, in a thread of its
own, with pooled keep-alive HTTP/1.1 connections per origin, fed from any thread.

The adapters do not change: a call is still a `ProviderRequest` their `build_request` made,
and the answer comes back as the `requests.Response` their parse hooks read, so only the wire
differs from `providers.http`. What `providers.http` reads from the environment applies here
too (proxies, the CA bundle, `.netrc`), as do its timeouts and its error mapping: a network
error or a timeout is a `ProviderTemporaryError`.

The wire is written here, on asyncio's protocols, and answers are read by llhttp (`httptools`,
Node's HTTP parser in C). A provider call needs little of a general client: one request and its
answer on a kept-alive connection, through a proxy when the environment names one, over TLS for
https. A general asynchronous client (aiohttp) spent about four times the CPU per call of this
one on what a call does not use (cookies, tracing, redirects, multidicts): 200 µs of the loop
thread against 50-60 µs, on loopback.
"""

import asyncio
import base64
import functools
import os
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httptools
import requests
from django.conf import settings
from requests.compat import json as complexjson
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from . import http
from .base import ProviderRequest
from .exceptions import ProviderTemporaryError

# What `requests` says it is, so that a provider sees the same client on both paths.
USER_AGENT = requests.utils.default_user_agent()
# An idle connection older than this is closed rather than used (servers close theirs after
# 5 to 75 s; a connection they dropped silently would cost a failed call).
KEEP_ALIVE_SECONDS = 15.0


class Transport:
    """The loop, its thread and its connections: made on first use in each process (a forked
    worker process makes its own)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._idle: dict[tuple, deque[Connection]] = {}
        self._ssl: dict[bool | str, ssl.SSLContext] = {}
        self.thread = threading.Thread(target=self._run, name="provider-calls", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> Future:
        """Run `coroutine` on the loop; its result (or exception) comes through the future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def fetch(self, call: ProviderRequest) -> requests.Response:
        """Make `call` and read its whole answer; a network error or a timeout raises
        `ProviderTemporaryError` as `providers.http.request` does (the status is the caller's
        to read). Redirects are not followed: a provider's send is not repeated elsewhere."""
        connect, read = settings.SMSHUB_HTTP_TIMEOUT
        connection = None
        try:
            target = _target(call.url)
            environment = http._environment(target.origin)
            proxy = _Proxy(environment["proxy"]) if environment["proxy"] else None
            request = _request_bytes(call, target, environment, proxy)
            key = (target.origin, environment["proxy"], environment["verify"])
            connection = self._take(key)
            if connection is None:
                async with asyncio.timeout(connect):
                    connection = await self._connect(target, proxy, environment["verify"])
            answer = await connection.exchange(request, read)
        except TimeoutError as exc:
            if connection is not None:
                connection.close()
            raise ProviderTemporaryError(
                f"timed out calling {http._host(call.url)}", code="timeout"
            ) from exc
        except (OSError, ValueError, httptools.HttpParserError) as exc:
            if connection is not None:
                connection.close()
            raise ProviderTemporaryError(
                f"could not reach {http._host(call.url)}: {exc.__class__.__name__}",
                code="network",
            ) from exc
        except BaseException:  # cancelled: the answer may still come, on nobody's call
            if connection is not None:
                connection.close()
            raise
        if answer.keep_alive:
            self._give_back(key, connection)
        else:
            connection.close()
        return answer.response(call.url)

    def _take(self, key: tuple) -> "Connection | None":
        """The most recently used idle connection to that origin that is still open and fresh."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.open and now - connection.idle_since < KEEP_ALIVE_SECONDS:
                return connection
            connection.close()
        return None

    def _give_back(self, key: tuple, connection: "Connection") -> None:
        idle = self._idle.setdefault(key, deque())
        connection.idle_since = now = time.monotonic()
        idle.append(connection)
        # The least recently used end holds the stale and the closed: dropped as they appear.
        while idle and (not idle[0].open or now - idle[0].idle_since >= KEEP_ALIVE_SECONDS):
            idle.popleft().close()

    async def _connect(
        self, target: "_Target", proxy: "_Proxy | None", verify: bool | str
    ) -> "Connection":
        """A new connection to the origin: straight, through an HTTP proxy (plain http), or
        through a proxy's CONNECT tunnel (https), with TLS for https."""
        context = self._context(verify) if target.secure else None
        if proxy is None:
            _, connection = await self.loop.create_connection(
                Connection, target.host, target.port, ssl=context, server_hostname=target.sni
            )
            return connection
        _, connection = await self.loop.create_connection(
            Connection, proxy.host, proxy.port, ssl=proxy.context(self._context(verify))
        )
        if not target.secure:
            return connection
        try:
            await connection.tunnel(target.hostport, proxy.authorization)
            secure = await self.loop.start_tls(
                connection.transport, connection, context, server_hostname=target.sni
            )
        except BaseException:
            connection.close()
            raise
        connection.transport = secure
        return connection

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        """`requests`' `verify` as TLS trust: True is `requests`' own CA bundle (certifi), a
        path a CA bundle file or directory, False no check at all."""
        if verify not in self._ssl:
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif verify is True:
                context = ssl.create_default_context(cafile=certifi.where())
            elif os.path.isdir(verify):
                context = ssl.create_default_context(capath=verify)
            else:
                context = ssl.create_default_context(cafile=verify)
            self._ssl[verify] = context
        return self._ssl[verify]


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> "_Target":
    """`url`'s `_Target`, read once: most providers' sends all go to one URL."""
    return _Target(url)


class _Target:
    """What a call's URL says about where it goes."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url[:100]}")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        # As the adapter wrote them: a signed path (Ogangi) must not be quoted again.
        self.netloc = parts.netloc.rpartition("@")[2]
        self.hostport = self.netloc if parts.port else f"{self.netloc}:{self.port}"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.absolute = f"{parts.scheme}://{self.netloc}{self.path}"
        self.sni = self.host if self.secure else None
        self.userinfo = (
            (unquote(parts.username or ""), unquote(parts.password or ""))
            if parts.username or parts.password
            else None
        )


class _Proxy:
    """An HTTP proxy from the environment (`HTTPS_PROXY`...), with its credentials if any."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.secure else 80)
        self.authorization = (
            _basic(unquote(parts.username or ""), unquote(parts.password or ""))
            if parts.username
            else None
        )

    def context(self, context: ssl.SSLContext) -> ssl.SSLContext | None:
        return context if self.secure else None


def _basic(user: str, password: str) -> str:
    """Basic credentials, encoded as `requests` encodes them."""
    pair = f"{user}:{password}".encode("latin1")
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _request_bytes(
    call: ProviderRequest, target: _Target, environment: dict, proxy: _Proxy | None
) -> bytes:
    """The request on the wire: its head and body as `requests` would write them."""
    # By lower-case name: an adapter's header replaces the client's of the same name.
    headers = {
        "host": ("Host", target.netloc),
        "user-agent": ("User-Agent", USER_AGENT),
        "accept-encoding": ("Accept-Encoding", "gzip, deflate"),
        "accept": ("Accept", "*/*"),
        "connection": ("Connection", "keep-alive"),
    }
    for name, value in call.headers.items():
        headers[name.lower()] = (name, value)
    auth = call.auth or environment["netrc"] or target.userinfo
    if auth:
        headers["authorization"] = ("Authorization", _basic(*auth))
    body, content_type = _body(call)
    if content_type and "content-type" not in headers:
        headers["content-type"] = ("Content-Type", content_type)
    if body or call.method not in ("GET", "HEAD"):
        headers["content-length"] = ("Content-Length", str(len(body)))
    path = target.path
    if proxy is not None and not target.secure:  # the proxy forwards it: the whole URL
        path = target.absolute
        if proxy.authorization:
            headers["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
    lines = [f"{call.method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.values()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


def _body(call: ProviderRequest) -> tuple[bytes, str | None]:
    """The body and its content type, by `requests`' rules: `data` as it is or form-encoded,
    else `json` in UTF-8."""
    if call.data:
        data = call.data
        if isinstance(data, bytes):
            return data, None
        if isinstance(data, str):
            return data.encode("utf-8"), None
        encoded = requests.models.RequestEncodingMixin._encode_params(data)
        return encoded.encode("utf-8"), "application/x-www-form-urlencoded"
    if call.json is not None:
        return complexjson.dumps(call.json, allow_nan=False).encode("utf-8"), "application/json"
    return b"", None


class Answer:
    """One answer as read off the wire."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.keep_alive = False
        self.framed = False  # its length is given (Content-Length, chunks), not the close

    def response(self, url: str) -> requests.Response:
        """The answer as the `requests.Response` the adapters read."""
        response = requests.Response()
        response.status_code = self.status
        response.reason = self.reason.decode("latin1")
        response.headers = CaseInsensitiveDict(self.headers)
        response.url = url
        response.encoding = get_encoding_from_headers(response.headers)
        body = b"".join(self.body)
        coding = self.headers.get("content-encoding", "").strip().lower()
        if body and coding in ("gzip", "deflate"):
            # gzip's header, or deflate with or without zlib's (as servers send it).
            window = 16 + zlib.MAX_WBITS if coding == "gzip" else 32 + zlib.MAX_WBITS
            try:
                body = zlib.decompress(body, window)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        response._content = body
        return response


class Connection(asyncio.Protocol):
    """One kept-alive connection: one request and its answer at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future | None = None
        self._answer: Answer | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._tunnel: bytearray | None = None

    # asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel += data
            if b"\r\n\r\n" in self._tunnel:
                self._done(bytes(self._tunnel))
            return
        if self._parser is None:  # nothing asked: a server speaking out of turn
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._failed(exc)
            self.close()

    def eof_received(self) -> bool:
        answer = self._answer
        if answer is not None and answer.status and not answer.framed:
            self._done(answer)  # its body ended with the connection, as HTTP/1.0 allows
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._failed(exc or ConnectionResetError("the connection closed before the answer"))

    # httptools' side
    def on_status(self, reason: bytes) -> None:
        self._answer.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        name_, value_ = name.decode("latin1").lower(), value.decode("latin1")
        headers = self._answer.headers
        headers[name_] = f"{headers[name_]}, {value_}" if name_ in headers else value_

    def on_headers_complete(self) -> None:
        answer = self._answer
        answer.status = self._parser.get_status_code()
        answer.framed = "content-length" in answer.headers or "chunked" in answer.headers.get(
            "transfer-encoding", ""
        )

    def on_body(self, body: bytes) -> None:
        self._answer.body.append(body)

    def on_message_complete(self) -> None:
        self._answer.keep_alive = self._parser.should_keep_alive()
        self._done(self._answer)

    # the caller's side
    async def exchange(self, request: bytes, timeout: float) -> Answer:
        """Send `request` and read its `Answer`, whole within `timeout` seconds (TimeoutError)."""
        self._answer = Answer()
        self._parser = httptools.HttpResponseParser(self)
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        # One timer, not asyncio.timeout: its scope and its cancellation cost more than the call.
        timer = loop.call_later(timeout, self._failed, TimeoutError())
        self.transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()

    def tunnel(self, hostport: str, authorization: str | None) -> asyncio.Future:
        """Ask the proxy for a tunnel to `hostport`; the future ends when it is open."""
        head = f"CONNECT {hostport} HTTP/1.1\r\nHost: {hostport}\r\n"
        if authorization:
            head += f"Proxy-Authorization: {authorization}\r\n"
        self._tunnel = bytearray()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"{head}\r\n".encode("latin1"))
        return asyncio.ensure_future(self._tunnelled(self._waiter))

    async def _tunnelled(self, waiter: asyncio.Future) -> None:
        head = await waiter
        self._tunnel = None
        status = head.split(b"\r\n", 1)[0]
        if status.split(b" ", 2)[1:2] != [b"200"]:
            raise ConnectionRefusedError(f"the proxy refused the tunnel: {status[:100]!r}")

    def _done(self, result: Any) -> None:
        waiter, self._waiter = self._waiter, None
        self._answer = self._parser = None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _failed(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self._answer = self._parser = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


_transport: tuple[int, Transport] | None = None
_lock = threading.Lock()


def transport() -> Transport:
    """This process's transport."""
    global _transport
    with _lock:
        if _transport is None or _transport[0] != os.getpid():
            _transport = (os.getpid(), Transport())
        return _transport[1]
