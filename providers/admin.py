"""Provider accounts in the admin. Secret credentials are never shown in full, anywhere.

The form (`providers.forms`) asks for each provider kind's credentials as labelled fields, built
from its adapter's `credential_fields` and `options`; a small script
(`providers/static/providers/provider_form.js`) shows only the chosen kind's fields (without it,
every kind's fieldset shows, each saying which kind it is for, and only the chosen one is read).
An option's warning (SMSAdvert: messages sent together get no delivery report) is shown on the
page and after saving.

Health: the list and the page say when the provider last accepted something, its last error in
words (`providers.errors`), why the account is on hold, and its circuit breaker's state.
"""

import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timesince import timesince, timeuntil
from django.utils.timezone import localtime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import circuit, registry
from .errors import meaning
from .exceptions import ProviderError
from .forms import (
    DROP_OTHERS,
    ProviderAccountForm,
    credentials_of,
    fieldset_names,
    kind_descriptions,
    options_of,
    other_credentials,
    shown_value,
    webhook_field_names,
)
from .models import ProviderAccount, mask, new_webhook_token
from .options import WEBHOOK_AUTH

logger = logging.getLogger(__name__)

MODEL_FIELDS = frozenset(ProviderAccountForm.Meta.fields)

# Names Django derives from attribute and class names, translatable without a migration (a
# derived name is not part of the migration state; see campaigns.admin.translate_labels).
ProviderAccount._meta.verbose_name = _("provider account")
ProviderAccount._meta.verbose_name_plural = _("provider accounts")
for _field, _label in {
    "name": _("name"),
    "enabled": _("enabled"),
    "priority": _("priority"),
    "hold_reason": _("hold reason"),
    "last_error_code": _("last error code"),
    "last_error": _("last error"),
    "inbound_cursor": _("inbound cursor"),
    "created_at": _("created at"),
    "updated_at": _("updated at"),
}.items():
    ProviderAccount._meta.get_field(_field).verbose_name = _label


def option_warnings(account: ProviderAccount) -> list[str]:
    """What the account's options warn about (e.g. no delivery reports), in order."""
    credentials = account.credentials if isinstance(account.credentials, dict) else {}
    return [w for option in options_of(account.slug) for w in option.warnings(credentials)]


def ago(moment: datetime) -> str:
    """ "3 minutes ago", or "just now" within the minute."""
    if timezone.now() - moment < timedelta(minutes=1):
        return gettext("just now")
    return gettext("%(ago)s ago") % {"ago": timesince(moment)}


def when(moment: datetime) -> str:
    """A past moment in words: "3 minutes ago (03/12/2026 15:32)"."""
    return gettext("%(ago)s (%(at)s)") % {
        "ago": ago(moment),
        "at": date_format(localtime(moment), "SHORT_DATETIME_FORMAT"),
    }


def circuit_words(account: ProviderAccount) -> str:
    """The circuit breaker's state and until when, in words."""
    current = circuit.state(account.pk)
    if current == circuit.CLOSED:
        return gettext("Closed: messages are sent through it normally.")
    reopens = circuit.reopens_at(account.pk)
    at = datetime.fromtimestamp(reopens, tz=UTC) if reopens else None
    if current == circuit.OPEN and at is not None:
        return gettext(
            "Open until %(time)s (in %(left)s): after temporary errors in a row it is not "
            "called; then one message is let through as a probe."
        ) % {
            "time": time_format(localtime(at), "TIME_FORMAT"),
            "left": timeuntil(at) if at.timestamp() - time.time() >= 60 else _seconds(at),
        }
    return gettext(
        "Half-open: the next message is a probe; if the provider answers, the circuit closes."
    )


def _seconds(at: datetime) -> str:
    left = max(0, int(at.timestamp() - time.time()))
    return gettext("%(n)s s") % {"n": left}


class OnHoldFilter(admin.SimpleListFilter):
    title = _("on hold")
    parameter_name = "on_hold"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("yes", _("On hold")), ("no", _("Sending"))]

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
        "enabled",
        "priority",
        "health",
    ]
    list_filter = ["slug", "enabled", OnHoldFilter]
    search_fields = ["name", "base_url"]
    readonly_fields = [
        "hold",
        "last_success",
        "last_error_words",
        "circuit_state",
        "option_warnings",
        "credentials_summary",
        "other_settings",
        "dlr_webhook_url",
        "inbound_webhook_url",
        "created_at",
        "updated_at",
        "audit_trail",
    ]
    actions = ["test_connection", "release_hold", "rotate_webhook_token"]

    class Media:
        js = ["providers/provider_form.js"]
        css = {"all": ["providers/provider_form.css"]}

    HOLD_FIELDSET = (
        _("On hold"),
        {
            "fields": ["hold"],
            "description": _(
                "The provider refused this account itself: nothing is sent through it; its "
                "messages go through the next provider account of their route, or wait. Fix "
                "the cause, then save new credentials, run “Test connection” or “Release "
                "hold” from the list."
            ),
        },
    )
    HOLD_REASON_SHOWN = 300  # characters of the reason (the provider's words may run on)
    ERROR_SHOWN = 300

    # --- the page's layout --------------------------------------------------------------------
    def get_fieldsets(self, request: HttpRequest, obj: ProviderAccount | None = None):
        editable = obj is None or self.has_change_permission(request, obj)
        main = (None, {"fields": ["name", "slug", "base_url"]})
        sending = (
            _("Sending"),
            {"fields": ["enabled", "priority", "max_per_second", "max_in_flight"]},
        )
        if editable:
            credentials = self._credential_fieldsets(obj)
        else:  # a view-only page: the stored credentials as labelled, masked values
            fields = ["credentials_summary"]
            if obj is not None and option_warnings(obj):
                fields = ["option_warnings", *fields]
            credentials = [(_("Credentials"), {"fields": fields})]
        fieldsets = [main, *credentials, sending]
        if obj is None:  # no health, webhook URLs nor timestamps before the account exists
            return fieldsets
        health = (
            _("Health"),
            {"fields": ["last_success", "last_error_words", "circuit_state"]},
        )
        webhooks = (
            _("Webhooks"),
            {
                "fields": ["dlr_webhook_url", "inbound_webhook_url"]
                if editable
                else ["dlr_webhook_url_masked", "inbound_webhook_url_masked"],
                "description": _("Paste into the provider's console."),
            },
        )
        meta = (None, {"fields": ["created_at", "updated_at", "audit_trail"]})
        fieldsets = [health, *fieldsets, webhooks, meta]
        if obj.on_hold:  # first, where it is seen
            fieldsets = [self.HOLD_FIELDSET, *fieldsets]
        return fieldsets

    def _credential_fieldsets(self, obj: ProviderAccount | None) -> list:
        descriptions = kind_descriptions()
        fieldsets = []
        for slug, cls in registry.adapters().items():
            fields = fieldset_names(slug)  # every "clear" box: the page keeps the form's
            if obj is not None and slug == obj.slug and option_warnings(obj):
                fields = ["option_warnings", *fields]
            fieldsets.append(
                (
                    gettext("%(provider)s credentials") % {"provider": cls.display_name},
                    {
                        "fields": fields,
                        "classes": ["provider-kind", f"provider-kind-{slug}"],
                        "description": descriptions[slug],
                    },
                )
            )
        fieldsets.append(
            (
                _("Webhook basic auth (optional)"),
                {
                    "fields": webhook_field_names(),
                    "description": _(
                        "For every provider kind: require HTTP basic auth on the webhook URLs."
                    ),
                },
            )
        )
        if obj is not None and other_credentials(obj.slug, obj.credentials):
            fieldsets.append(
                (
                    _("Other stored settings"),
                    {
                        "fields": ["other_settings", DROP_OTHERS],
                        "description": _(
                            "Keys stored with the credentials that this provider kind does not "
                            "ask for: they are kept as they are."
                        ),
                    },
                )
            )
        return fieldsets

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        # A secret's "clear" box and "remove other settings" exist only when something is
        # stored: the page lists the fields the form has (the object may hold the values just
        # posted, the form what was stored).
        adminform = context.get("adminform")
        if adminform is not None:
            present = set(adminform.form.fields) | set(adminform.readonly_fields)
            adminform.fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f in present]})
                for name, options in adminform.fieldsets
            ]
        return super().render_change_form(request, context, *args, **kwargs)

    def get_form(self, request: HttpRequest, obj: ProviderAccount | None = None, **kwargs):
        # The credential fields are the form's own (added per provider kind): not model fields.
        fields = kwargs.get("fields")
        if fields is None:
            fields = [f for _name, o in self.get_fieldsets(request, obj) for f in o["fields"]]
        kwargs["fields"] = [name for name in fields if name in MODEL_FIELDS]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request: HttpRequest, obj: ProviderAccount, form, change: bool) -> None:
        # New credentials or a new address are the usual cure for a hold: try again with them.
        changed = getattr(form, "credentials_changed", False) or "base_url" in form.changed_data
        if change and obj.on_hold and changed:
            obj.held_since, obj.hold_reason = None, ""
            self.message_user(
                request,
                gettext("%(account)s: hold released, the new settings are used from now on.")
                % {"account": obj},
            )
        super().save_model(request, obj, form, change)
        for warning in option_warnings(obj):
            self.message_user(request, f"{obj}: {warning}", messages.WARNING)

    # --- health -------------------------------------------------------------------------------
    @admin.display(description=_("on hold"))
    def hold(self, obj: ProviderAccount) -> str:
        """Why nothing is sent through it, when the provider refused the account itself."""
        if obj.held_since is None:
            return "—"
        return format_html(
            "<strong>{}</strong> {}",
            gettext("On hold since %(at)s:")
            % {"at": date_format(localtime(obj.held_since), "DATETIME_FORMAT")},
            Truncator(obj.hold_reason).chars(self.HOLD_REASON_SHOWN),
        )

    @admin.display(description=_("on hold"))
    def short_hold(self, obj: ProviderAccount) -> str:
        """In the list: since when, and the start of the reason (the whole on its page)."""
        if obj.held_since is None:
            return "—"
        return format_html(
            '<strong>{}</strong> {}: <span title="{}">{}</span>',
            gettext("On hold"),
            gettext("since %(at)s")
            % {"at": date_format(localtime(obj.held_since), "SHORT_DATETIME_FORMAT")},
            obj.hold_reason,
            Truncator(obj.hold_reason).chars(60),
        )

    @admin.display(description=_("last success"))
    def last_success(self, obj: ProviderAccount) -> str:
        if obj.last_success_at is None:
            return gettext("None recorded yet.")
        return gettext("%(when)s: the provider accepted a message or passed a connection test.") % {
            "when": when(obj.last_success_at)
        }

    @admin.display(description=_("last success"), ordering="last_success_at")
    def short_last_success(self, obj: ProviderAccount) -> str:
        if obj.last_success_at is None:
            return "—"
        return format_html(
            '<span title="{}">{}</span>',
            date_format(localtime(obj.last_success_at), "DATETIME_FORMAT"),
            ago(obj.last_success_at),
        )

    @admin.display(description=_("last error"))
    def last_error_words(self, obj: ProviderAccount) -> str:
        if obj.last_error_at is None:
            return gettext("None recorded.")
        return format_html(
            "{}<br><strong>{}</strong><br>{}",
            when(obj.last_error_at),
            meaning(obj.last_error_code) or gettext("An error without a code."),
            Truncator(obj.last_error).chars(self.ERROR_SHOWN),
        )

    @admin.display(description=_("last error"), ordering="last_error_at")
    def short_last_error(self, obj: ProviderAccount) -> str:
        if obj.last_error_at is None:
            return "—"
        return format_html(
            '{}: <span title="{}">{}</span>',
            ago(obj.last_error_at),
            Truncator(obj.last_error).chars(self.ERROR_SHOWN),
            Truncator(meaning(obj.last_error_code) or obj.last_error).chars(60),
        )

    @admin.display(description=_("circuit"))
    def circuit_state(self, obj: ProviderAccount) -> str:
        """Closed: sending; open: not called until it reopens; half-open: one probe allowed."""
        if obj.pk is None:
            return "—"
        return circuit_words(obj)

    @admin.display(description=_("health"))
    def health(self, obj: ProviderAccount) -> str:
        """In the list, one line each: the state (on hold, circuit), last success, last error."""
        return format_html(
            '<div class="provider-health">{}<br>{} {}<br>{} {}</div>',
            self.short_state(obj),
            gettext("Last success:"),
            self.short_last_success(obj),
            gettext("Last error:"),
            self.short_last_error(obj),
        )

    @admin.display(description=_("state"))
    def short_state(self, obj: ProviderAccount) -> str:
        """In the list: on hold (since when, why), else the circuit's state."""
        if obj.held_since is not None:
            return self.short_hold(obj)
        return self.short_circuit(obj)

    @admin.display(description=_("circuit"))
    def short_circuit(self, obj: ProviderAccount) -> str:
        current = circuit.state(obj.pk)
        if current == circuit.OPEN:
            reopens = circuit.reopens_at(obj.pk)
            if reopens:
                at = datetime.fromtimestamp(reopens, tz=UTC)
                return gettext("circuit open until %(time)s") % {
                    "time": time_format(localtime(at), "TIME_FORMAT")
                }
        return {
            circuit.CLOSED: gettext("sending (circuit closed)"),
            circuit.HALF_OPEN: gettext("circuit half-open: probing"),
        }.get(current, current)

    # --- credentials shown, never in full -----------------------------------------------------
    @admin.display(description=_("warning"))
    def option_warnings(self, obj: ProviderAccount) -> str:
        """What the account's options mean for its messages, when it matters (no reports)."""
        warnings = option_warnings(obj)
        if not warnings:
            return "—"
        return format_html_join(
            "", "<p><strong>{}</strong> {}</p>", ((gettext("Warning:"), w) for w in warnings)
        )

    @admin.display(description=_("credentials"))
    def credentials_summary(self, obj: ProviderAccount) -> str:
        """The stored credentials by their labels, secrets masked, options by their choice."""
        credentials = obj.credentials if isinstance(obj.credentials, dict) else {}
        rows = []
        for credential in (*credentials_of(obj.slug), *WEBHOOK_AUTH):
            value = credentials.get(credential.key)
            if value in (None, ""):
                shown = "—"
            elif credential.secret or obj.is_secret_credential(credential.key):
                shown = mask(value)
            else:
                shown = str(value)
            rows.append((credential.label, shown))
        for option in options_of(obj.slug):
            choice = option.choice(credentials)
            label = (
                choice.label
                if choice
                else gettext("not understood: %(value)s")
                % {"value": repr(credentials.get(option.key))}
            )
            rows.append((f"{option.label} ({option.key})", label))
        rows += [
            (key, shown_value(key, value))
            for key, value in other_credentials(obj.slug, credentials).items()
        ]
        if not rows:
            return "—"
        return format_html(
            '<dl class="provider-credentials">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows),
        )

    @admin.display(description=_("other settings"))
    def other_settings(self, obj: ProviderAccount) -> str:
        others = other_credentials(obj.slug, obj.credentials)
        if not others:
            return "—"
        return format_html(
            '<dl class="provider-credentials">{}</dl>',
            format_html_join(
                "",
                "<dt>{}</dt><dd><code>{}</code></dd>",
                ((key, shown_value(key, value)) for key, value in others.items()),
            ),
        )

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # `?credentials__api_key__startswith=a` would let anyone who may view the list guess a
        # secret character by character.
        if lookup.split(LOOKUP_SEP)[0] in ("credentials", "webhook_token", "webhook_token_digest"):
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("audit trail"))
    def audit_trail(self, obj: ProviderAccount) -> str:
        """A link to the audit trail's entries for this account (when the audit app is on)."""
        try:
            url = reverse("admin:audit_auditentry_changelist")
        except NoReverseMatch:
            return "—"
        content_type = ContentType.objects.get_for_model(ProviderAccount)
        query = urlencode({"content_type__id__exact": content_type.pk, "object_id": obj.pk})
        return format_html(
            '<a href="{}?{}">{}</a>', url, query, gettext("Who changed what, and when")
        )

    def _webhook_url(self, obj: ProviderAccount, kind: str) -> str:
        if obj.pk is None:
            return gettext("Shown once the account is saved.")
        return format_html("<code>{}</code>", obj.webhook_url(kind))

    @admin.display(description=_("delivery reports URL"))
    def dlr_webhook_url(self, obj: ProviderAccount) -> str:
        return self._webhook_url(obj, "dlr")

    @admin.display(description=_("replies URL"))
    def inbound_webhook_url(self, obj: ProviderAccount) -> str:
        return self._webhook_url(obj, "inbound")

    @staticmethod
    def _masked_webhook_url(obj: ProviderAccount, kind: str) -> str:
        """The URL with its token cut to the first 4 characters: enough to tell which token is
        in use, not enough to call the webhook."""
        token = obj.webhook_token
        url = obj.webhook_url(kind).replace(f"/{token}/", f"/{token[:4]}…/")
        return format_html(
            "<code>{}</code> {}",
            url,
            gettext("(token hidden: only who may change provider accounts sees it)"),
        )

    @admin.display(description=_("delivery reports URL"))
    def dlr_webhook_url_masked(self, obj: ProviderAccount) -> str:
        return self._masked_webhook_url(obj, "dlr")

    @admin.display(description=_("replies URL"))
    def inbound_webhook_url_masked(self, obj: ProviderAccount) -> str:
        return self._masked_webhook_url(obj, "inbound")

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderAccount | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            readonly += ["dlr_webhook_url_masked", "inbound_webhook_url_masked"]
        return readonly

    # --- actions ------------------------------------------------------------------------------
    @admin.action(description=_("Release hold (the cause is fixed)"), permissions=["change"])
    def release_hold(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        released = [account for account in queryset if account.release_hold()]
        for account in released:
            self.log_change(request, account, "Released the hold.")
        if released:
            self.message_user(
                request,
                gettext(
                    "Hold released on %(accounts)s: messages go through again. Should the "
                    "provider refuse the account again, it is put back on hold."
                )
                % {"accounts": ", ".join(map(str, released))},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, gettext("None of them was on hold."), messages.INFO)

    @admin.action(description=_("Test connection"))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            try:
                result = account.adapter().check()
            except ProviderError as exc:
                account.note_answers([exc])
                self.message_user(request, f"{account}: {exc.message}", messages.ERROR)
            except ImproperlyConfigured as exc:
                self.message_user(request, f"{account}: {exc}", messages.ERROR)
            except Exception as exc:
                # The exception's text may carry a credential: it goes to the log only.
                logger.exception("connection test of provider account %s failed", account.pk)
                self.message_user(
                    request,
                    gettext("%(account)s: unexpected error (%(error)s), see the server log.")
                    % {"account": account, "error": exc.__class__.__name__},
                    messages.ERROR,
                )
            else:
                account.note_answers([None])
                if account.release_hold():
                    result = gettext("%(result)s. Hold released: messages go through it again.") % {
                        "result": result.rstrip(".")
                    }
                self.message_user(request, f"{account}: {result}", messages.SUCCESS)

    @admin.action(description=_("Rotate webhook token"), permissions=["change"])
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
            gettext(
                "New webhook token for %(accounts)s: the webhook URLs changed, paste the new "
                "ones into the provider's console (the old ones no longer work)."
            )
            % {"accounts": ", ".join(names)},
            messages.WARNING,
        )
