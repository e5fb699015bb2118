"""Secrets at rest: Fernet encryption under the keys of `SMSHUB_ENCRYPTION_KEYS`, and model
fields that store their value encrypted while every caller sees plain values.

The first key encrypts; every key decrypts (MultiFernet), so a key is rotated by putting a new
one first, running `manage.py rotate_encryption_key` (which re-encrypts every stored secret with
the first key) and then removing the old one. Without the setting (development only: settings
refuse to start with DEBUG off) the key is derived from SECRET_KEY.

A value that no key decrypts raises `ImproperlyConfigured` naming the setting: a secret is never
silently read as empty.
"""

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver


def derived_key(secret_key: str) -> str:
    """The development key: a Fernet key derived from SECRET_KEY (never used with DEBUG off)."""
    digest = hashlib.sha256(f"smshub-encryption-key:{secret_key}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> list[str]:
    keys = [key.strip() for key in settings.SMSHUB_ENCRYPTION_KEYS if key.strip()]
    return keys or [derived_key(settings.SECRET_KEY)]


@cache
def _fernet() -> MultiFernet:
    fernets = []
    for position, key in enumerate(configured_keys(), start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"SMSHUB_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 bytes, url-safe "
                "base64). Make one with: python manage.py rotate_encryption_key --generate-key"
            ) from None
    return MultiFernet(fernets)


@receiver(setting_changed)
def _forget_keys(setting: str, **kwargs: Any) -> None:
    if setting in ("SMSHUB_ENCRYPTION_KEYS", "SECRET_KEY"):
        _fernet.cache_clear()


def check_keys() -> None:
    """Raise `ImproperlyConfigured` if a configured key is not a valid Fernet key."""
    _fernet()


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`manage.py check`, `migrate` and `runserver` refuse keys that are not Fernet keys."""
    if not any(key.strip() for key in settings.SMSHUB_ENCRYPTION_KEYS):
        return []  # development: derived from SECRET_KEY when first needed
    try:
        check_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="smshub.E001")]
    return []


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def _undecryptable() -> ImproperlyConfigured:
    return ImproperlyConfigured(
        "A stored secret cannot be decrypted with any key of SMSHUB_ENCRYPTION_KEYS: the key "
        "that encrypted it was removed, or the variable is wrong."
    )


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise _undecryptable() from None


def reencrypt(token: str) -> str:
    """The same secret encrypted with the first key (the current one)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise _undecryptable() from None


def digest(value: str) -> str:
    """SHA-256 hex digest: an indexed lookup for a random token without storing the token."""
    return hashlib.sha256(value.encode()).hexdigest()


class EncryptedTextField(models.TextField):
    """A string stored encrypted. Lookups on it find nothing (each encryption differs)."""

    def from_db_value(self, value: str | None, expression, connection) -> str | None:
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


class EncryptedJSONField(models.TextField):
    """A JSON value (a dict of credentials) stored encrypted; callers see the decoded value."""

    def from_db_value(self, value: str | None, expression, connection) -> Any:
        return None if value is None else json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):  # deserialization (loaddata) hands JSON text
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise forms.ValidationError("Enter valid JSON.") from None
        return value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else encrypt(json.dumps(value, ensure_ascii=False))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)

    def formfield(self, **kwargs: Any) -> forms.Field:
        return forms.JSONField(**{"required": not self.blank, **kwargs})
