"""providers/http.py: the environment's proxy settings apply to provider calls, read once; what
each error status means (its class), and the provider's own error words deciding over it."""

import pytest
import requests

from providers import http
from providers.exceptions import (
    ErrorClass,
    ProviderAccountError,
    ProviderError,
    ProviderRejected,
    ProviderTemporaryError,
    ProviderThrottled,
    provider_error,
)

CLOSED_PORT_PROXY = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    http._environment.cache_clear()
    yield
    http._environment.cache_clear()


def test_a_call_without_a_proxy_reaches_the_provider(simulator):
    with pytest.raises(ProviderRejected):  # the simulator answered: 404 for an unknown path
        http.request("GET", f"{simulator.url}/no-such-path")


def test_a_proxy_from_the_environment_is_used(simulator, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", CLOSED_PORT_PROXY)
    with pytest.raises(ProviderTemporaryError) as raised:
        http.request("GET", f"{simulator.url}/no-such-path")
    assert raised.value.code == "network"  # it went to the (closed) proxy, not the simulator


def test_no_proxy_from_the_environment_is_honoured(simulator, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", CLOSED_PORT_PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(ProviderRejected):
        http.request("GET", f"{simulator.url}/no-such-path")


# --- what an error status means --------------------------------------------------------------
def answer(status: int, body: bytes = b"the provider's words", **headers) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, ProviderRejected, "Acme refused the request (HTTP 400): the provider's words"),
        (401, ProviderAccountError, "credentials refused by Acme (HTTP 401): the provider's words"),
        (402, ProviderAccountError, "Acme refused the provider account (HTTP 402): the provider"),
        (403, ProviderAccountError, "credentials refused by Acme (HTTP 403): the provider's words"),
        (404, ProviderRejected, "Acme refused the request (HTTP 404)"),
        (408, ProviderTemporaryError, "temporary error from Acme (HTTP 408)"),
        (429, ProviderThrottled, "throttled by Acme (HTTP 429)"),
        (500, ProviderTemporaryError, "temporary error from Acme (HTTP 500): the provider's words"),
        (503, ProviderTemporaryError, "temporary error from Acme (HTTP 503)"),
    ],
)
def test_error_statuses_and_their_classes(status, error, message):
    with pytest.raises(ProviderError) as caught:
        http.raise_for_status(answer(status), provider="Acme")
    assert type(caught.value) is error
    assert caught.value.message.startswith(message)
    assert caught.value.code == str(status)
    assert caught.value.retryable is (error.error_class == ErrorClass.TEMPORARY)


def test_success_statuses_raise_nothing():
    for status in (200, 201, 204):
        http.raise_for_status(answer(status))


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_the_provider_accounts_configuration(status):
    moved = answer(status, Location="https://api.example.com/v2/sms")
    with pytest.raises(ProviderAccountError) as caught:
        http.raise_for_status(moved, provider="Vortext")
    assert caught.value.message == (
        f"Vortext answered with a redirect (HTTP {status}) to https://api.example.com/v2/sms: "
        "the provider account's base URL may be out of date"
    )


@pytest.mark.parametrize(
    ("status", "statuses", "error"),
    [
        (404, {404: ErrorClass.ACCOUNT}, ProviderAccountError),
        (400, {400: ErrorClass.TEMPORARY}, ProviderTemporaryError),
        (500, {500: ErrorClass.REJECTED}, ProviderRejected),
        (401, {401: ErrorClass.REJECTED}, ProviderRejected),
        (429, {429: ErrorClass.ACCOUNT}, ProviderAccountError),
    ],
)
def test_a_provider_documents_statuses_otherwise(status, statuses, error):
    with pytest.raises(ProviderError) as caught:
        http.raise_for_status(answer(status), statuses=statuses, provider="Acme")
    assert type(caught.value) is error


def test_an_account_status_from_the_provider_reads_as_a_hold_reason():
    with pytest.raises(ProviderAccountError) as caught:
        http.raise_for_status(
            answer(404), lambda r: "wrong base URL", {404: ErrorClass.ACCOUNT}, "Acme"
        )
    assert caught.value.message == "Acme refused the provider account (HTTP 404): wrong base URL"


def word(response: requests.Response) -> ProviderError | None:
    """A provider whose error bodies are words: TEMP (temporary), KEY (account), else none."""
    classes = {b"TEMP": ErrorClass.TEMPORARY, b"KEY": ErrorClass.ACCOUNT}
    found = classes.get(response.content)
    return None if found is None else provider_error(found, "by word", code="word")


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (400, b"TEMP", ProviderTemporaryError, "word"),  # the word decides over the status
        (500, b"KEY", ProviderAccountError, "word"),
        (400, b"other", ProviderRejected, "400"),  # no word: the status decides
        (401, b"TEMP", ProviderAccountError, "401"),  # an account status stays one
        (403, b"TEMP", ProviderAccountError, "403"),
        (429, b"KEY", ProviderThrottled, "429"),  # throttling keeps its Retry-After
    ],
)
def test_the_providers_own_words_decide_over_the_status(status, body, error, code):
    with pytest.raises(ProviderError) as caught:
        http.raise_for_status(answer(status, body), classify=word)
    assert type(caught.value) is error
    assert caught.value.code == code


def test_a_status_the_provider_calls_an_account_problem_is_not_reclassified_by_words():
    with pytest.raises(ProviderAccountError):
        http.raise_for_status(
            answer(404, b"TEMP"), statuses={404: ErrorClass.ACCOUNT}, classify=word
        )


def test_429_carries_retry_after():
    with pytest.raises(ProviderThrottled) as caught:
        http.raise_for_status(answer(429, **{"Retry-After": "12"}))
    assert caught.value.retry_after == 12.0
