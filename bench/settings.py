"""Settings for benchmarks: the project's own, with a URL configuration that adds a bare view."""

from smshub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["*"]
