"""API keys in admin: created with the key shown once, revoked with an action; the key itself is
never stored, so it can never be shown again."""

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin import translate_labels

from . import keys
from .models import ApiKey

# Names Django derives from attribute and class names, translatable (see `translate_labels`).
translate_labels(
    ApiKey,
    None,
    _("API keys"),
    account=_("account"),
    name=_("name"),
    prefix=_("prefix"),
    created_by=_("created by"),
    created_at=_("created at"),
    last_used_at=_("last used at"),
    revoked_at=_("revoked at"),
)


class ActiveFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "shown", "created_by", "created_at", "last_used_at", "state"]
    list_filter = [ActiveFilter, "account"]
    search_fields = ["name", "prefix", "account__name"]
    list_select_related = ["account", "created_by"]
    actions = ["revoke"]

    @admin.display(description=_("key"))
    def shown(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "—"

    @admin.display(description=_("status"))
    def state(self, obj: ApiKey) -> str:
        return gettext("Revoked") if obj.revoked_at else gettext("Active")

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        if obj is None:
            return ["account", "name"]
        return [
            "account",
            "name",
            "shown",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        if obj is None:
            return []
        return ["account", "shown", "created_by", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
            # Kept on the request for `response_add`, the one page that shows it.
            request._api_key_secret = keys.assign(obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None):
        secret = getattr(request, "_api_key_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("API key “%(name)s” created") % {"name": obj.name},
            "api_key": obj,
            "secret": secret,
        }
        response: HttpResponse = TemplateResponse(request, "admin/api/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset:
            if keys.revoke(api_key):
                revoked += 1
                self.log_change(request, api_key, "Revoked.")
        self.message_user(
            request,
            ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked)
            % {"count": revoked},
            messages.SUCCESS if revoked else messages.INFO,
        )
