from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from campaigns.webhooks import webhook

admin.site.site_header = "SMS Hub administration"
admin.site.site_title = "SMS Hub"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("hooks/<slug:slug>/<str:token>/<str:kind>/", webhook, name="webhook"),
    path("", include("campaigns.urls")),
]
