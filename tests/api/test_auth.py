"""Keys: no key, a wrong key or a revoked key is a 401 that changes nothing; either header works;
CSRF does not apply; the last use is recorded at most once a minute."""

from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.api import keys
from campaigns.api.models import ApiKey
from campaigns.models import Message

from .conftest import ApiClient, error_of

SEND = {"to": "+33612345678", "text": "Hello"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer smsh_not-a-key-at-all"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "smsh_wrong"},
        {"X-API-Key": "something else"},
    ],
    ids=["none", "wrong-bearer", "empty-bearer", "basic", "wrong-header", "garbage-header"],
)
def test_without_a_valid_key_401_and_nothing_sent(client, account, headers):
    response = ApiClient(client, None).post("/messages", SEND, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert "Authorization: Bearer" in error_of(response)["message"]
    assert not Message.objects.exists()


def test_every_endpoint_needs_a_key(client, account):
    anonymous = ApiClient(client, None)
    for response in [
        anonymous.post("/messages", SEND),
        anonymous.get("/messages"),
        anonymous.get("/messages/1"),
        anonymous.post("/messages/1/cancel"),
        anonymous.get("/replies"),
        anonymous.get("/campaigns/1"),
        anonymous.post("/otp", {"to": "+33612345678"}),
        anonymous.post("/otp/verify", {"to": "+33612345678", "code": "123456"}),
    ]:
        assert response.status_code == 401, response.request
        assert error_of(response)["code"] == "unauthorized"


def test_revoked_key_401_and_nothing_sent(api, api_key):
    keys.revoke(api_key)
    response = api.post("/messages", SEND)
    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]
    assert not Message.objects.exists()


def test_bearer_and_x_api_key_both_work(client, api_key):
    bearer = ApiClient(client, api_key.secret).post("/messages", SEND)
    header = ApiClient(client, None).post("/messages", SEND, headers={"X-API-Key": api_key.secret})
    assert (bearer.status_code, header.status_code) == (201, 201)
    assert Message.objects.filter(account=api_key.account).count() == 2


def test_a_logged_in_session_is_not_a_key(client, operator):
    client.force_login(operator)
    response = ApiClient(client, None).get("/messages")
    assert response.status_code == 401


def test_csrf_does_not_apply_to_key_authenticated_calls(api_key):
    strict = Client(enforce_csrf_checks=True)
    response = ApiClient(strict, api_key.secret).post("/messages", SEND)
    assert response.status_code == 201, response.content


def test_only_the_hash_is_stored(api_key):
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert api_key.secret not in str(stored)
    assert stored["key_hash"] == keys.digest(api_key.secret)
    assert api_key.secret.startswith(stored["prefix"])
    assert len(api_key.secret) > 40


def test_last_used_is_recorded_at_most_once_a_minute(api, api_key, monkeypatch):
    assert api_key.last_used_at is None
    api.get("/messages")
    api_key.refresh_from_db()
    first = api_key.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    api.get("/messages")
    api_key.refresh_from_db()
    assert api_key.last_used_at == first

    later = timezone.now() + timedelta(minutes=2)  # a request two minutes on
    monkeypatch.setattr(keys.timezone, "now", lambda: later)
    api.get("/messages")
    api_key.refresh_from_db()
    assert api_key.last_used_at == later


def test_a_revoked_key_is_not_marked_used(api, api_key):
    keys.revoke(api_key)
    api.get("/messages")
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


def test_a_remembered_key_is_refused_once_revoked(api, api_key, django_capture_on_commit_callbacks):
    """Web processes remember keys they have seen; revoking one reaches them all at once."""
    assert api.get("/messages").status_code == 200
    assert api.get("/messages").status_code == 200  # answered from memory
    with django_capture_on_commit_callbacks(execute=True):
        keys.revoke(api_key)
    assert api.get("/messages").status_code == 401


def test_a_remembered_key_follows_its_account(
    api, api_key, account, django_capture_on_commit_callbacks
):
    """A change to the key's account (here its time zone) is seen by the next request."""
    api.get("/messages")
    with django_capture_on_commit_callbacks(execute=True):
        account.timezone = "Pacific/Auckland"
        account.save()
    day = (timezone.now() + timedelta(days=10)).date()
    answer = api.post("/messages", {"to": "+33612345678", "text": "Hi", "send_at": f"{day}T09:00"})
    assert answer.status_code == 201, answer.json()
    local = datetime.combine(day, clock(9), ZoneInfo("Pacific/Auckland"))
    sent_at = datetime.fromisoformat(answer.json()["message"]["scheduled_at"])
    assert sent_at == local  # read in the account's new zone, not UTC


def test_what_one_request_changes_on_a_remembered_key_stays_its_own(api_key):
    """Each request gets its own copy of a remembered key and account: a change one request
    makes to them (its state, its cache of related rows) never reaches the next."""
    first = keys.lookup(api_key.secret)
    first.name = "changed by one request"
    first.account.name = "changed too"
    first.account.timezone = "Pacific/Auckland"
    first._state.adding = True
    first._state.fields_cache.clear()
    with CaptureQueriesContext(connection) as queries:
        second = keys.lookup(api_key.secret)
    assert not [q for q in queries if ApiKey._meta.db_table in q["sql"]]  # from memory
    assert second is not first and second.account is not first.account
    assert (second.name, second.account.name) == (api_key.name, api_key.account.name)
    assert second.account.timezone == api_key.account.timezone
    assert second._state.adding is False and second._state.db == "default"
    assert "account" in second._state.fields_cache  # its account came with it, no query
