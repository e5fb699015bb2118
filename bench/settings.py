"""Settings for benchmarks: the project's own, with a URL configuration that adds a bare view."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
# A Fernet key for secrets at rest (32 bytes, base64): benchmarks only.
os.environ.setdefault("SMSHUB_ENCRYPTION_KEYS", "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=")

from smshub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["*"]
