"""One row per change to an audited object: who, when, through what, from what to what."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# What a secret's change is recorded as: never its value, old or new.
SECRET_CHANGED = "changed"  # noqa: S105 (a marker, not a secret)


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", pgettext_lazy("audit action", "Created")
        CHANGED = "changed", pgettext_lazy("audit action", "Changed")
        DELETED = "deleted", pgettext_lazy("audit action", "Deleted")

    class Via(models.TextChoices):
        ADMIN = "admin", pgettext_lazy("audit via", "Admin")
        WEB = "web", pgettext_lazy("audit via", "Staff UI")
        API = "api", pgettext_lazy("audit via", "API")
        SYSTEM = "system", pgettext_lazy("audit via", "System")

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: a process (worker, command) or a user since deleted."),
    )
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.SYSTEM)
    action = models.CharField(max_length=10, choices=Action.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(_("object"), max_length=200)
    # The account (tenant) the object belongs to, kept as a number: the entry outlives it.
    account_id = models.BigIntegerField(null=True, blank=True)
    changes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('{field: [from, to]}; a secret is only "changed", never its value.'),
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [
            models.Index(fields=["content_type", "object_id", "-at"], name="audit_object_idx"),
            models.Index(fields=["account_id", "-at"], name="audit_account_idx"),
            models.Index(fields=["at"], name="audit_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.object_repr} {self.action} by {self.actor_name or 'system'}"
