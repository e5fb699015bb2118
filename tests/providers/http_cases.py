"""The HTTP cases every provider shares, as anymail's mock-API test case.

A provider's test module subclasses `ProviderHTTPCases` in a class named ``Test…``: it names its
send and check endpoints, builds its adapter and a message, and adds only what its own doc says
(`send_errors`, `check_errors`): each an answer as `responses` mocks it, with what it must mean.
The common cases hold for every provider: credentials refused (401, 403) is an account problem
whose message reads as the hold reason shown to an administrator; throttling, 5xx, timeouts and
unreachable hosts are temporary.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import requests
import responses

from providers.base import BaseProvider
from providers.events import OutboundSMS
from providers.exceptions import (
    ErrorClass,
    ProviderAccountError,
    ProviderError,
    ProviderTemporaryError,
    ProviderThrottled,
)


@dataclass(frozen=True)
class Answer:
    """One answer of the provider (`mock`: keyword arguments of `responses.add`) and what it
    must mean: the exception's exact type and words its message holds."""

    id: str
    mock: dict[str, Any]
    error: type[ProviderError]
    words: tuple[str, ...] = field(default=())

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def refused(status: int, body: str = "") -> Answer:
    return Answer(f"{status}", {"status": status, "body": body}, ProviderAccountError)


COMMON_SEND = [
    refused(401, "Unauthorized"),
    refused(403),
    Answer(
        "429",
        {"status": 429, "body": "slow down", "headers": {"Retry-After": "30"}},
        ProviderThrottled,
        ("HTTP 429", "slow down"),
    ),
    Answer("500", {"status": 500, "body": "Internal Server Error"}, ProviderTemporaryError),
    Answer("503", {"status": 503, "body": "<html>maintenance</html>"}, ProviderTemporaryError),
    Answer("408", {"status": 408, "body": ""}, ProviderTemporaryError, ("HTTP 408",)),
    Answer(
        "read-timeout",
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        ProviderTemporaryError,
        ("timed out",),
    ),
    Answer(
        "connect-timeout",
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
        ProviderTemporaryError,
        ("timed out",),
    ),
    Answer(
        "connection-refused",
        {"body": requests.exceptions.ConnectionError("Connection refused")},
        ProviderTemporaryError,
        ("could not reach",),
    ),
]
COMMON_CHECK = [
    refused(401, "Unauthorized"),
    refused(403),
    Answer("503", {"status": 503, "body": "down"}, ProviderTemporaryError, ("HTTP 503",)),
    Answer(
        "connection-refused",
        {"body": requests.exceptions.ConnectionError("Connection refused")},
        ProviderTemporaryError,
        ("could not reach",),
    ),
]


class ProviderHTTPCases:
    """The shared cases; a subclass sets the class attributes and `provider`/`sms`."""

    # (method, URL) of the send call for `sms()`, and of the call `check()` makes.
    send_endpoint: ClassVar[tuple[str, str]]
    check_endpoint: ClassVar[tuple[str, str]]
    # The provider's own answers: its doc's error examples and the choices where it is silent.
    send_errors: ClassVar[list[Answer]] = []
    check_errors: ClassVar[list[Answer]] = []
    # Credential values that must never show in an error message.
    secrets: ClassVar[tuple[str, ...]] = ()

    def provider(self) -> BaseProvider:
        raise NotImplementedError

    def sms(self) -> OutboundSMS:
        raise NotImplementedError

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        tables = {
            "common_send": COMMON_SEND,
            "doc_send": self.send_errors,
            "common_check": COMMON_CHECK,
            "doc_check": self.check_errors,
        }
        for name, answers in tables.items():
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, [answer.param() for answer in answers])

    # --- the cases ------------------------------------------------------------------------------
    def test_common_send_answers(self, common_send: Answer) -> None:
        self.assert_means(common_send, self.send_endpoint, lambda: self.provider().send(self.sms()))

    def test_documented_send_answers(self, doc_send: Answer) -> None:
        self.assert_means(doc_send, self.send_endpoint, lambda: self.provider().send(self.sms()))

    def test_common_check_answers(self, common_check: Answer) -> None:
        self.assert_means(common_check, self.check_endpoint, lambda: self.provider().check())

    def test_documented_check_answers(self, doc_check: Answer) -> None:
        self.assert_means(doc_check, self.check_endpoint, lambda: self.provider().check())

    def test_a_refused_account_fails_no_message_of_a_batch_and_calls_once(self) -> None:
        method, url = self.send_endpoint
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(method, url, status=401, body="Unauthorized")
            results = self.provider().send_many([self.sms(), self.sms(), self.sms()])
            assert len(rsps.calls) == 1
        assert all(isinstance(result, ProviderAccountError) for result in results)

    # --- helpers --------------------------------------------------------------------------------
    def assert_means(self, answer: Answer, endpoint: tuple[str, str], call) -> ProviderError:
        method, url = endpoint
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(method, url, **answer.mock)
            with pytest.raises(ProviderError) as caught:
                call()
        error = caught.value
        assert type(error) is answer.error, error.message
        assert error.error_class == answer.error.error_class
        assert error.retryable is (answer.error.error_class == ErrorClass.TEMPORARY)
        for word in answer.words:
            assert word in error.message
        for secret in self.secrets:
            assert secret not in error.message
        if answer.error is ProviderAccountError:  # the hold reason an administrator reads
            assert account_reason(self.provider(), error.message), error.message
        status = answer.mock.get("status")
        if status in (401, 403):
            name = self.provider().display_name
            assert error.message.startswith(f"credentials refused by {name} (HTTP {status}): ")
        if answer.error is ProviderThrottled:
            assert error.retry_after == 30.0
        return error


def account_reason(provider: BaseProvider, message: str) -> bool:
    """Whether `message` reads as a hold reason: who refused what, first."""
    name = provider.display_name
    return message.startswith((f"credentials refused by {name}", f"{name} refused the provider"))
