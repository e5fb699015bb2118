"""A provider account: one configured connection to one provider.

Its secrets are encrypted at rest (`smshub.crypto`): `credentials` (a dict to every caller) and
`webhook_token`. A webhook finds its account by `webhook_token_digest`, the token's SHA-256,
indexed; the decrypted token is then compared in constant time.

Webhooks come by the thousand: each web process remembers the accounts their tokens named
(`for_webhook`), and the INSERT that stores a request checks, in the same statement, that the
account is still as remembered (`webhook_log.store`: same token, enabled, same `updated_at`,
which every save writes). A rotated token, a disabled or deleted account, new basic-auth
credentials are therefore refused at the very next request, without asking the cache or the
database anything more.
"""

import base64
import binascii
import copy
import functools
import hmac
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from smshub.crypto import EncryptedJSONField, EncryptedTextField, digest
from smshub.memory import copy_row

from . import registry
from .base import BaseProvider
from .exceptions import ErrorClass, ProviderError

# Optional HTTP basic auth that providers must send with their webhooks, kept with the credentials.
WEBHOOK_USERNAME, WEBHOOK_PASSWORD = "webhook_username", "webhook_password"

# Accounts remembered by a web process for webhooks, (slug, token digest) -> (account, since):
# at most this many, each for at most this long (seconds).
REMEMBER_AT_MOST, REMEMBERED_FOR = 1_000, 60.0
_remembered: dict[tuple[str, str], tuple["ProviderAccount", float]] = {}


def new_webhook_token() -> str:
    return secrets.token_urlsafe(32)


def mask(value: Any) -> str:
    """A secret as it may be shown: never in full (the last 4 characters of a long one)."""
    text = str(value)
    if len(text) >= 12:
        return "•" * 8 + text[-4:]
    return "•" * 8


class ProviderAccount(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.CharField(
        _("provider"),
        max_length=40,
        choices=registry.choices,
        help_text=_("Which provider this is."),
    )
    base_url = models.URLField(_("base URL"), max_length=300)
    credentials = EncryptedJSONField(default=dict, blank=True)
    webhook_token = EncryptedTextField(default=new_webhook_token, editable=False)
    # SHA-256 of the token, for the webhook's lookup; kept in step by save() (not by update()).
    webhook_token_digest = models.CharField(max_length=64, unique=True, editable=False)
    enabled = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text=_("Lower goes first when several accounts can send.")
    )
    max_per_second = models.PositiveIntegerField(
        _("max messages per second"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    max_in_flight = models.PositiveIntegerField(
        _("calls in flight at most"),
        null=True,
        blank=True,
        help_text=_(
            "Messages sent through it at the same moment, by all workers together (providers "
            "cap concurrent connections). Empty: no limit."
        ),
    )
    # Set when the provider refused the provider account itself (credentials refused, account
    # suspended, misconfigured): nothing is sent through it until the hold is released in admin.
    held_since = models.DateTimeField(_("on hold since"), null=True, blank=True, editable=False)
    hold_reason = models.TextField(
        blank=True,
        editable=False,
        help_text=_("Why the provider account is on hold, in the provider's words."),
    )
    # Health, as admin shows it (`note_answers`): the provider's last success and last error.
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True, editable=False)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True, editable=False)
    last_error_code = models.CharField(max_length=50, blank=True, editable=False)
    last_error = models.TextField(
        blank=True,
        editable=False,
        help_text=_("The last connection or provider account error, in the provider's words."),
    )
    inbound_cursor = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text=_("Where polling for replies stopped (providers whose replies are polled)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        """Saves the token's digest with the token and, whatever is saved, `updated_at`: a web
        process that remembers this account for webhooks sees by it that it changed."""
        self.webhook_token_digest = digest(self.webhook_token)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            extra = {"updated_at"} | (
                {"webhook_token_digest"} if "webhook_token" in update_fields else set()
            )
            kwargs["update_fields"] = {*update_fields, *extra}
        super().save(*args, **kwargs)

    @classmethod
    def for_webhook(
        cls, slug: str, token: str, remembered: bool = False
    ) -> "ProviderAccount | None":
        """The enabled account a webhook URL names, or None.

        `remembered`: answered from this process's memory when the account was looked up there
        less than `REMEMBERED_FOR` ago, as a copy (one request's changes to it never reach
        another's); whoever uses it must check that it is still current (`still_current`), as
        storing a webhook request does. Otherwise the database is asked, and the account found
        is remembered. Unknown tokens never are.
        """
        key = (slug, digest(token))
        item = _remembered.get(key) if remembered else None
        if item is not None and time.monotonic() - item[1] < REMEMBERED_FOR:
            return _copy(item[0])
        account = cls.objects.filter(slug=slug, webhook_token_digest=key[1], enabled=True).first()
        if account is None or not hmac.compare_digest(
            account.webhook_token.encode(), token.encode()
        ):
            return None
        if len(_remembered) >= REMEMBER_AT_MOST:
            _remembered.clear()
        _remembered[key] = (account, time.monotonic())
        return _copy(account)

    def still_current(self, connection: BaseDatabaseWrapper) -> tuple[str, tuple]:
        """SQL for `connection`, and its parameters, true while this account's row is as it was
        read: same token, still enabled, not saved since (`updated_at`, which every save
        writes)."""
        sql, fields = _current_check(connection.alias)
        return sql, _current_values(
            connection.alias, tuple(getattr(self, field.attname) for field in fields)
        )

    @property
    def on_hold(self) -> bool:
        return self.held_since is not None

    def release_hold(self) -> bool:
        """Send through this provider account again (the cause of its hold is fixed). False when
        it was not on hold. The dispatcher puts it on hold (`campaigns.services.holds`)."""
        if self.held_since is None:
            return False
        self.held_since, self.hold_reason = None, ""
        self.save(update_fields=["held_since", "hold_reason", "updated_at"])
        return True

    def note_answers(self, errors: list[ProviderError | None], at: datetime | None = None) -> None:
        """Keep the provider's last success and last error (its health in admin) after calls
        through this account: `errors` in call order, None for a call the provider accepted.

        Only errors of the connection or of the account count (temporary, account problems): a
        refusal of one message (a bad number) is that message's. One UPDATE at most, none when
        this instance says the same was noted less than `HEALTH_EVERY` ago (the hot path calls
        it once per batch). Secrets the provider's words echo are masked.
        """
        at = at or timezone.now()
        fields: dict[str, Any] = {}
        if any(error is None for error in errors) and _due(self.last_success_at, at):
            fields["last_success_at"] = at
        problems = [e for e in errors if e is not None and e.error_class != ErrorClass.REJECTED]
        if problems and _due(self.last_error_at, at):
            error = problems[-1]
            fields.update(
                last_error_at=at,
                last_error_code=str(error.code or "")[:50],
                last_error=self.without_secrets(error.message)[:2000],
            )
        if fields:
            type(self).objects.filter(pk=self.pk).update(**fields)
            for name, value in fields.items():
                setattr(self, name, value)

    def without_secrets(self, text: str) -> str:
        """`text` with any secret credential it holds masked."""
        for key, value in (self.credentials or {}).items():
            if self.is_secret_credential(key) and len(str(value)) >= 4:
                text = text.replace(str(value), mask(value))
        return text

    @property
    def adapter_class(self) -> type[BaseProvider]:
        return registry.get_adapter_class(self.slug)

    def adapter(self) -> BaseProvider:
        return self.adapter_class(base_url=self.base_url, credentials=self.credentials)

    def webhook_url(self, kind: str) -> str:
        """The absolute URL to give the provider: delivery reports ("dlr"), replies ("inbound").
        Kept on the object for its slug and token: the dispatcher asks once per message, and
        `reverse` cost a tenth of a sent message's CPU."""
        key = (kind, self.slug, self.webhook_token, settings.PUBLIC_BASE_URL)
        urls = self.__dict__.setdefault("_webhook_urls", {})
        if (url := urls.get(key)) is None:
            path = reverse(
                "webhook", kwargs={"slug": self.slug, "token": self.webhook_token, "kind": kind}
            )
            url = urls[key] = f"{settings.PUBLIC_BASE_URL}{path}"
        return url

    def is_secret_credential(self, key: str) -> bool:
        """Whether that credential is a secret (every one, for an unknown provider kind)."""
        if self.slug not in registry.adapters():
            return True
        return key in self.adapter_class.secret_credentials | {WEBHOOK_PASSWORD}

    def masked_credentials(self) -> dict[str, Any]:
        return {
            key: mask(value) if self.is_secret_credential(key) else value
            for key, value in (self.credentials or {}).items()
        }

    def webhook_auth_ok(self, authorization: str) -> bool:
        """Whether an `Authorization` header satisfies this account's webhook basic auth.

        Accounts without `webhook_username` in their credentials need none. Constant-time.
        """
        username = str(self.credentials.get(WEBHOOK_USERNAME) or "")
        if not username:
            return True
        password = str(self.credentials.get(WEBHOOK_PASSWORD) or "")
        scheme, _, encoded = authorization.partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{username}:{password}".encode()
        return scheme.lower() == "basic" and hmac.compare_digest(given, expected)

    def clean(self) -> None:
        if urlsplit(self.base_url or "").username is not None:
            raise ValidationError(
                {
                    "base_url": gettext(
                        "Put user names and passwords in the credentials, not in the URL."
                    )
                }
            )
        if not isinstance(self.credentials, dict):
            raise ValidationError({"credentials": gettext("Credentials must be a JSON object.")})
        if self.slug in registry.adapters():
            missing = self.adapter_class.missing_credentials(self.credentials)
            if missing:
                needs = gettext("%(provider)s needs: %(keys)s.") % {
                    "provider": self.adapter_class.display_name,
                    "keys": ", ".join(missing),
                }
                raise ValidationError({"credentials": needs})


# How often an account's health is written at most (see `note_answers`).
HEALTH_EVERY = timedelta(seconds=5)


def _due(noted: datetime | None, at: datetime) -> bool:
    return noted is None or not timedelta(0) <= at - noted < HEALTH_EVERY


@functools.cache
def _current_check(alias: str) -> tuple[str, tuple[models.Field, ...]]:
    meta, quote = ProviderAccount._meta, connections[alias].ops.quote_name
    names = ("id", "webhook_token_digest", "enabled", "updated_at")
    fields = tuple(meta.get_field(name) for name in names)
    where = " AND ".join(f"{quote(field.column)} = %s" for field in fields)
    table = quote(meta.db_table)
    return f"EXISTS (SELECT 1 FROM {table} WHERE {where})", fields  # noqa: S608 (names only)


@functools.lru_cache(maxsize=1024)
def _current_values(alias: str, values: tuple) -> tuple:
    """`_current_check`'s parameters for an account's `values` of its fields, as the database
    takes them: worked out once per account state, not for every webhook request."""
    _, fields = _current_check(alias)
    db = connections[alias]
    return tuple(
        field.get_db_prep_value(value, db) for field, value in zip(fields, values, strict=True)
    )


# Values a copied dict may share with its original: nothing in them can change.
_IMMUTABLE = (str, int, float, bool, type(None))


def _copy(account: ProviderAccount) -> ProviderAccount:
    """A copy of `account` that one request may change without another seeing it: its own
    state and credentials."""
    mine = copy_row(account)
    credentials = account.credentials
    flat = all(isinstance(value, _IMMUTABLE) for value in credentials.values())
    mine.credentials = dict(credentials) if flat else copy.deepcopy(credentials)
    return mine


def forget() -> None:
    """Forget every account remembered for webhooks (tests)."""
    _remembered.clear()
