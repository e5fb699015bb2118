"""The providers' documented callbacks, posted to the hub as their documentation shows them."""

import json

import pytest

from campaigns.models import Message

from ..conftest import apply_webhooks
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
