"""The Redis cache the hub runs with (`smshub.cache`): Django's, one client per connection pool.

Needs the Redis server of the production setup at 127.0.0.1:6379 (`REDIS_URL` for another);
skipped, saying so, where none runs.
"""

import os
import subprocess
import sys
import uuid

import pytest
import redis as redis_py
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from smshub.cache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture
def cache():
    try:
        redis_py.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis_py.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}: set REDIS_URL to one")
    name = f"test-cache-{uuid.uuid4().hex}"
    backend = RedisCache(REDIS_URL, {"KEY_PREFIX": name, "OPTIONS": {"client_name": name}})
    backend.name = name
    yield backend
    backend.clear()
    backend.close()


def test_a_redis_cache_url_gives_the_hubs_redis_cache():
    script = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smshub.settings", "CACHE_URL": REDIS_URL}
    answer = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "smshub.cache.RedisCache"


def test_values_go_through_one_client_made_once(cache):
    assert isinstance(cache, DjangoRedisCache)  # what code that checks for Redis looks for
    client = cache._cache.get_client(write=True)
    cache.set("counter", 1)
    assert cache.incr("counter") == 2
    cache.set_many({"a": {"nested": [1, 2]}, "b": "text"})
    assert cache.get_many(["a", "b", "missing"]) == {"a": {"nested": [1, 2]}, "b": "text"}
    assert cache.add("a", "other") is False
    cache.delete("b")
    assert cache.get("b", "gone") == "gone"
    assert cache._cache.get_client(write=True) is client
    assert cache._cache.get_client() is client  # one server: reads use the same pool


def test_the_client_kept_works_again_after_its_connections_are_dropped(cache):
    cache.set("kept", "before")
    client = cache._cache.get_client(write=True)
    # As a Redis restart would: the server closes this pool's connections (and only these:
    # other tests may be using the same server).
    admin = redis_py.Redis.from_url(REDIS_URL)
    ours = [c["id"] for c in admin.client_list() if c["name"] == cache.name]
    assert ours
    for client_id in ours:
        admin.client_kill_filter(_id=client_id)
    admin.close()
    assert cache.get("kept") == "before"
    cache.set("kept", "after")
    assert cache.get("kept") == "after"
    assert cache._cache.get_client(write=True) is client
