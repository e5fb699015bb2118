"""Provider accounts in the admin. Secret credentials are never shown in full, anywhere.

A provider whose adapter lists `options` (`providers.options`: SMSAdvert's sendAsShort, failover
and multi-recipient calls) has them edited as labelled choices on its account's page rather than
as raw JSON keys, and a choice's warning (SMSAdvert: messages sent together get no delivery
report) is shown on the page and after saving.
"""

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timezone import localtime

from . import circuit, registry
from .exceptions import ProviderError
from .models import ProviderAccount, mask, new_webhook_token
from .options import Option

logger = logging.getLogger(__name__)

MASK_PREFIX = mask("")  # what every masked value starts with


class CredentialsField(forms.JSONField):
    """A JSON textarea, pretty-printed."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


OPTION_PREFIX = "option__"  # form fields of the options: "option__<credential key>"


def options_of(slug: str) -> tuple[Option, ...]:
    """The labelled options of a provider kind (none for an unknown one); never a secret."""
    cls = registry.adapters().get(slug)
    if cls is None:
        return ()
    return tuple(option for option in cls.options if option.key not in cls.secret_credentials)


def option_warnings(account: ProviderAccount) -> list[str]:
    """What the account's options warn about (e.g. no delivery reports), in order."""
    credentials = account.credentials if isinstance(account.credentials, dict) else {}
    return [w for option in options_of(account.slug) for w in option.warnings(credentials)]


def credential_keys_by_provider() -> list[tuple[str, str]]:
    """(provider name, what its credentials hold) for every registered provider kind."""
    rows = []
    for cls in registry.adapters().values():
        default = "keys " + ", ".join(cls.required_credentials) if cls.required_credentials else ""
        rows.append((cls.display_name, cls.credentials_help or default))
    return rows


class ProviderAccountForm(forms.ModelForm):
    """Shows `masked_credentials()`; a masked value sent back unchanged keeps the stored secret."""

    credentials = CredentialsField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "spellcheck": "false"}),
        help_text=(
            "A JSON object. Secrets are shown masked: leave a masked value as it is to keep the "
            "stored secret, type a new value to replace it, remove the key to delete it."
        ),
    )

    class Meta:
        model = ProviderAccount
        fields = [
            "name",
            "slug",
            "base_url",
            "credentials",
            "enabled",
            "priority",
            "max_per_second",
            "max_in_flight",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Taken before the form touches the instance: what is stored, and what the user was shown.
        self.stored_credentials = dict(self.instance.credentials or {})
        self.shown_credentials = self.instance.masked_credentials()
        # An existing account's options are edited as labelled choices, not in the JSON.
        self.options = options_of(self.instance.slug) if self.instance.pk else ()
        self.initial["credentials"] = {
            key: value
            for key, value in self.shown_credentials.items()
            if key not in {option.key for option in self.options}
        }
        self.fields["credentials"].help_text = format_html(
            "{}<ul>{}</ul>",
            self.fields["credentials"].help_text,
            format_html_join("", "<li><b>{}</b>: {}</li>", credential_keys_by_provider()),
        )
        for option in self.options:
            self.fields[OPTION_PREFIX + option.key] = self._option_field(option)

    def _option_field(self, option: Option) -> forms.ChoiceField:
        current = option.choice(self.stored_credentials)
        # Admin shows help texts as HTML: everything in it is escaped (a stored value may be any).
        help_text = format_html("{}", option.help)
        if current is None:  # a stored value no choice means: say so, and ask for a choice
            help_text = format_html(
                "{} The stored value {} of “{}” is not understood: choose one.",
                option.help,
                repr(self.stored_credentials[option.key]),
                option.key,
            )
        return forms.ChoiceField(
            label=f"{option.label} ({option.key})",
            choices=[(str(i), choice.label) for i, choice in enumerate(option.choices)],
            initial=None if current is None else str(option.choices.index(current)),
            widget=forms.RadioSelect,
            help_text=help_text,
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        credentials = cleaned.get("credentials")
        # Options belong to the provider they were shown for: not applied if the slug changed.
        if not self.options or credentials is None or cleaned.get("slug") != self.instance.slug:
            return cleaned
        credentials = dict(credentials)
        for option in self.options:
            token = cleaned.get(OPTION_PREFIX + option.key)
            if option.key in credentials:
                self.add_error(
                    "credentials",
                    f"“{option.key}” is set with its choice below the credentials: remove it "
                    "from the JSON.",
                )
            if token is None:
                continue
            choice = option.choices[int(token)]
            if choice.value is None:
                credentials.pop(option.key, None)
            else:
                credentials[option.key] = choice.value
        cleaned["credentials"] = credentials
        return cleaned

    def clean_credentials(self) -> dict[str, Any]:
        submitted = self.cleaned_data.get("credentials")
        if submitted is None:
            return {}
        if not isinstance(submitted, dict):
            raise ValidationError("Credentials must be a JSON object.")
        merged = {}
        for key, value in submitted.items():
            if key in self.stored_credentials and value == self.shown_credentials.get(key):
                merged[key] = self.stored_credentials[key]  # unchanged: keep the stored secret
            elif isinstance(value, str) and value.startswith(MASK_PREFIX):
                raise ValidationError(
                    "“%(key)s” holds a masked value that matches no stored secret: "
                    "type the full value.",
                    params={"key": key},
                )
            else:
                merged[key] = value
        return merged


class OnHoldFilter(admin.SimpleListFilter):
    title = "on hold"
    parameter_name = "on_hold"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("yes", "On hold"), ("no", "Sending")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]):
        if self.value() in ("yes", "no"):
            return queryset.filter(held_since__isnull=self.value() == "no")
        return queryset


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = [
        "name",
        "slug",
        "base_url",
        "enabled",
        "priority",
        "max_per_second",
        "short_hold",
        "circuit_state",
        "updated_at",
    ]
    list_filter = ["slug", "enabled", OnHoldFilter]
    search_fields = ["name", "base_url"]
    readonly_fields = [
        "hold",
        "option_warnings",
        "options_summary",
        "circuit_state",
        "dlr_webhook_url",
        "inbound_webhook_url",
        "created_at",
        "updated_at",
        "audit_trail",
    ]

    @admin.display(description="circuit")
    def circuit_state(self, obj: ProviderAccount) -> str:
        """Closed: sending; open: not called until it reopens; half-open: one probe allowed."""
        if obj.pk is None:
            return "—"
        current = circuit.state(obj.pk)
        if current == circuit.OPEN:
            seconds = max(0, int(circuit.reopens_at(obj.pk) - time.time()))
            return f"open (probe in {seconds} s)"
        return current

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "slug",
                    "base_url",
                    "credentials",
                    "enabled",
                    "priority",
                    "max_per_second",
                    "max_in_flight",
                ]
            },
        ),
        (
            "Webhooks",
            {
                "fields": ["dlr_webhook_url", "inbound_webhook_url"],
                "description": "Paste into the provider's console.",
            },
        ),
        (None, {"fields": ["circuit_state", "created_at", "updated_at", "audit_trail"]}),
    ]
    HOLD_FIELDSET = (
        "On hold",
        {
            "fields": ["hold"],
            "description": "The provider refused this account itself: nothing is sent through "
            "it; its messages go through the next provider account of their route, or wait. "
            "Fix the cause, then save new credentials, run “Test connection” or “Release hold” "
            "from the list.",
        },
    )
    actions = ["test_connection", "release_hold", "rotate_webhook_token"]

    @admin.display(description="on hold")
    def hold(self, obj: ProviderAccount) -> str:
        """Why nothing is sent through it, when the provider refused the account itself."""
        if obj.held_since is None:
            return "—"
        return format_html(
            "<strong>On hold since {}:</strong> {}",
            date_format(localtime(obj.held_since), "DATETIME_FORMAT"),
            Truncator(obj.hold_reason).chars(self.HOLD_REASON_SHOWN),
        )

    HOLD_REASON_SHOWN = 300  # characters of the reason (the provider's words may run on)

    @admin.display(description="on hold")
    def short_hold(self, obj: ProviderAccount) -> str:
        """In the list: since when, and the start of the reason (the whole on its page)."""
        if obj.held_since is None:
            return "—"
        return format_html(
            '<strong>On hold</strong> since {}: <span title="{}">{}</span>',
            date_format(localtime(obj.held_since), "SHORT_DATETIME_FORMAT"),
            obj.hold_reason,
            Truncator(obj.hold_reason).chars(60),
        )

    def save_model(self, request: HttpRequest, obj: ProviderAccount, form, change: bool) -> None:
        # New credentials or a new address are the usual cure for a hold: try again with them.
        if change and obj.on_hold and {"credentials", "base_url"} & set(form.changed_data):
            obj.held_since, obj.hold_reason = None, ""
            self.message_user(
                request, f"{obj}: hold released, the new settings are used from now on."
            )
        super().save_model(request, obj, form, change)
        for warning in option_warnings(obj):
            self.message_user(request, f"{obj}: {warning}", messages.WARNING)

    OPTIONS_DESCRIPTION = (
        "Settings of this provider's credentials that are not secrets, as labelled choices "
        "(they are kept with the credentials, under the key in brackets)."
    )

    @admin.display(description="warning")
    def option_warnings(self, obj: ProviderAccount) -> str:
        """What the account's options mean for its messages, when it matters (no reports)."""
        warnings = option_warnings(obj)
        if not warnings:
            return "—"
        return format_html_join("", "<p><strong>Warning:</strong> {}</p>", ((w,) for w in warnings))

    @admin.display(description="options")
    def options_summary(self, obj: ProviderAccount) -> str:
        """The options as their labels (the view-only page: the choices are not editable)."""
        credentials = obj.credentials if isinstance(obj.credentials, dict) else {}
        rows = []
        for option in options_of(obj.slug):
            choice = option.choice(credentials)
            label = choice.label if choice else f"not understood: {credentials.get(option.key)!r}"
            rows.append((option.label, option.key, label))
        return format_html_join("", "<p><b>{}</b> ({}): {}</p>", rows) if rows else "—"

    def get_form(self, request: HttpRequest, obj: ProviderAccount | None = None, **kwargs):
        # The option fields are the form's own (added per provider): not model fields.
        fields = kwargs.get("fields")
        if fields is None:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in fields if not name.startswith(OPTION_PREFIX)]
        return super().get_form(request, obj, **kwargs)

    @admin.action(description="Release hold (the cause is fixed)", permissions=["change"])
    def release_hold(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        released = [account for account in queryset if account.release_hold()]
        for account in released:
            self.log_change(request, account, "Released the hold.")
        if released:
            self.message_user(
                request,
                f"Hold released on {', '.join(map(str, released))}: messages go through again. "
                "Should the provider refuse the account again, it is put back on hold.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "None of them was on hold.", messages.INFO)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # `?credentials__api_key__startswith=a` would let anyone who may view the list guess a
        # secret character by character.
        if lookup.split(LOOKUP_SEP)[0] in ("credentials", "webhook_token", "webhook_token_digest"):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fieldsets(self, request: HttpRequest, obj: ProviderAccount | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # no webhook URLs nor timestamps before the account exists
            return fieldsets[:1]
        options = options_of(obj.slug)
        if options:  # after the credentials they belong to
            editable = self.has_change_permission(request, obj)
            fields = [OPTION_PREFIX + o.key for o in options] if editable else ["options_summary"]
            if option_warnings(obj):
                fields = ["option_warnings", *fields]
            options_fieldset = (
                "Options",
                {"fields": fields, "description": self.OPTIONS_DESCRIPTION},
            )
            fieldsets = [fieldsets[0], options_fieldset, *fieldsets[1:]]
        if obj.on_hold:  # first, where it is seen
            fieldsets = [self.HOLD_FIELDSET, *fieldsets]
        if not self.has_change_permission(request, obj):
            # A view-only page would render the model field itself, in full: show the masked one.
            fieldsets = [
                (name, {**options, "fields": [self._view_only(f) for f in options["fields"]]})
                for name, options in fieldsets
            ]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderAccount | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            readonly += self.VIEW_ONLY_FIELDS.values()
        return readonly

    # A view-only page shows these instead: the webhook token is as much a secret as a password.
    VIEW_ONLY_FIELDS = {
        "credentials": "credentials_masked",
        "dlr_webhook_url": "dlr_webhook_url_masked",
        "inbound_webhook_url": "inbound_webhook_url_masked",
    }

    @classmethod
    def _view_only(cls, field: str) -> str:
        return cls.VIEW_ONLY_FIELDS.get(field, field)

    @admin.display(description="audit trail")
    def audit_trail(self, obj: ProviderAccount) -> str:
        """A link to the audit trail's entries for this account (when the audit app is on)."""
        try:
            url = reverse("admin:audit_auditentry_changelist")
        except NoReverseMatch:
            return "—"
        content_type = ContentType.objects.get_for_model(ProviderAccount)
        query = urlencode({"content_type__id__exact": content_type.pk, "object_id": obj.pk})
        return format_html('<a href="{}?{}">Who changed what, and when</a>', url, query)

    @admin.display(description="credentials")
    def credentials_masked(self, obj: ProviderAccount) -> str:
        return json.dumps(obj.masked_credentials(), ensure_ascii=False, indent=2)

    def _webhook_url(self, obj: ProviderAccount, kind: str) -> str:
        if obj.pk is None:
            return "Shown once the account is saved."
        return format_html("<code>{}</code>", obj.webhook_url(kind))

    @admin.display(description="delivery reports URL")
    def dlr_webhook_url(self, obj: ProviderAccount) -> str:
        return self._webhook_url(obj, "dlr")

    @admin.display(description="replies URL")
    def inbound_webhook_url(self, obj: ProviderAccount) -> str:
        return self._webhook_url(obj, "inbound")

    @staticmethod
    def _masked_webhook_url(obj: ProviderAccount, kind: str) -> str:
        """The URL with its token cut to the first 4 characters: enough to tell which token is
        in use, not enough to call the webhook."""
        token = obj.webhook_token
        url = obj.webhook_url(kind).replace(f"/{token}/", f"/{token[:4]}…/")
        return format_html(
            "<code>{}</code> (token hidden: only who may change provider accounts sees it)", url
        )

    @admin.display(description="delivery reports URL")
    def dlr_webhook_url_masked(self, obj: ProviderAccount) -> str:
        return self._masked_webhook_url(obj, "dlr")

    @admin.display(description="replies URL")
    def inbound_webhook_url_masked(self, obj: ProviderAccount) -> str:
        return self._masked_webhook_url(obj, "inbound")

    @admin.action(description="Test connection")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            try:
                result = account.adapter().check()
            except ProviderError as exc:
                self.message_user(request, f"{account}: {exc.message}", messages.ERROR)
            except ImproperlyConfigured as exc:
                self.message_user(request, f"{account}: {exc}", messages.ERROR)
            except Exception as exc:
                # The exception's text may carry a credential: it goes to the log only.
                logger.exception("connection test of provider account %s failed", account.pk)
                self.message_user(
                    request,
                    f"{account}: unexpected error ({exc.__class__.__name__}), see the server log.",
                    messages.ERROR,
                )
            else:
                if account.release_hold():
                    result = f"{result.rstrip('.')}. Hold released: messages go through it again."
                self.message_user(request, f"{account}: {result}", messages.SUCCESS)

    @admin.action(description="Rotate webhook token", permissions=["change"])
    def rotate_webhook_token(
        self, request: HttpRequest, queryset: QuerySet[ProviderAccount]
    ) -> None:
        names = []
        for account in queryset:
            account.webhook_token = new_webhook_token()
            account.save(update_fields=["webhook_token", "updated_at"])
            self.log_change(request, account, "Rotated the webhook token.")
            names.append(str(account))
        self.message_user(
            request,
            f"New webhook token for {', '.join(names)}: the webhook URLs changed, paste the new "
            "ones into the provider's console (the old ones no longer work).",
            messages.WARNING,
        )
