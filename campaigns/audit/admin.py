"""The audit trail in the admin: read-only for everyone, superusers included."""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from smshub.admin_lists import DateSafeMixin

from .models import SECRET_CHANGED, AuditEntry

# Names Django derives from attribute names, translatable (see campaigns.admin.translate_labels,
# which this module cannot import: campaigns.admin imports it).
for _field, _label in {
    "at": _("at"),
    "actor": _("actor"),
    "via": _("via"),
    "action": _("action"),
    "content_type": _("content type"),
    "object_id": _("object id"),
    "account_id": _("account id"),
    "changes": _("changes"),
}.items():
    AuditEntry._meta.get_field(_field).verbose_name = _label


def _shown(value) -> str:
    return "—" if value in (None, "") else str(value)


def changes_html(entry: AuditEntry) -> str:
    rows = []
    for field, change in (entry.changes or {}).items():
        if change == SECRET_CHANGED:
            rows.append((field, gettext("changed (secret, not recorded)")))
        else:
            old, new = change
            rows.append((field, f"{_shown(old)} → {_shown(new)}"))
    if not rows:
        return "—"
    return format_html(
        "<ul style='margin:0;padding-left:1em'>{}</ul>",
        format_html_join("", "<li><b>{}</b>: {}</li>", rows),
    )


def trail_link(obj: Model, *, whole_account: bool = False) -> str:
    """A link to the audit entries of `obj` (or, for an account, of everything in it), for its
    own change page."""
    if obj.pk is None:
        return "—"
    if whole_account:
        query = {"account_id": obj.pk}
    else:
        content_type = ContentType.objects.get_for_model(type(obj))
        query = {"content_type__id__exact": content_type.pk, "object_id": str(obj.pk)}
    count = AuditEntry.objects.filter(**query).count()
    return format_html(
        '<a href="{}?{}">{}</a>',
        reverse("admin:audit_auditentry_changelist"),
        urlencode(query),
        ngettext("%(count)d change", "%(count)d changes", count) % {"count": count},
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(DateSafeMixin, admin.ModelAdmin):
    list_display = ["at", "who", "via", "action", "what", "summary"]
    list_filter = ["action", "via", ("content_type", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "actor_name", "object_id__exact"]
    date_hierarchy = "at"
    list_select_related = ["content_type"]
    show_full_result_count = False
    fields = [
        "at",
        "actor_name",
        "actor",
        "via",
        "action",
        "content_type",
        "object_id",
        "object_repr",
        "account_id",
        "changes_list",
    ]
    readonly_fields = fields

    @admin.display(description=_("who"), ordering="actor_name")
    def who(self, obj: AuditEntry) -> str:
        return obj.actor_name or gettext("system")

    @admin.display(description=_("object"))
    def what(self, obj: AuditEntry) -> str:
        return gettext("%(type)s “%(object)s”") % {
            "type": obj.content_type.name,
            "object": obj.object_repr,
        }

    @admin.display(description=_("changes"))
    def summary(self, obj: AuditEntry) -> str:
        return changes_html(obj)

    @admin.display(description=_("changes"))
    def changes_list(self, obj: AuditEntry) -> str:
        return changes_html(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
