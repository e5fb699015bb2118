"""Errors an adapter raises. Whether to retry is a property of the error, not of the caller."""

from django.core.exceptions import SuspiciousOperation


class ProviderError(Exception):
    """Something went wrong talking to a provider. `code` and `raw` keep what the provider said."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", raw: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.raw = raw


class ProviderTemporaryError(ProviderError):
    """Network error, timeout or 5xx: worth trying again later, or elsewhere."""

    retryable = True


class ProviderThrottled(ProviderTemporaryError):
    """The provider answered 429: slow down. `retry_after` is in seconds when the provider says."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """The provider (or its rules, checked before any call) refuses this message: do not retry."""


class ProviderConfigurationError(ProviderError):
    """The provider account is misconfigured (missing credentials, bad base URL)."""


class WebhookValidationError(SuspiciousOperation):
    """A webhook body that cannot be understood: answered with 400, never a 500."""
