"""Provider calls kept in flight by the hundred: one asyncio loop per process, in a thread of its
own, with pooled keep-alive connections (aiohttp), fed from any thread.

The adapters do not change: a call is still a `ProviderRequest` their `build_request` made,
and the answer comes back as the `requests.Response` their parse hooks read, so only the wire
differs from `providers.http`. What `providers.http` reads from the environment applies here
too (proxies, the CA bundle, `.netrc`), as do its timeouts and its error mapping: a network
error or a timeout is a `ProviderTemporaryError`.
"""

import asyncio
import os
import ssl
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

import aiohttp
import requests
import yarl
from django.conf import settings
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from . import http
from .base import ProviderRequest
from .exceptions import ProviderTemporaryError


class Transport:
    """The loop, its thread and its session: made on first use in each process (a forked
    worker process makes its own)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._session: aiohttp.ClientSession | None = None
        self._ssl: dict[str, ssl.SSLContext | bool] = {}
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

    def session(self) -> aiohttp.ClientSession:
        """The loop's session (call it on the loop): connections kept alive per origin, as
        many at once as the calls in flight (bounded by the dispatcher)."""
        if self._session is None:
            connect, read = settings.SMSHUB_HTTP_TIMEOUT
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read),
                # Proxies and the rest are read once per origin (`http._environment`).
                trust_env=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def _ssl_for(self, verify: bool | str) -> ssl.SSLContext | bool:
        """`requests`' `verify` as aiohttp takes it: True (the default context), False, or a
        context trusting that CA bundle."""
        if verify is True:
            return True
        if verify is False:
            return False
        if verify not in self._ssl:
            self._ssl[verify] = ssl.create_default_context(cafile=verify)
        return self._ssl[verify]

    async def fetch(self, call: ProviderRequest) -> requests.Response:
        """Make `call` and read its whole answer; a network error or a timeout raises
        `ProviderTemporaryError` as `providers.http.request` does (the status is the caller's
        to read)."""
        origin = http._origin(call.url)
        environment = http._environment(origin)
        headers = {"User-Agent": USER_AGENT, **call.headers}
        if auth := call.auth or environment["netrc"]:  # encoded as `requests` does
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth, encoding="latin1")
        try:
            async with self.session().request(
                call.method,
                # As the adapter wrote it: a signed path (Ogangi) must not be quoted again.
                yarl.URL(call.url, encoded=True),
                headers=headers,
                json=call.json,
                data=call.data,
                proxy=environment["proxy"],
                ssl=self._ssl_for(environment["verify"]),
            ) as answer:
                body = await answer.read()
        except TimeoutError as exc:
            raise ProviderTemporaryError(
                f"timed out calling {http._host(call.url)}", code="timeout"
            ) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise ProviderTemporaryError(
                f"could not reach {http._host(call.url)}: {exc.__class__.__name__}",
                code="network",
            ) from exc
        return _response(answer, body)


# What `requests` says it is, so that a provider sees the same client on both paths.
USER_AGENT = requests.utils.default_user_agent()


def _response(answer: aiohttp.ClientResponse, body: bytes) -> requests.Response:
    """The answer as the `requests.Response` the adapters read."""
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason or ""
    response.headers = CaseInsensitiveDict(answer.headers)
    response.url = str(answer.url)
    response.encoding = get_encoding_from_headers(response.headers)
    response._content = body
    return response


_transport: tuple[int, Transport] | None = None
_lock = threading.Lock()


def transport() -> Transport:
    """This process's transport."""
    global _transport
    with _lock:
        if _transport is None or _transport[0] != os.getpid():
            _transport = (os.getpid(), Transport())
        return _transport[1]
