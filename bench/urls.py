"""The hub's URLs plus `/bare/`: a Django view that only answers 200, the baseline."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    return HttpResponse(b'{"ok": true}', content_type="application/json")


urlpatterns = [path("bare/", bare), path("", include("smshub.urls"))]
