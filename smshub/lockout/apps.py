from django.apps import AppConfig


class LockoutConfig(AppConfig):
    name = "smshub.lockout"
    label = "lockout"
    verbose_name = "Login lock-outs"
    default_auto_field = "django.db.models.BigAutoField"
