"""The webhook refusals every provider shares: 4xx, never 500, and nothing changed."""

import base64
import copy
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import Message, PendingDeliveryReport, Reply, WebhookRequest

from ..conftest import apply_webhooks
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


def sent_through(slug: str, credentials: dict | None = None):
    """A provider account of this kind, and a message sent through it (provider id "X1")."""
    provider_account = ProviderAccountFactory(
        slug=slug, credentials=CREDENTIALS[slug] | (credentials or {})
    )
    account = AccountFactory(route=[provider_account])
    message = MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="X1",
        status=Message.Status.SENT,
        recipient="+40740123456",
    )
    return provider_account, message


@pytest.fixture(
    params=[(slug, kind) for slug in SLUGS for kind in KINDS], ids=lambda p: f"{p[0]}-{p[1]}"
)
def endpoint(request):
    slug, kind = request.param
    basic_auth = {"webhook_username": "hub", "webhook_password": "pw"}
    provider_account, message = sent_through(slug, basic_auth)
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


# --- garbage bodies: 400 with the reason kept, never 500 --------------------------------------


@dataclass(frozen=True)
class Example:
    """A body the provider's adapter accepts, and where its garbage variants go."""

    body: dict
    form: bool = False
    text_field: tuple[str, ...] = ()  # a string the hub stores (an id, a reply's text)
    id_field: tuple[str, ...] = ()  # an id the hub stores in a column of limited length
    time_field: tuple[str, ...] = ()  # a time the hub stores, when the format has one


REPLY_FROM = "+40740123456"
FORM_REPORT = Example(
    {"MessageSid": "X1", "SmsStatus": "delivered"},
    form=True,
    text_field=("MessageSid",),
    id_field=("MessageSid",),
)
FORM_REPLY = Example(
    {"Body": "Thanks", "From": REPLY_FROM, "To": "2020", "SmsSid": "S1"},
    form=True,
    text_field=("Body",),
    id_field=("SmsSid",),
)
# Every (provider, kind) whose adapter reads a webhook, with a body it accepts.
EXAMPLES = {
    ("simulator", "dlr"): Example(
        {"id": "X1", "status": "delivered", "timestamp": "2026-01-02T03:04:05Z"},
        text_field=("id",),
        id_field=("id",),
        time_field=("timestamp",),
    ),
    ("simulator", "inbound"): Example(
        {"id": "S1", "from": REPLY_FROM, "to": "2020", "text": "Thanks", "in_reply_to": "X1"},
        text_field=("text",),
        id_field=("id",),
        time_field=("timestamp",),
    ),
    ("vortext", "inbound"): Example(
        {
            "response": {"content": "Thanks", "answeredAt": "2026-01-02T03:04:05.000+0200"},
            "message": {"messageId": "X1", "phoneNumber": REPLY_FROM},
        },
        text_field=("response", "content"),
        time_field=("response", "answeredAt"),
    ),
    ("smsadvert", "dlr"): Example(
        {"msgId": "X1", "status": "delivered"}, text_field=("msgId",), id_field=("msgId",)
    ),
    ("expertflow", "dlr"): FORM_REPORT,
    ("expertflow", "inbound"): FORM_REPLY,
    ("twilio", "dlr"): FORM_REPORT,
    ("twilio", "inbound"): FORM_REPLY,
}
DEEP = 50_000


def with_value(example: Example, path: tuple[str, ...], value) -> dict:
    body = copy.deepcopy(example.body)
    inner = body
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return body


def encoded(example: Example, body: dict) -> tuple[bytes, str]:
    if example.form:
        return urlencode(body).encode(), "application/x-www-form-urlencoded"
    return json.dumps(body).encode(), "application/json"


def nested_json(example: Example, depth: int) -> bytes:
    """The example with one more field holding `depth` nested lists: it parses, but deep."""
    deep = b"[" * depth + b"]" * depth
    return json.dumps(example.body)[:-1].encode() + b', "x": ' + deep + b"}"


def invalid_utf8(example: Example) -> tuple[bytes, str]:
    """Bytes that are not UTF-8: in a JSON string, or in a form field the adapter ignores."""
    if example.form:
        return encoded(example, example.body)[0] + b"&Note=caf\xe9\xff", encoded(example, {})[1]
    body, content_type = encoded(example, with_value(example, example.text_field, "X1@@"))
    return body.replace(b"@@", b"\xe9\xff"), content_type


# name → (body, content type) from the provider's example.
GARBAGE = {
    "deep-json-arrays": lambda ex: (b"[" * DEEP, "application/json"),
    "deep-json-objects": lambda ex: (b'{"a":' * DEEP, "application/json"),
    "deep-json-closed": lambda ex: (b"[" * DEEP + b"]" * DEEP, "application/json"),
    "deep-json-in-a-valid-body": lambda ex: (nested_json(ex, 990), "application/json"),
    "deep-xml": lambda ex: (b"<a>" * DEEP + b"</a>" * DEEP, "text/xml"),
    "deep-form-keys": lambda ex: (
        b"&".join(b"a" + b"[a]" * 100 + b"=%d" % i for i in range(1100)),
        "application/x-www-form-urlencoded",
    ),
    "invalid-utf8": lambda ex: invalid_utf8(ex),
    "a-number-not-an-object": lambda ex: (b"42", "application/json"),
    "a-huge-number": lambda ex: (b"1e999999", "application/json"),
    "a-huge-integer": lambda ex: (b"9" * 5000, "application/json"),
    "null-bytes": lambda ex: (b"\x00" * 64, "application/octet-stream"),
    "a-null-character-in-a-field": lambda ex: encoded(
        ex, with_value(ex, ex.text_field, "X1\x00Thanks")
    ),
    "an-id-too-long-to-keep": lambda ex: encoded(
        ex, with_value(ex, ex.id_field or ex.text_field, "X" * 5000)
    ),
}


def assert_refused_and_kept(response, kind: str) -> None:
    assert response.status_code == 400, response.content
    reason = response.json()["error"]
    assert reason
    log = WebhookRequest.objects.get()
    assert (log.kind, log.status, log.error) == (kind, WebhookRequest.Status.FAILED, reason)


@pytest.mark.parametrize(
    ("slug_kind", "garbage"),
    [
        (slug_kind, garbage)
        for slug_kind, example in EXAMPLES.items()
        for garbage in GARBAGE
        if example.id_field or garbage != "an-id-too-long-to-keep"
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else value,
)
def test_garbage_is_a_400_kept_with_its_reason_and_changes_nothing(client, slug_kind, garbage):
    slug, kind = slug_kind
    example = EXAMPLES[slug_kind]
    provider_account, message = sent_through(slug)
    url = provider_account.webhook_url(kind)
    body, content_type = GARBAGE[garbage](example)

    response = client.post(url, data=body, content_type=content_type)

    if example.form and garbage == "invalid-utf8":
        # Form fields are decoded as Django decodes them, a byte that is not UTF-8 as U+FFFD;
        # here in a field the adapter ignores: the report or reply is taken as it is.
        assert response.status_code == 200, response.content
        return
    assert_refused_and_kept(response, kind)
    apply_webhooks()  # a worker reading it again changes nothing either, and does not crash
    assert_nothing_changed(message)
    assert WebhookRequest.objects.get().status == WebhookRequest.Status.FAILED
    # The example itself is accepted: only the garbage was refused.
    body, content_type = encoded(example, example.body)
    assert client.post(url, data=body, content_type=content_type).status_code == 200
    apply_webhooks()
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED or Reply.objects.exists()


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
@pytest.mark.parametrize(
    "slug_kind", [key for key, example in EXAMPLES.items() if example.time_field], ids="-".join
)
def test_a_reported_time_out_of_range_becomes_the_time_received(client, slug_kind, when):
    slug, kind = slug_kind
    example = EXAMPLES[slug_kind]
    provider_account, message = sent_through(slug)
    body, content_type = encoded(example, with_value(example, example.time_field, when))
    before = timezone.now()

    response = client.post(provider_account.webhook_url(kind), data=body, content_type=content_type)
    apply_webhooks()

    assert response.status_code == 200, response.content
    assert WebhookRequest.objects.get().status == WebhookRequest.Status.APPLIED
    message.refresh_from_db()
    at = message.delivered_at if kind == "dlr" else Reply.objects.get().received_at
    assert before <= at <= timezone.now()
