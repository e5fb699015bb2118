"""API keys: made from 32 random bytes, shown once, stored as their SHA-256, looked up by it.

A key reads `smsh_<43 URL-safe characters>`. Looking a key up by the hash of what was sent is
safe against timing attacks: the database compares hashes, which the sender cannot steer.
"""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from campaigns.models import Account

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


def lookup(secret: str) -> ApiKey | None:
    """The key (active or revoked) whose secret this is, with its account; None if none is."""
    if not secret.startswith(KEY_PREFIX):
        return None
    return ApiKey.objects.select_related("account").filter(key_hash=digest(secret)).first()


def touch(api_key: ApiKey) -> None:
    """Record that the key was used now, at most once a minute (a conditional UPDATE, so
    concurrent requests write it once)."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < TOUCH_EVERY:
        return
    ApiKey.objects.filter(pk=api_key.pk).exclude(last_used_at__gt=now - TOUCH_EVERY).update(
        last_used_at=now
    )
    api_key.last_used_at = now


def revoke(api_key: ApiKey) -> bool:
    """Revoke the key from now on; False if it already was."""
    now = timezone.now()
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        api_key.revoked_at = now
    return bool(revoked)
