from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext_lazy

from campaigns.webhooks import webhook

from . import health, metrics
from .lockout.forms import LockoutAdminAuthenticationForm, LockoutAuthenticationForm


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that do not name one (admin's): the hub's icon."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


admin.site.site_header = gettext_lazy("SMS Hub administration")
admin.site.site_title = "SMS Hub"
# Both login pages count failed attempts and lock out (smshub.lockout).
admin.site.login_form = LockoutAdminAuthenticationForm

urlpatterns = [
    # Tried in this order on every request: the webhooks and the API, most of the traffic, first.
    path("hooks/<slug:slug>/<str:token>/<str:kind>/", webhook, name="webhook"),
    path("", include("campaigns.api.urls")),
    path("favicon.ico", favicon),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LockoutAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api-keys/", include("campaigns.api.ui_urls")),
    path("", include("campaigns.contacts.urls")),
    path("", include("campaigns.urls")),
]
