"""WSGI entry point: two Django handlers, one per kind of caller.

Requests to `settings.MACHINE_PATHS` (the JSON API, webhooks, probes) go to a handler built with
`settings.MACHINE_MIDDLEWARE`; everything else (pages, admin, static files) to the usual one with
`settings.MIDDLEWARE`. A webhook or an API call then skips sessions, users, CSRF, tenancy and
the rest, which only pages use. Django's test client builds its own handler on
`settings.MIDDLEWARE`: tests/production/test_machine_paths.py calls this application itself.
"""

import os

import django
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smshub.settings")


def is_machine_path(path: str) -> bool:
    """Whether a request to `path` (PATH_INFO) is served with `MACHINE_MIDDLEWARE`."""
    return path.startswith(settings.MACHINE_PATHS) and not path.startswith(
        settings.MACHINE_PATHS_EXCEPT
    )


def with_machine_middleware(handler_class: type[BaseHandler]) -> BaseHandler:
    """A new handler whose middleware chain is `MACHINE_MIDDLEWARE`.

    Django's handlers build their chain from `settings.MIDDLEWARE` when they are made (nowhere
    else reads it while serving: only system checks do), so the list is swapped for that
    moment. That is at start-up, before the process serves anything.
    """
    pages = settings.MIDDLEWARE
    settings.MIDDLEWARE = settings.MACHINE_MIDDLEWARE
    try:
        return handler_class()
    finally:
        settings.MIDDLEWARE = pages


class MachinePaths:
    """A WSGI application: machine paths to `machines`, the rest to `pages`."""

    def __init__(self, pages, machines) -> None:
        self.pages, self.machines = pages, machines

    def __call__(self, environ, start_response):
        handler = self.machines if is_machine_path(environ.get("PATH_INFO", "")) else self.pages
        return handler(environ, start_response)


def build_application() -> MachinePaths:
    """Both handlers, from the settings as they are now (middleware reads them when made)."""
    return MachinePaths(WSGIHandler(), with_machine_middleware(WSGIHandler))


django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application() does
application = build_application()
# The URLconf (and so every view module) imported and its reverse table built now, while the
# process starts, rather than in the time of its first request: about 0.3 s of CPU here, which
# each new web process would otherwise add to whichever request came first.
get_resolver().reverse_dict  # noqa: B018 (imports the URLconf, builds its reverse table)
