"""The settings a bare machine starts with, and the refusal to run production on a dev key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_check(**env_overrides):
    # Set, not removed: a development .env would otherwise fill them in.
    env = {**os.environ, "SECRET_KEY": "", "DEBUG": "false"}
    env.update({"DJANGO_SETTINGS_MODULE": "smshub.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_debug_the_hub_refuses_the_development_secret_key():
    result = django_check()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_with_a_real_secret_key_it_starts_with_debug_off():
    result = django_check(
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789abcdef",
        SMSHUB_ENCRYPTION_KEYS=os.environ["SMSHUB_ENCRYPTION_KEYS"],  # tests/settings.py sets it
    )
    assert result.returncode == 0, result.stderr


def test_without_debug_the_hub_refuses_to_start_without_an_encryption_key():
    result = django_check(
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789abcdef",
        SMSHUB_ENCRYPTION_KEYS="",
    )
    assert result.returncode != 0
    assert "SMSHUB_ENCRYPTION_KEYS is not set" in result.stderr


def test_debug_mode_runs_on_the_development_key():
    assert django_check(DEBUG="1").returncode == 0


def test_the_embedded_defaults_need_no_server():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="smshub.settings", DEBUG="1")
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'],"
        " s.CELERY_BROKER_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.db.DatabaseCache",
        "smshubfs://localhost//",  # the embedded broker (smshub.broker)
    ]
