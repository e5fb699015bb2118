from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LoginLock(models.Model):
    """A user name or an address locked out of logging in after too many failed attempts.

    One row per user name or address: a new lock-out of the same one updates it. It stays after
    it ends (until `SMSHUB_LOG_RETENTION_DAYS`), as the record of what happened.
    """

    class Scope(models.TextChoices):
        USERNAME = "username", "user name"
        ADDRESS = "address", "address"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    value = models.CharField(
        _("user name or address"),
        max_length=150,
        help_text=_("User names in lower case, whether or not a user has them; IPv6 per /64."),
    )
    failures = models.PositiveIntegerField(help_text=_("Failed attempts that locked it."))
    address = models.CharField(
        _("last attempt from"),
        max_length=64,
        blank=True,
        help_text=_("The address of the last one."),
    )
    locked_at = models.DateTimeField()
    locked_until = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-locked_at"]
        verbose_name = _("login lock-out")
        constraints = [
            models.UniqueConstraint(fields=["scope", "value"], name="lockout_one_row_per_value")
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.value}"

    def is_active(self, now: datetime | None = None) -> bool:
        return self.locked_until > (now or timezone.now())
