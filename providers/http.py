"""HTTP towards providers: one pooled session per process, timeouts, and status → error mapping."""

import functools
import logging
import os
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from django.conf import settings

from .exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderError,
    ProviderTemporaryError,
    ProviderThrottled,
    provider_error,
    reason,
)

logger = logging.getLogger(__name__)

_local = threading.local()


def session() -> requests.Session:
    """The pooled session of this process and thread; a forked child gets a fresh one.

    It does not read the environment on every call (see `_environment`)."""
    current = getattr(_local, "session", None)
    if current is None or getattr(_local, "pid", None) != os.getpid():
        current = requests.Session()
        current.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=20, pool_maxsize=50)
        current.mount("http://", adapter)
        current.mount("https://", adapter)
        _local.session, _local.pid = current, os.getpid()
    return current


def request(
    method: str,
    url: str,
    *,
    describe: Callable[[requests.Response], str | None] | None = None,
    statuses: dict[int, ErrorClass] | None = None,
    provider: str = "the provider",
    classify: Callable[[requests.Response], ProviderError | None] | None = None,
    **kwargs,
) -> requests.Response:
    """Send a request; network failures become `ProviderTemporaryError`, HTTP errors are mapped.

    `describe(response)` may turn a provider's error body into a clear sentence (None: raw text);
    `statuses` overrides `STATUS_CLASSES` where the provider documents a status otherwise;
    `classify(response)` reads the provider's own error words (see `raise_for_status`).
    """
    try:
        response = fetch(method, url, **kwargs)
    except requests.Timeout as exc:
        raise ProviderTemporaryError(f"timed out calling {_host(url)}", code="timeout") from exc
    except requests.RequestException as exc:
        raise ProviderTemporaryError(
            f"could not reach {_host(url)}: {exc.__class__.__name__}", code="network"
        ) from exc
    raise_for_status(response, describe, statuses, provider, classify)
    return response


@functools.cache
def _environment(origin: str) -> dict:
    """What `requests` would read from the environment for a call to `origin`: proxies
    (`HTTPS_PROXY`, `NO_PROXY`...), the CA bundle (`REQUESTS_CA_BUNDLE`) and `.netrc` credentials.
    A plain session reads them again on every call, which costs more than the call itself on
    loopback; here they are read once per origin and process (the environment does not change
    while the process runs)."""
    found = requests.Session().merge_environment_settings(origin, {}, None, None, None)
    netrc = requests.utils.get_netrc_auth(origin)
    # A CA bundle means nothing to plain HTTP, yet `requests` looks the path up on every call.
    verify = found["verify"] if origin.startswith("https:") else True
    # The proxy depends on the scheme and host alone: the same for every URL of the origin.
    proxy = requests.utils.select_proxy(origin, found["proxies"])
    return {"proxies": found["proxies"], "proxy": proxy, "verify": verify, "netrc": netrc}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def fetch(method: str, url: str, **kwargs) -> requests.Response:
    """One call on the pooled session, with the environment's settings and the default timeout;
    failures raise `requests`' own exceptions."""
    kwargs.setdefault("timeout", settings.SMSHUB_HTTP_TIMEOUT)
    environment = _environment(_origin(url))
    kwargs.setdefault("proxies", environment["proxies"])
    kwargs.setdefault("verify", environment["verify"])
    if kwargs.get("auth") is None and environment["netrc"]:
        kwargs["auth"] = environment["netrc"]
    return session().request(method, url, **kwargs)


# HTTP error statuses whose meaning does not depend on the provider: credentials refused (401,
# 403) and payment required (402) are the provider account's problem, not the message's; a
# request timeout (408) is worth repeating. 429 is throttling, 5xx temporary, other 4xx a refusal.
STATUS_CLASSES: dict[int, ErrorClass] = {
    401: ErrorClass.ACCOUNT,
    402: ErrorClass.ACCOUNT,
    403: ErrorClass.ACCOUNT,
    408: ErrorClass.TEMPORARY,
}


def raise_for_status(
    response: requests.Response,
    describe: Callable[[requests.Response], str | None] | None = None,
    statuses: dict[int, ErrorClass] | None = None,
    provider: str = "the provider",
    classify: Callable[[requests.Response], ProviderError | None] | None = None,
) -> None:
    """429 → throttled; 5xx → temporary; 401, 402, 403 → the provider account's problem; other
    4xx → rejected; each with the provider's own text. A redirect (3xx, not followed by the
    transport) is the provider account's configuration. `statuses` overrides (see `request`).

    `classify(response)` is the provider's own reading of an error body (one of its documented
    error words), which decides over the status; None lets the status decide. It is not asked
    for 429 (throttling keeps its Retry-After) nor for a status that already means an account
    problem: that stays one whatever the body says.
    """
    status = response.status_code
    if 300 <= status < 400:
        # Not followed (a send is not repeated elsewhere): most often a base URL out of date.
        where = response.headers.get("Location", "elsewhere")
        raise ProviderConfigurationError(
            f"{provider} answered with a redirect (HTTP {status}) to {where[:200]}: the "
            "provider account's base URL may be out of date",
            code=str(status),
        )
    if status < 400:
        return
    error_class = {**STATUS_CLASSES, **(statuses or {})}.get(status)
    if classify is not None and status != 429 and error_class != ErrorClass.ACCOUNT:
        found = classify(response)
        if found is not None:
            raise found
    text = (describe(response) if describe else None) or response.text[:1000]
    if status == 429 and error_class in (None, ErrorClass.TEMPORARY):
        raise ProviderThrottled(
            f"throttled by {provider} (HTTP 429): {text}",
            code="429",
            raw=text,
            retry_after=_retry_after(response),
        )
    if error_class is None:
        error_class = ErrorClass.TEMPORARY if status >= 500 else ErrorClass.REJECTED
    message = reason(
        error_class,
        provider,
        text,
        credentials=status in (401, 403),
        what="the request",
        status=status,
    )
    raise provider_error(error_class, message, code=str(status), raw=text)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _host(url: str) -> str:
    return requests.utils.urlparse(url).netloc or url
