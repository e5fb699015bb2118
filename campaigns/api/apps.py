from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "campaigns.api"
    label = "api"
    verbose_name = "JSON API"
