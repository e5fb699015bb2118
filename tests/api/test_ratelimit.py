"""Per-key rate limit: over SMSHUB_API_RATE_LIMIT requests in a minute, 429 with Retry-After,
and the refused request changes nothing."""

import uuid

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
