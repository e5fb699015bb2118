"""The webhook refusals every provider shares: 4xx, never 500, and nothing changed."""

import base64
import json

import pytest
from django.conf import settings

from campaigns.models import Message, PendingDeliveryReport, Reply

from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

SLUGS = sorted(settings.SMSHUB_PROVIDERS)
KINDS = ["dlr", "inbound"]
CREDENTIALS = {
    "simulator": {"api_key": "k"},
    "vortext": {"username": "u", "password": "p"},
    "primotexto": {"api_key": "k"},
    "smsadvert": {"token": "t"},
    "expertflow": {"channel": "sms"},
    "ogangi": {"instance_id": "1", "public_key": "pub", "private_key": "priv"},
    "twilio": {},
}


@pytest.fixture(
    params=[(slug, kind) for slug in SLUGS for kind in KINDS], ids=lambda p: f"{p[0]}-{p[1]}"
)
def endpoint(request):
    slug, kind = request.param
    provider_account = ProviderAccountFactory(
        slug=slug,
        credentials=CREDENTIALS[slug] | {"webhook_username": "hub", "webhook_password": "pw"},
    )
    account = AccountFactory(route=[provider_account])
    message = MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="X1",
        status=Message.Status.SENT,
        recipient="+40740123456",
    )
    return provider_account, provider_account.webhook_url(kind), message


AUTH = {"Authorization": "Basic " + base64.b64encode(b"hub:pw").decode()}


def assert_nothing_changed(message):
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert not Reply.objects.exists()
    assert not PendingDeliveryReport.objects.exists()


def test_wrong_token(client, endpoint):
    provider_account, url, message = endpoint
    url = url.replace(provider_account.webhook_token, "x" * 43)
    assert client.post(url, {"MessageSid": "X1"}, headers=AUTH).status_code == 404
    assert_nothing_changed(message)


@pytest.mark.parametrize("auth", [None, "Basic " + base64.b64encode(b"hub:nope").decode(), "x"])
def test_missing_or_bad_basic_auth(client, endpoint, auth):
    _, url, message = endpoint
    headers = {"Authorization": auth} if auth else {}
    assert client.post(url, {"MessageSid": "X1"}, headers=headers).status_code == 401
    assert_nothing_changed(message)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method(client, endpoint, method):
    _, url, message = endpoint
    assert getattr(client, method)(url, headers=AUTH).status_code == 405
    assert_nothing_changed(message)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"status": "delivered", "msgId": ', "application/json"),  # malformed JSON
        ("%%%&&&===", "application/x-www-form-urlencoded"),  # malformed form
        ("<xml>delivered</xml>", "text/xml"),  # wrong content type
        ("", "application/json"),
        ("[]", "application/json"),
        ('{"unexpected": true}', "application/json"),
        ("\xff\xfe", "application/octet-stream"),
    ],
)
def test_malformed_bodies_are_a_400(client, endpoint, body, content_type):
    _, url, message = endpoint
    response = client.post(url, data=body, content_type=content_type, headers=AUTH)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert_nothing_changed(message)


def test_oversized_body(client, endpoint):
    _, url, message = endpoint
    body = json.dumps({"msgId": "X1", "status": "delivered", "pad": "x" * (1024 * 1024)})
    response = client.post(url, data=body, content_type="application/json", headers=AUTH)
    assert response.status_code == 413
    assert_nothing_changed(message)
