"""Idempotency-Key: the same key and body within 24 hours returns the first answer and sends
nothing new; the same key with another body is a 409; two identical requests at once send once."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from campaigns.api import idempotency
from campaigns.api.models import IdempotencyRecord
from campaigns.models import Message
from tests.factories import AccountFactory, ApiKeyFactory, MessageFactory

from .conftest import ApiClient, error_of

SEND = {"to": "+33612345678", "text": "Your table is ready"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_same_key_and_body_replays_the_first_answer_and_sends_nothing_new(api):
    first = api.post("/messages", SEND, headers=key("order-1"))
    again = api.post("/messages", SEND, headers=key("order-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Message.objects.count() == 1


def test_key_order_and_spacing_of_the_body_do_not_matter(api):
    api.post("/messages", SEND, headers=key("k"))
    again = api.post(
        "/messages", raw='{"text": "Your table is ready",  "to": "+33612345678"}', headers=key("k")
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1


def test_same_key_with_another_body_is_409_and_sends_nothing(api):
    api.post("/messages", SEND, headers=key("order-2"))
    other = api.post("/messages", {**SEND, "text": "Something else"}, headers=key("order-2"))
    assert other.status_code == 409
    error = error_of(other)
    assert error["code"] == "idempotency_conflict" and "Idempotency-Key" in error["fields"]
    assert Message.objects.count() == 1


def test_same_key_on_another_endpoint_is_409(api, account):
    message = MessageFactory(account=account)
    api.post("/messages", SEND, headers=key("k"))
    response = api.post(f"/messages/{message.pk}/cancel", headers=key("k"))
    assert response.status_code == 409
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED


def test_keys_are_scoped_per_api_key(client, api, account):
    other = ApiClient(client, ApiKeyFactory(account=account).secret)
    api.post("/messages", SEND, headers=key("shared"))
    response = other.post("/messages", SEND, headers=key("shared"))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Message.objects.count() == 2


def test_after_24_hours_the_key_runs_again(api):
    api.post("/messages", SEND, headers=key("old"))
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    response = api.post("/messages", SEND, headers=key("old"))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Message.objects.count() == 2


def test_a_refused_request_is_not_kept_so_it_can_be_corrected(api):
    bad = api.post("/messages", {**SEND, "to": "nope"}, headers=key("fix-me"))
    assert bad.status_code == 422
    good = api.post("/messages", SEND, headers=key("fix-me"))
    assert good.status_code == 201
    assert Message.objects.count() == 1


def test_a_409_answer_is_kept(api, account):
    message = MessageFactory(account=account, status=Message.Status.SENT)
    first = api.post(f"/messages/{message.pk}/cancel", headers=key("c"))
    Message.objects.filter(pk=message.pk).update(status=Message.Status.QUEUED)
    again = api.post(f"/messages/{message.pk}/cancel", headers=key("c"))
    assert first.status_code == again.status_code == 409
    assert again["Idempotent-Replayed"] == "true"
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED


@pytest.mark.parametrize("value", ["", "x" * 256, "clé", "   "])
def test_an_unusable_key_is_422(api, value):
    response = api.post("/messages", SEND, headers=key(value))
    assert response.status_code == 422
    assert error_of(response)["fields"] == {
        "Idempotency-Key": ["Use 1 to 255 printable ASCII characters, e.g. a UUID."]
    }
    assert not Message.objects.exists()


def test_the_database_refuses_a_second_record_for_a_key(api_key):
    IdempotencyRecord.objects.create(api_key=api_key, key="k", fingerprint="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyRecord.objects.create(api_key=api_key, key="k", fingerprint="a")


def test_purge_forgets_answers_older_than_24_hours(api_key):
    old = IdempotencyRecord.objects.create(
        api_key=api_key, key="old", fingerprint="a", created_at=timezone.now() - timedelta(days=2)
    )
    recent = IdempotencyRecord.objects.create(api_key=api_key, key="new", fingerprint="a")
    assert idempotency.purge() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_send_once(provider_account):
    account = AccountFactory(route=[provider_account])
    secret = ApiKeyFactory(account=account).secret
    many = {"to": [f"+3361234{n:04d}" for n in range(300)], "text": "Flash sale"}
    start = threading.Barrier(4)
    answers: list = []

    def send() -> None:
        start.wait()
        try:
            response = ApiClient(Client(), secret).post("/messages", many, headers=key("burst"))
            answers.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.content for a in answers}) == 1
    assert sum(1 for a in answers if "Idempotent-Replayed" in a) == 3
    assert Message.objects.filter(account=account).count() == 300
