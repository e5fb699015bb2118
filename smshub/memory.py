"""What a web process may remember of the database between requests: rows it looked up (an API
key and its account), kept while a *version* in the shared cache stands. (The provider account a
webhook token names is checked otherwise: by the statement that stores the request.)

Any change to such rows, once committed, gives the version a new value (`changed`, a receiver of
`post_save` and `post_delete`), so every process looks them up again at its next request: a
revoked key or a rotated token is refused at once. A missing version (never set, or evicted) is
set to a new random value, so nothing remembered before counts as current; without a version
(the cache cannot be reached) nothing is remembered and the database is asked. Whatever happens,
nothing is kept longer than `kept_for`.
"""

import logging
import secrets
import threading
import time
from collections.abc import Hashable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Model
from django.db.models.base import ModelState

logger = logging.getLogger(__name__)

UNAVAILABLE_SAID_EVERY = 60.0  # seconds between warnings that the cache cannot be reached


def copy_row(row: Model) -> Model:
    """A copy of a remembered `row` that one request may change without another seeing it:
    what `copy.copy` makes of a model instance (its fields, and its state with its cache of
    related rows copied, as `Model.__getstate__` does) without the pickling protocol's round
    trip: `copy.copy` of the instance cost a single send 3 % of its instructions, `copy.copy`
    of its state 2 % more. Related rows in the cache are shared: the caller copies those it
    hands on."""
    clone = row.__class__.__new__(row.__class__)
    clone.__dict__.update(row.__dict__)
    state = clone._state = ModelState.__new__(ModelState)
    state.__dict__.update(row._state.__dict__)
    state.__dict__.pop("peers", None)  # other rows fetched with it: not this copy's
    state.fields_cache = row._state.fields_cache.copy()
    return clone


class Remembered:
    def __init__(self, version_key: str, at_most: int, kept_for: float = 60.0) -> None:
        self.version_key, self.at_most, self.kept_for = version_key, at_most, kept_for
        self._items: dict[Hashable, tuple[Any, object, float]] = {}
        self._lock = threading.Lock()
        self._unavailable_said = -UNAVAILABLE_SAID_EVERY

    def get(self, key: Hashable, version: object) -> Any | None:
        """What was remembered under `key` with this `version` (and recently), else None."""
        item = self._items.get(key) if version is not None else None
        if item is None or item[1] != version or time.monotonic() - item[2] >= self.kept_for:
            return None
        return item[0]

    def put(self, key: Hashable, value: Any, version: object) -> None:
        if version is None:
            return
        with self._lock:
            if len(self._items) >= self.at_most:
                self._items.clear()
            self._items[key] = (value, version, time.monotonic())

    def version(self, known: object = None) -> object:
        """The current version (`known` if the caller read it already): one cache read, two
        more when it is missing. None when the cache cannot be reached."""
        if known is not None:
            return known
        try:
            version = cache.get(self.version_key)
            if version is None:
                cache.add(self.version_key, secrets.randbits(32), timeout=None)
                version = cache.get(self.version_key)
        except Exception as exc:  # the caller still answers, from the database
            now = time.monotonic()
            if now - self._unavailable_said > UNAVAILABLE_SAID_EVERY:  # not once per request
                self._unavailable_said = now
                logger.warning(
                    "cache unavailable (%s): looking %s up in the database",
                    type(exc).__name__,
                    self.version_key,
                )
            return None
        return version

    def changed(self, **kwargs) -> None:
        """A new version once the change is committed (before, another process could read the
        old row and keep it under the new version)."""
        transaction.on_commit(self._new_version, robust=True)

    def _new_version(self) -> None:
        try:
            cache.incr(self.version_key)
        except ValueError:  # not there yet (or evicted): any new value will do
            cache.set(self.version_key, secrets.randbits(32), timeout=None)

    def forget(self) -> None:
        self._items.clear()
