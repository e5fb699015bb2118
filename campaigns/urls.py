from django.urls import path

from .views import accounts, compose, messages

app_name = "campaigns"

urlpatterns = [
    path("", compose.compose, name="compose"),
    path("compose/counter/", compose.text_counter, name="text_counter"),
    path("messages/<int:pk>/", messages.message_detail, name="message_detail"),
    path("messages/<int:pk>/status/", messages.message_status, name="message_status"),
    path("account/switch/", accounts.switch_account, name="switch_account"),
]
