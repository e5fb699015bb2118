"""The providers' documented callbacks, posted to the hub as their documentation shows them."""

import json

import pytest

from campaigns.models import Message

from ..conftest import apply_webhooks, dispatch_batch
from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def sent_through(slug, credentials, provider_message_id):
    provider_account = ProviderAccountFactory(slug=slug, credentials=credentials)
    message = MessageFactory(
        account=AccountFactory(route=[provider_account]),
        provider_account=provider_account,
        provider_message_id=provider_message_id,
        status=Status.SENT,
    )
    return provider_account, message


@pytest.mark.parametrize(("word", "status"), [("delivered", "delivered"), ("failed", "failed")])
def test_smsadvert_callback_from_its_documentation(client, word, status):
    provider_account, message = sent_through("smsadvert", {"token": "t"}, "xxxxxx")
    response = client.post(
        provider_account.webhook_url("dlr"),
        data=json.dumps({"status": word, "msgId": "xxxxxx"}),
        content_type="application/json",
    )
    assert response.status_code == 200
    apply_webhooks()
    message.refresh_from_db()
    assert message.status == status


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"MessageSid": "SM1", "SmsStatus": "delivered"}, "delivered"),
        ({"MessageSid": "SM1", "SmsStatus": "undelivered"}, "undelivered"),
        ({"MessageSid": "SM1", "MessageStatus": "failed"}, "failed"),
        ({"MessageSid": "SM1", "SmsStatus": "sent"}, "sent"),
    ],
)
def test_expertflow_twilio_style_status_form(client, form, status):
    provider_account, message = sent_through("expertflow", {"channel": "smpp"}, "SM1")
    response = client.post(provider_account.webhook_url("dlr"), form)
    assert response.status_code == 200
    apply_webhooks()
    message.refresh_from_db()
    assert message.status == status


def test_any_twilio_style_gateway(client):
    provider_account, message = sent_through("twilio", {}, "SM77")
    client.post(
        provider_account.webhook_url("dlr"), {"MessageSid": "SM77", "SmsStatus": "delivered"}
    )
    client.post(
        provider_account.webhook_url("inbound"),
        {"Body": "Thanks", "From": message.recipient, "To": "2020", "SmsSid": "SM78"},
    )
    apply_webhooks()
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.replies.get().text == "Thanks"


def test_a_twilio_style_account_in_a_route_is_put_on_hold_with_a_reason(db):
    """A receive-only account in a sending route is a configuration problem of the route, not of
    the message: the account is held with the reason, its messages wait or fail over."""

    provider_account, _ = sent_through("twilio", {}, "SM79")
    queued = MessageFactory(account=provider_account.routed_accounts.get())
    dispatch_batch()
    queued.refresh_from_db()
    assert queued.status == "queued"
    assert "only receives callbacks" in queued.error_reason
    provider_account.refresh_from_db()
    assert "only receives callbacks" in provider_account.hold_reason
