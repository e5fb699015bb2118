"""Web processes remember the provider account a webhook token names (no query but the INSERT
that stores the request, which checks that the account is still as remembered): a rotated token,
a disabled or deleted account, new basic-auth credentials are refused at the very next request,
however the change was made and with or without the cache."""

import base64
import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from campaigns.models import Message, WebhookRequest
from providers.models import ProviderAccount, forget, new_webhook_token

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
    """The queries that looked provider accounts up (the INSERT's own check aside)."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if TABLE in query["sql"] and query["sql"].startswith("SELECT")
    ]


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


def test_a_change_that_bypasses_save_is_refused_at_once_too(client, sent, provider_account):
    """A change written by another program, or by `update()` (no signal, no `updated_at`): the
    INSERT's check reads the row itself."""
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200  # remembered from now on
    ProviderAccount.objects.filter(pk=provider_account.pk).update(enabled=False)
    assert report(client, url) == 404
    ProviderAccount.objects.filter(pk=provider_account.pk).update(enabled=True)
    ProviderAccount.objects.filter(pk=provider_account.pk).update(webhook_token_digest="0" * 64)
    assert report(client, url) == 404
    assert WebhookRequest.objects.count() == 1


def test_a_remembered_account_saved_since_is_read_again_before_storing(
    client, sent, provider_account
):
    """Any save (here a field webhooks do not use) makes the remembered copy stale: the request
    is stored against the account as the database has it, once."""
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200
    provider_account.priority = 7
    provider_account.save(update_fields=["priority"])  # writes updated_at too
    with CaptureQueriesContext(connection) as queries:
        assert report(client, url) == 200
    assert len(account_queries(queries)) == 1
    assert WebhookRequest.objects.count() == 2
    with CaptureQueriesContext(connection) as queries:
        assert report(client, url) == 200  # remembered again
    assert account_queries(queries) == []


def test_an_account_changing_while_its_request_is_stored_is_answered_503(
    client, sent, provider_account, monkeypatch
):
    """Changed between reading it and storing the request, twice in a row: nothing is stored
    against a stale account, and the provider is asked to try again."""
    url = provider_account.webhook_url("dlr")
    stale = ProviderAccount.objects.get(pk=provider_account.pk)
    provider_account.save()
    monkeypatch.setattr(ProviderAccount, "for_webhook", classmethod(lambda cls, *a: stale))
    assert report(client, url) == 503
    assert WebhookRequest.objects.count() == 0


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


def test_where_the_orm_writes_the_request_the_account_is_checked_all_the_same(
    client, sent, provider_account, monkeypatch
):
    """On a database whose INSERT cannot return the id (or a value only the ORM can write), the
    check runs in a transaction with the ORM's INSERT: same answers."""
    from campaigns.services import webhook_log

    monkeypatch.setattr(webhook_log.rows, "prepared", lambda *args, **kwargs: None)
    url = provider_account.webhook_url("dlr")
    assert report(client, url) == 200
    ProviderAccount.objects.filter(pk=provider_account.pk).update(enabled=False)
    assert report(client, url) == 404
    assert WebhookRequest.objects.count() == 1


def test_what_one_request_changes_on_a_remembered_account_stays_its_own(provider_account):
    """Each request gets its own copy of the remembered account: a change to one (its
    credentials, its state) never reaches the next."""
    slug, token = provider_account.slug, provider_account.webhook_token
    ProviderAccount.for_webhook(slug, token)  # looked up, and remembered
    first = ProviderAccount.for_webhook(slug, token, remembered=True)
    first.credentials["webhook_username"] = "changed by one request"
    first.name = "changed too"
    first._state.adding = True
    with CaptureQueriesContext(connection) as queries:
        second = ProviderAccount.for_webhook(slug, token, remembered=True)
    assert account_queries(queries) == []  # from memory
    assert second is not first and second.credentials is not first.credentials
    assert "webhook_username" not in second.credentials
    assert second.name == provider_account.name
    assert second._state.adding is False and second._state.db == "default"
