from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "campaigns.api"
    label = "api"
    verbose_name = _("JSON API")

    def ready(self) -> None:
        from campaigns.models import Account

        from . import keys
        from .models import ApiKey

        # Web processes remember keys and their accounts (`keys.lookup`): any change is news.
        for model in (ApiKey, Account):
            post_save.connect(keys.changed, sender=model, dispatch_uid=f"api-keys-{model}")
            post_delete.connect(keys.changed, sender=model, dispatch_uid=f"api-keys-d-{model}")
