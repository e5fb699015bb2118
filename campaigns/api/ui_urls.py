from django.urls import path

from . import ui

app_name = "api_keys"

urlpatterns = [
    path("", ui.key_list, name="list"),
    path("new/", ui.key_create, name="create"),
    path("<int:pk>/revoke/", ui.key_revoke, name="revoke"),
]
