"""ASGI entry point, with the same two handlers as smshub/wsgi.py: `settings.MACHINE_PATHS` with
`settings.MACHINE_MIDDLEWARE`, everything else with `settings.MIDDLEWARE`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smshub.settings")
pages = get_asgi_application()  # sets Django up

from django.core.handlers.asgi import ASGIHandler  # noqa: E402

# Importing smshub.wsgi also builds its WSGI application: two idle handlers, no I/O.
from smshub.wsgi import is_machine_path, with_machine_middleware  # noqa: E402

machines = with_machine_middleware(ASGIHandler)


async def application(scope, receive, send):
    path = scope.get("path", "").removeprefix(scope.get("root_path", "").rstrip("/"))
    machine = scope["type"] == "http" and is_machine_path(path)
    await (machines if machine else pages)(scope, receive, send)
