from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "campaigns.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from . import recorder

        recorder.connect()
