"""The floor for bench/webhooks.py: Django with nothing else. This module is at once the settings
(no apps, no middleware, no database) and the URL configuration (one view answering 200 with the
bare view's body), served by granian as the hub is (smshub/web.py):

    DJANGO_SETTINGS_MODULE=bench.minimal python -m granian --interface wsgi \\
        --factory django.core.wsgi:get_wsgi_application

The bare view itself is defined here and also served by the hub (bench/urls.py), so both answer
the same bytes.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.minimal"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True

BODY = b'{"ok": true}'


@csrf_exempt  # the hub's page middleware checks CSRF on /bare/
def bare(request):
    """Only answers 200: what any Django view costs at least."""
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("bare/", bare)]
