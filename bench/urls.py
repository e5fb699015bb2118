"""The hub's URLs plus the bare view of bench/minimal.py (it only answers 200), the baseline of
bench/webhooks.py, at two addresses:

- `/hooks/bare/`: under the webhooks' prefix, so smshub.wsgi serves it with the middleware
  webhooks get (`MACHINE_MIDDLEWARE`);
- `/bare/`: with the pages' middleware (`MIDDLEWARE`), to show what the lean path saves.
"""

from django.urls import include, path

from bench.minimal import bare

urlpatterns = [
    path("hooks/bare/", bare),
    path("bare/", bare),
    path("", include("smshub.urls")),
]
