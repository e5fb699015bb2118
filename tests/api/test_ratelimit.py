"""Per-key rate limit: over SMSHUB_API_RATE_LIMIT requests in a minute, 429 with Retry-After,
and the refused request changes nothing."""

import uuid

import pytest
from django.core.cache import caches

from campaigns.api import ratelimit
from campaigns.models import Message
from tests.factories import ApiKeyFactory

from .conftest import ApiClient, error_of

SEND = {"to": "+33612345678", "text": "Hello"}


def test_over_the_limit_is_429_with_retry_after_and_sends_nothing(api, settings):
    settings.SMSHUB_API_RATE_LIMIT = 3
    for _ in range(3):
        assert api.get("/messages").status_code == 200
    refused = api.post("/messages", SEND)
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == "rate_limited" and "3 requests a minute" in error["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert not Message.objects.exists()


def test_each_key_has_its_own_budget(client, api, account, settings):
    settings.SMSHUB_API_RATE_LIMIT = 2
    other = ApiClient(client, ApiKeyFactory(account=account).secret)
    api.get("/messages")
    api.get("/messages")
    assert api.get("/messages").status_code == 429
    assert other.get("/messages").status_code == 200


def test_fixed_one_minute_windows(db, settings):
    settings.SMSHUB_API_RATE_LIMIT = 2
    bucket = uuid.uuid4().hex  # the cache may outlive the test (Redis)
    minute = 60 * 29_000_000  # the start of some minute
    assert ratelimit.hit(bucket, now=minute + 10) is None
    assert ratelimit.hit(bucket, now=minute + 20) is None
    assert ratelimit.hit(bucket, now=minute + 45.5) == 15  # seconds to the next minute
    assert ratelimit.hit(bucket, now=minute + 59.9) == 1
    assert ratelimit.hit(bucket, now=minute + 60) is None  # a new minute, a new budget


REDIS_URL = "redis://127.0.0.1:6379/9"


def test_with_redis_one_call_counts_reads_and_survives_a_flushed_script(db, settings):
    # The production cache: the count, its expiry and the values read in one script call, which
    # Redis may forget (a restart, SCRIPT FLUSH) and is then loaded again.
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        server.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings.CACHES = {"default": {"BACKEND": "smshub.cache.RedisCache", "LOCATION": REDIS_URL}}
    settings.SMSHUB_API_RATE_LIMIT = 2
    cache = caches["default"]
    bucket, minute = uuid.uuid4().hex, 60 * 29_000_000
    cache.set(f"{bucket}-version", {"v": 7})
    over, values = ratelimit.hit_and_read(bucket, [f"{bucket}-version", "absent"], minute + 1)
    assert over is None and values == {f"{bucket}-version": {"v": 7}}
    server.script_flush()
    assert ratelimit.hit(bucket, now=minute + 2) is None
    assert ratelimit.hit(bucket, now=minute + 3) == 57
    counter = cache.make_and_validate_key(f"smshub:api-rate:{bucket}:{29_000_000}")
    assert int(server.get(counter)) == 3
    assert 0 < server.ttl(counter) <= ratelimit.KEPT
    server.close()
