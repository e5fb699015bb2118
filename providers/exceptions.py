"""Errors an adapter raises. What the error means for dispatch is a property of the error.

Three classes (`ErrorClass`): temporary (try again later, or elsewhere), rejected (the provider
refuses this message: it fails with the reason) and account (the provider refuses the provider
account itself: credentials, standing, configuration; it is put on hold, its messages wait or
fail over, none fails for it). Each adapter's `errors` table maps its documented errors to them.
"""

from enum import StrEnum

from django.core.exceptions import SuspiciousOperation


class ErrorClass(StrEnum):
    TEMPORARY = "temporary"
    REJECTED = "rejected"
    ACCOUNT = "account"


class ProviderError(Exception):
    """Something went wrong talking to a provider. `code` and `raw` keep what the provider said."""

    retryable = False
    error_class = ErrorClass.REJECTED

    def __init__(self, message: str, *, code: str = "", raw: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.raw = raw


class ProviderTemporaryError(ProviderError):
    """Network error, timeout or 5xx: worth trying again later, or elsewhere."""

    retryable = True
    error_class = ErrorClass.TEMPORARY


class ProviderThrottled(ProviderTemporaryError):
    """The provider answered 429: slow down. `retry_after` is in seconds when the provider says."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """The provider (or its rules, checked before any call) refuses this message: do not retry."""


class ProviderAccountError(ProviderError):
    """The provider refuses the provider account, not the message: credentials refused (401,
    403, a bad signature, a revoked key), the account suspended or out of credit. No message can
    go through it until someone acts: the dispatcher puts it on hold with this reason."""

    error_class = ErrorClass.ACCOUNT


class ProviderConfigurationError(ProviderAccountError):
    """The provider account is misconfigured (missing credentials, bad base URL)."""


ERRORS_BY_CLASS: dict[ErrorClass, type[ProviderError]] = {
    ErrorClass.TEMPORARY: ProviderTemporaryError,
    ErrorClass.REJECTED: ProviderRejected,
    ErrorClass.ACCOUNT: ProviderAccountError,
}


def provider_error(
    error_class: ErrorClass, message: str, *, code: str = "", raw: object = None
) -> ProviderError:
    """The exception of `error_class`, carrying the provider's words."""
    return ERRORS_BY_CLASS[error_class](message, code=code, raw=raw)


def reason(
    error_class: ErrorClass,
    provider: str,
    detail: str,
    *,
    credentials: bool = False,
    what: str = "the message",
    status: int | None = None,
) -> str:
    """An error's message: who is at fault, then `detail` (the provider's own words). An account
    problem reads as the hold reason an administrator acts on: "credentials refused by X: …"
    (`credentials`) or "X refused the provider account: …"."""
    at = f" (HTTP {status})" if status else ""
    if error_class == ErrorClass.ACCOUNT:
        lead = (
            f"credentials refused by {provider}"
            if credentials
            else f"{provider} refused the provider account"
        )
    elif error_class == ErrorClass.TEMPORARY:
        lead = f"temporary error from {provider}"
    else:
        lead = f"{provider} refused {what}"
    return f"{lead}{at}: {detail}"


class WebhookValidationError(SuspiciousOperation):
    """A webhook body that cannot be understood: answered with 400, never a 500."""
