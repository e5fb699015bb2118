"""API keys: made from 32 random bytes, shown once, stored as their SHA-256, looked up by it.

A key reads `smsh_<43 URL-safe characters>`. Looking a key up by the hash of what was sent is
safe against timing attacks: the database compares hashes, which the sender cannot steer.

Each web process remembers the keys it has looked up, with their accounts (`smshub.memory`),
while the *keys version* in the shared cache stands: saving or deleting any key or account, and
revoking a key, change it (`changed`), so a revoked key is refused by every process at its next
request. The version is read in the same cache round trip as the rate counter
(`campaigns.api.auth`): a request makes no database query for its key.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from campaigns.models import Account
from smshub.memory import Remembered, copy_row

from .models import ApiKey

KEY_PREFIX = "smsh_"
# Characters of a key kept in clear to tell keys apart: "smsh_" and 8 of the random part.
SHOWN = len(KEY_PREFIX) + 8
# `last_used_at` is written at most this often per key, to spare the database a write a request.
TOUCH_EVERY = timedelta(minutes=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def assign(api_key: ApiKey) -> str:
    """Give an unsaved `api_key` a new secret; returns the secret, the only time it is seen."""
    secret = new_key()
    api_key.prefix = secret[:SHOWN]
    api_key.key_hash = digest(secret)
    return secret


def issue(
    account: Account, *, name: str, created_by: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """Create a key for `account`; returns it with its secret (to show once, never stored)."""
    api_key = ApiKey(account=account, name=name, created_by=created_by)
    secret = assign(api_key)
    api_key.save()
    return api_key, secret


VERSION_KEY = "smshub:api-keys-version"
memory = Remembered(VERSION_KEY, at_most=10_000)
changed = memory.changed  # on any key or account saved or deleted, and on revoke


def lookup(secret: str, version: object = None) -> ApiKey | None:
    """The key (active or revoked) whose secret this is, with its account; None if none is.

    `version` is the keys version if the caller read it from the cache (`VERSION_KEY`); a key
    remembered under the current version is answered from memory, as a copy (one request's
    changes to it never reach another's). Unknown keys are not remembered.
    """
    if not secret.startswith(KEY_PREFIX):
        return None
    key_hash = digest(secret)
    version = memory.version(version)
    if (remembered := memory.get(key_hash, version)) is not None:
        return _copy(remembered)
    api_key = ApiKey.objects.select_related("account").filter(key_hash=key_hash).first()
    if api_key is not None:
        memory.put(key_hash, api_key, version)
        api_key = _copy(api_key)
    return api_key


def _copy(api_key: ApiKey) -> ApiKey:
    mine = copy_row(api_key)
    mine.account = copy_row(api_key.account)
    return mine


def touch(api_key: ApiKey) -> None:
    """Record that the key was used now, at most once a minute (a conditional UPDATE, so
    concurrent requests write it once)."""
    now = timezone.now()
    last = max(filter(None, [api_key.last_used_at, _touched.get(api_key.pk)]), default=None)
    if last is not None and now - last < TOUCH_EVERY:
        return
    ApiKey.objects.filter(pk=api_key.pk).exclude(last_used_at__gt=now - TOUCH_EVERY).update(
        last_used_at=now
    )
    api_key.last_used_at = _touched[api_key.pk] = now


_touched: dict[int, datetime] = {}  # this process's last writes (its keys are remembered copies)


def revoke(api_key: ApiKey) -> bool:
    """Revoke the key from now on; False if it already was."""
    now = timezone.now()
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        api_key.revoked_at = now
        changed()
    return bool(revoked)


def forget() -> None:
    """Forget the keys this process remembers and its writes of `last_used_at`."""
    memory.forget()
    _touched.clear()
