from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LockoutConfig(AppConfig):
    name = "smshub.lockout"
    label = "lockout"
    verbose_name = _("Login lock-outs")
    default_auto_field = "django.db.models.BigAutoField"
