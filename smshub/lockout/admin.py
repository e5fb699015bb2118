from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import locks
from .models import LoginLock

# Names Django derives from attribute names, translatable without a migration (see
# campaigns.admin.translate_labels).
LoginLock._meta.verbose_name_plural = _("login lock-outs")
for _field, _label in {
    "scope": _("scope"),
    "failures": _("failures"),
    "locked_at": _("locked at"),
    "locked_until": _("locked until"),
}.items():
    LoginLock._meta.get_field(_field).verbose_name = _label


class LockedNowFilter(admin.SimpleListFilter):
    title = _("locked now")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No (ended)"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(locked_until__gt=timezone.now())
        if self.value() == "no":
            return queryset.filter(locked_until__lte=timezone.now())
        return queryset


@admin.register(LoginLock)
class LoginLockAdmin(admin.ModelAdmin):
    """User names and addresses locked out of logging in, and the Unlock action. Read-only:
    rows are written by the lock-out itself."""

    list_display = ("value", "scope", "locked_now", "locked_until", "failures", "address")
    list_filter = (LockedNowFilter, "scope")
    search_fields = ("value", "address")
    actions = ["unlock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in LoginLock._meta.fields]

    @admin.display(boolean=True, description=_("locked now"))
    def locked_now(self, lock: LoginLock) -> bool:
        return lock.is_active()

    @admin.action(description=_("Unlock selected user names and addresses"), permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[LoginLock]) -> None:
        count = locks.unlock(queryset, by=request.user.get_username())
        self.message_user(
            request,
            ngettext(
                "Unlocked %(count)d user name or address: it may try again now.",
                "Unlocked %(count)d user names or addresses: they may try again now.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
