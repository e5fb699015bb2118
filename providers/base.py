"""The adapter contract. An adapter is pure: it speaks HTTP to its provider, never to the database.

`send` runs a fixed pipeline (`validate` → `build_request` → HTTP → `parse_send_response`); an
adapter fills in those hooks and, where its provider calls us back, the `parse_*` hooks.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from django.http import HttpRequest

from . import http
from .events import DeliveryReport, DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from .exceptions import (
    ErrorClass,
    ProviderConfigurationError,
    ProviderError,
    ProviderRejected,
    WebhookValidationError,
    provider_error,
    reason,
)
from .options import Credential, Option


@dataclass(frozen=True)
class ProviderRequest:
    """One HTTP call as an adapter wants it made."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: Any = None
    auth: tuple[str, str] | None = None


class BaseProvider:
    slug: ClassVar[str]
    display_name: ClassVar[str]
    # The provider's documented production base URL (a provider account may point elsewhere).
    default_base_url: ClassVar[str] = ""
    # One sentence for the admin: the credential keys and what each holds.
    credentials_help: ClassVar[str] = ""
    # Credential keys the provider account must have, and those that are secrets (masked in admin).
    required_credentials: ClassVar[tuple[str, ...]] = ()
    secret_credentials: ClassVar[frozenset[str]] = frozenset()
    # The provider's status words → ours.
    status_map: ClassVar[dict[str, DeliveryStatus]] = {}
    # What the provider's documented errors mean: its error codes and words (upper case) → class
    # (temporary, rejected for this message, account problem). One table per adapter, tested
    # against the doc; a word not listed is a refusal of the message (`error`).
    errors: ClassVar[dict[str, ErrorClass]] = {}
    # The account-problem words among them that mean the credentials were refused: their
    # message says "credentials refused by …" rather than "… refused the provider account".
    credential_errors: ClassVar[frozenset[str]] = frozenset()
    # HTTP error statuses the provider documents otherwise than `http.STATUS_CLASSES`.
    http_errors: ClassVar[dict[int, ErrorClass]] = {}
    # True when `send_many` puts many recipients in one call: the dispatcher then hands it a
    # provider account's whole batch instead of sending message by message.
    multi_recipient: ClassVar[bool] = False
    # Non-secret credentials that admin shows as labelled choices (see `providers.options`).
    options: ClassVar[tuple[Option, ...]] = ()
    # Every credential key admin asks for, as a labelled field (`providers.options.Credential`);
    # the options above are asked for after them. Keep `required_credentials` and
    # `secret_credentials` in step (tests/providers/test_admin_credentials.py checks).
    credential_fields: ClassVar[tuple[Credential, ...]] = ()
    # True when the provider's send answer gives no message id: its delivery reports are then
    # matched by the number they carry (`DeliveryReport.to_number`) to the oldest message of that
    # provider account still awaiting a report to it (`campaigns.services.delivery`).
    reports_match_by_number: ClassVar[bool] = False

    def __init__(self, *, base_url: str, credentials: dict[str, Any] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials or {}

    # --- sending ------------------------------------------------------------------------
    def send(self, sms: OutboundSMS) -> SendResult:
        return self.parse_send_response(self.call(self.prepare(sms)), sms)

    def prepare(self, sms: OutboundSMS) -> ProviderRequest:
        """The call that sends `sms`, once `validate` passed (the first half of `send`, for a
        caller that makes the call itself: `providers.transport`)."""
        self.validate(sms)
        return self.build_request(sms)

    def read_send(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        """What the answer to `prepare`'s call means (the second half of `send`): an error by
        the provider's status and words, as `call` would raise it, else the result."""
        http.raise_for_status(
            response, self.describe_error, self.http_errors, self.display_name, self.classify_error
        )
        return self.parse_send_response(response, sms)

    def sends_many(self) -> bool:
        """Whether this provider account hands `send_many` many recipients per call (then the
        dispatcher gives it a whole share of a batch at once)."""
        return self.multi_recipient

    def send_many(self, messages: list[OutboundSMS]) -> list[SendResult | Exception]:
        """Send several messages; providers that take many recipients per call override this.

        Returns one entry per message, in order: its SendResult, or the ProviderError it met.
        Once the provider refuses the account, the messages left get that error without a call.
        """
        results: list[SendResult | Exception] = []
        refused: ProviderError | None = None
        for sms in messages:
            if refused is not None:
                results.append(refused)
                continue
            try:
                results.append(self.send(sms))
            except ProviderError as exc:
                results.append(exc)
                if exc.error_class == ErrorClass.ACCOUNT:
                    refused = exc
        return results

    def call(self, call: ProviderRequest) -> requests.Response:
        """Make one HTTP call; errors are mapped by `providers.http` using `describe_error`."""
        return http.request(
            call.method,
            call.url,
            headers=call.headers,
            json=call.json,
            data=call.data,
            auth=call.auth,
            describe=self.describe_error,
            statuses=self.http_errors,
            provider=self.display_name,
            classify=self.classify_error,
        )

    def error_class(self, word: str, default: ErrorClass = ErrorClass.REJECTED) -> ErrorClass:
        """What one of the provider's error words means (`errors`); `default` when not listed."""
        return self.errors.get(word.strip().upper(), default)

    def error(
        self,
        word: str,
        detail: str,
        *,
        what: str = "the message",
        status: int | None = None,
        code: str | None = None,
        raw: object = None,
        default: ErrorClass = ErrorClass.REJECTED,
    ) -> ProviderError:
        """The exception for one of the provider's error words, classed by `errors`.

        Its message says who is at fault (`exceptions.reason`: "credentials refused by …",
        "… refused the provider account", "… refused the message", "temporary error from …"),
        then `detail`, the provider's own words; `code` defaults to the word.
        """
        error_class = self.error_class(word, default)
        message = reason(
            error_class,
            self.display_name,
            detail,
            credentials=word.strip().upper() in self.credential_errors,
            what=what,
            status=status,
        )
        return provider_error(error_class, message, code=word if code is None else code, raw=raw)

    def describe_error(self, response: requests.Response) -> str | None:
        """A clear sentence from the provider's error body, or None to keep the raw text."""
        return None

    def classify_error(self, response: requests.Response) -> ProviderError | None:
        """The error an HTTP error answer means by its body, when the body carries one of the
        provider's documented error words (`errors`); None lets the status decide."""
        return None

    def validate(self, sms: OutboundSMS) -> None:
        """Raise `ProviderRejected` for what the provider would refuse, before any network call."""
        if not sms.text:
            raise ProviderRejected("the message text is empty")

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        raise NotImplementedError

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        raise NotImplementedError

    def check(self) -> str:
        """Test the connection and credentials: a short description, or a ProviderError."""
        raise NotImplementedError

    # --- what the provider sends us -------------------------------------------------------
    def parse_delivery_reports(self, request: HttpRequest) -> list[DeliveryReport]:
        raise WebhookValidationError(f"{self.slug} does not send delivery reports to a webhook")

    def parse_inbound(self, request: HttpRequest) -> list[InboundSMS]:
        raise WebhookValidationError(f"{self.slug} does not send replies to a webhook")

    @classmethod
    def polls_inbound(cls) -> bool:
        """Whether replies must be fetched (`fetch_inbound`) rather than pushed to a webhook."""
        return cls.fetch_inbound is not BaseProvider.fetch_inbound

    def parse_queue_reports(self, body: bytes | str) -> list[DeliveryReport]:
        """Delivery reports read from a provider's message queue (Expertflow's STOMP queue)."""
        raise WebhookValidationError(f"{self.slug} publishes no delivery reports on a queue")

    def fetch_inbound(self, cursor: str = "") -> tuple[list[InboundSMS], str]:
        """Providers whose replies are polled: the replies after `cursor`, and the next cursor."""
        raise NotImplementedError(f"{self.slug} pushes its replies; nothing to poll")

    # --- helpers for adapters ---------------------------------------------------------------
    def credential(self, key: str) -> Any:
        try:
            return self.credentials[key]
        except KeyError:
            raise ProviderConfigurationError(
                f"the provider account has no '{key}' in its credentials", code="config"
            ) from None

    def map_status(self, word: str) -> DeliveryStatus:
        try:
            return self.status_map[word.strip().lower()]
        except KeyError:
            raise WebhookValidationError(f"unknown {self.slug} status {word!r}") from None

    @classmethod
    def missing_credentials(cls, credentials: dict[str, Any]) -> list[str]:
        return [key for key in cls.required_credentials if not credentials.get(key)]
