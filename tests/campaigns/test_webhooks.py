import json

import pytest

from campaigns.models import Message

from ..factories import MessageFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def sent(account, provider_account):
    return MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="sim-1",
        status=Status.SENT,
    )


def test_a_delivery_report_marks_the_message_delivered(client, sent, provider_account):
    response = post(
        client,
        provider_account.webhook_url("dlr"),
        {"id": "sim-1", "status": "delivered", "timestamp": "2026-11-21T10:00:00Z"},
    )
    assert response.status_code == 200
    assert response.json() == {"received": 1, "applied": 1}
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    assert sent.delivered_at.isoformat() == "2026-11-21T10:00:00+00:00"
    event = sent.events.get()
    assert (event.from_status, event.to_status, event.source) == ("sent", "delivered", "webhook")
    assert event.payload["id"] == "sim-1"


def test_the_same_report_twice_changes_nothing(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    post(client, url, {"id": "sim-1", "status": "delivered"})
    second = post(client, url, {"id": "sim-1", "status": "delivered"})
    assert second.json() == {"received": 1, "applied": 0}
    assert sent.events.count() == 1


def test_a_late_sent_never_overwrites_delivered(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    post(client, url, {"id": "sim-1", "status": "delivered"})
    post(client, url, {"id": "sim-1", "status": "accepted"})
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED


def test_an_undelivered_report_keeps_the_error_code(client, sent, provider_account):
    post(
        client,
        provider_account.webhook_url("dlr"),
        {"id": "sim-1", "status": "undelivered", "error_code": "UNREACHABLE"},
    )
    sent.refresh_from_db()
    assert sent.status == Status.UNDELIVERED
    assert sent.error_code == "UNREACHABLE"


def test_a_wrong_token_is_404_and_changes_nothing(client, sent, provider_account):
    url = provider_account.webhook_url("dlr").replace(provider_account.webhook_token, "guess")
    assert post(client, url, {"id": "sim-1", "status": "delivered"}).status_code == 404
    sent.refresh_from_db()
    assert sent.status == Status.SENT


def test_a_disabled_provider_account_gets_no_webhooks(client, sent, provider_account):
    provider_account.enabled = False
    provider_account.save()
    assert (
        post(
            client, provider_account.webhook_url("dlr"), {"id": "sim-1", "status": "delivered"}
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "not JSON"),
        ({"status": "delivered"}, "needs 'id' and 'status'"),
        ({"id": "sim-1", "status": "exploded"}, "unknown simulator status"),
        ([1, 2], "needs 'id' and 'status'"),
    ],
)
def test_a_malformed_report_is_a_400_not_a_500(client, sent, provider_account, body, error):
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post(
        provider_account.webhook_url("dlr"), data=data, content_type="application/json"
    )
    assert response.status_code == 400
    assert error in response.json()["error"]
    sent.refresh_from_db()
    assert sent.status == Status.SENT


def test_only_post_is_accepted(client, provider_account):
    assert client.get(provider_account.webhook_url("dlr")).status_code == 405
