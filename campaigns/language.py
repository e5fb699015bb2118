"""The language of the staff pages: the user's own choice, else the browser's.

`UserLanguageMiddleware` is Django's LocaleMiddleware (Accept-Language, then the language
cookie) with one step more: a logged-in user's saved choice (`UserPreference.language`) wins.
The choice is read from the database once per session and kept in the session (a logout
forgets it; the next login reads it again). It only runs in the pages' MIDDLEWARE: the JSON API
and the webhooks stay English.
"""

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import gettext_noop

from .models import UserPreference

SESSION_KEY = "smshub_language"

# Dates say "3 decembrie 2026": Django's Romanian catalogue capitalises month names, which
# Romanian writes in lower case. The project's catalogue is searched first, so it corrects them.
MONTHS = (
    gettext_noop("January"),
    gettext_noop("February"),
    gettext_noop("March"),
    gettext_noop("April"),
    gettext_noop("May"),
    gettext_noop("June"),
    gettext_noop("July"),
    gettext_noop("August"),
    gettext_noop("September"),
    gettext_noop("October"),
    gettext_noop("November"),
    gettext_noop("December"),
)


def saved_language(user) -> str:
    """The user's saved language code, "" for the browser's."""
    preference = UserPreference.objects.filter(user=user).only("language").first()
    return preference.language if preference is not None else ""


def save_language(request: HttpRequest, code: str) -> None:
    """Save the user's choice ("" for the browser's) and apply it from the next request on."""
    UserPreference.objects.update_or_create(user=request.user, defaults={"language": code})
    request.session[SESSION_KEY] = code


def known(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


class UserLanguageMiddleware(LocaleMiddleware):
    """LocaleMiddleware, then the user's saved language. Goes after AuthenticationMiddleware."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return
        if SESSION_KEY not in request.session:
            request.session[SESSION_KEY] = saved_language(user)
        code = request.session[SESSION_KEY]
        if code and known(code):
            translation.activate(code)
            request.LANGUAGE_CODE = code

    def __call__(self, request: HttpRequest):
        try:
            return super().__call__(request)
        finally:
            # A thread serves pages and API calls in turn: the next API call must not find
            # this page's language still active (the machine paths have no LocaleMiddleware).
            translation.deactivate()
