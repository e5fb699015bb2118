"""Provider kinds: slug → adapter class, from `settings.SMSHUB_PROVIDERS`."""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import BaseProvider


@cache
def adapters() -> dict[str, type[BaseProvider]]:
    loaded = {}
    for slug, path in settings.SMSHUB_PROVIDERS.items():
        cls = import_string(path)
        if getattr(cls, "slug", None) != slug:
            raise ImproperlyConfigured(f"SMSHUB_PROVIDERS[{slug!r}] is {path}, whose slug differs")
        loaded[slug] = cls
    return loaded


def get_adapter_class(slug: str) -> type[BaseProvider]:
    try:
        return adapters()[slug]
    except KeyError:
        raise ImproperlyConfigured(f"no provider kind {slug!r} in SMSHUB_PROVIDERS") from None


def choices() -> list[tuple[str, str]]:
    return [(slug, cls.display_name) for slug, cls in adapters().items()]
