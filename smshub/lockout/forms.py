"""The login forms of /login/ and /admin/login/, with the lock-out (see `locks`)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from . import locks


class LockoutMixin:
    """Counts the attempt before Django's `clean` checks the password, and refuses it while the
    user name or the address is locked: the lock-out's message replaces Django's error."""

    @sensitive_variables("password")
    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:  # no attempt: Django says what is missing
            return super().clean()
        try:
            attempt = locks.begin(self.request, username)
        except locks.Locked as locked:
            raise ValidationError(locked.message, code="locked") from None
        try:
            cleaned = super().clean()
        except ValidationError:
            if self.user_cache is not None:  # the right password, but not allowed here
                locks.succeeded(attempt)
            elif lock := locks.failed(attempt):
                raise ValidationError(locks.message(lock), code="locked") from None
            raise
        locks.succeeded(attempt)
        return cleaned


class LockoutAuthenticationForm(LockoutMixin, AuthenticationForm):
    pass


class LockoutAdminAuthenticationForm(LockoutMixin, AdminAuthenticationForm):
    pass
