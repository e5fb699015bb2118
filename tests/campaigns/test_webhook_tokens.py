"""Web processes remember the provider account a webhook token names (one cache read a request,
no query), and forget it at once when any provider account changes: a rotated token, a disabled
or deleted account, new basic-auth credentials are refused at the very next request."""

import base64
import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from campaigns.models import Message, WebhookRequest
from providers.models import WEBHOOK_VERSION_KEY, ProviderAccount, forget, new_webhook_token

pytestmark = pytest.mark.django_db

Status = Message.Status
TABLE = ProviderAccount._meta.db_table


@pytest.fixture(autouse=True)
def _nothing_remembered():
    forget()  # ids and tokens of other tests' accounts are not this test's
    yield
    forget()


def report(client, url: str, **headers) -> int:
    body = json.dumps({"id": "sim-1", "status": "delivered"})
    return client.post(url, data=body, content_type="application/json", headers=headers).status_code


def account_queries(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if TABLE in query["sql"]]


def test_a_remembered_token_costs_no_query(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200
    with CaptureQueriesContext(connection) as queries:
        assert report(client, url) == 200
    assert account_queries(queries) == []
    assert WebhookRequest.objects.count() == 2


def test_a_rotated_token_is_refused_at_once(
    client, sent, provider_account, django_capture_on_commit_callbacks
):
    old_url = provider_account.webhook_url("dlr")
    assert report(client, old_url) == 200  # remembered from now on
    with django_capture_on_commit_callbacks(execute=True):
        provider_account.webhook_token = new_webhook_token()
        provider_account.save(update_fields=["webhook_token", "updated_at"])
    assert report(client, old_url) == 404
    assert report(client, provider_account.webhook_url("dlr")) == 200


def test_a_disabled_account_is_refused_at_once(
    client, sent, provider_account, django_capture_on_commit_callbacks
):
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200
    with django_capture_on_commit_callbacks(execute=True):
        provider_account.enabled = False
        provider_account.save()
    assert report(client, url) == 404
    assert WebhookRequest.objects.count() == 1


def test_a_deleted_account_is_refused_at_once(
    client, provider_account, django_capture_on_commit_callbacks
):
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200  # stored, for no message yet
    with django_capture_on_commit_callbacks(execute=True):
        ProviderAccount.objects.filter(pk=provider_account.pk).delete()
    assert report(client, url) == 404


def test_new_basic_auth_credentials_are_required_at_once(
    client, sent, provider_account, django_capture_on_commit_callbacks
):
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200  # no basic auth asked yet
    with django_capture_on_commit_callbacks(execute=True):
        provider_account.credentials |= {"webhook_username": "hub", "webhook_password": "pw-123"}
        provider_account.save()
    assert report(client, url) == 401
    good = "Basic " + base64.b64encode(b"hub:pw-123").decode()
    assert report(client, url, Authorization=good) == 200


def test_a_token_is_refused_at_once_even_when_the_version_was_evicted(
    client, sent, provider_account, django_capture_on_commit_callbacks
):
    """The cache may drop the version (Redis under memory pressure, the database cache's
    culling): an account remembered before is then looked up again, never taken as current."""
    old_url = provider_account.webhook_url("dlr")
    assert report(client, old_url) == 200
    cache.delete(WEBHOOK_VERSION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        provider_account.webhook_token = new_webhook_token()
        provider_account.save(update_fields=["webhook_token", "updated_at"])
    assert report(client, old_url) == 404
    assert report(client, provider_account.webhook_url("dlr")) == 200


def test_without_the_cache_webhooks_are_still_answered_from_the_database(
    client, sent, provider_account
):
    url, wrong = provider_account.webhook_url("dlr"), provider_account.webhook_url("dlr") + "x"
    unreachable = {
        "default": {
            "BACKEND": "smshub.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        }
    }
    with override_settings(CACHES=unreachable):
        with CaptureQueriesContext(connection) as queries:
            assert report(client, url) == 200
        assert len(account_queries(queries)) == 1
        assert report(client, wrong) == 404
    assert WebhookRequest.objects.count() == 1
