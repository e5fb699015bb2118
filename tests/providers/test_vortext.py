"""The Vortext (Cegedim) adapter against the wire protocol of its doc (vortext-cegedim.txt)."""

import base64
import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.test import RequestFactory

from campaigns.models import Reply
from providers.events import DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ProviderAccountError,
    ProviderConfigurationError,
    ProviderRejected,
    WebhookValidationError,
)
from providers.vortext import VortextProvider, parse_vortext_datetime

from ..conftest import apply_webhooks, dispatch_batch
from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory
from .http_cases import Answer, ProviderHTTPCases
from .test_simulator_server import wait_for

BASE = "https://messages.cloud.cegedim.com"
CREDENTIALS = {"username": "acme-sms", "password": "s3cret-pass"}
BASIC = "Basic " + base64.b64encode(b"acme-sms:s3cret-pass").decode()

# The error body of a Spring (Java) REST service, the usual shape (the doc documents none).
SPRING_ERROR = {
    "timestamp": "2016-06-01T12:27:19.000+0200",
    "status": 400,
    "error": "Bad Request",
    "message": "phoneNumber is not valid",
    "path": "/sms",
}

# The doc's reply push, with the original message filled in with the send's field names.
REPLY = {
    "response": {
        "content": "Response of your customer",
        "answeredAt": "2020-02-12T13:00:00.000+0000",
    },
    "message": {
        "messageId": "5e43f5b2a7b11b0001c6a1f2",
        "phoneNumber": "+33612345678",
        "message": "Votre rendez-vous est confirmé pour demain 10h. Répondez OUI ou NON.",
    },
}


@pytest.fixture
def provider() -> VortextProvider:
    return VortextProvider(base_url=BASE, credentials=dict(CREDENTIALS))


@pytest.fixture
def sms() -> OutboundSMS:
    return OutboundSMS(
        to="+33612345678",
        text="Votre rendez-vous est confirmé pour demain 10h. Répondez OUI ou NON.",
        reference="42",
        sender="CABINET",
        callback_url="https://hub.example.org/hooks/vortext/tok/dlr/",
        campaign_name="Rappels",
        category="rdv",
    )


def post_json(body) -> object:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return RequestFactory().post(
        "/hooks/vortext/token/inbound/", data=raw, content_type="application/json"
    )


# --- the adapter as the admin sees it ----------------------------------------------------------
def test_declares_credentials_base_url_and_help():
    assert VortextProvider.slug == "vortext"
    assert VortextProvider.default_base_url == "https://messages.cloud.cegedim.com"
    assert VortextProvider.required_credentials == ("username", "password")
    assert VortextProvider.secret_credentials == frozenset({"password"})
    assert "username" in VortextProvider.credentials_help
    assert "password" in VortextProvider.credentials_help
    assert VortextProvider.missing_credentials({"username": "x"}) == ["password"]


# --- sending ------------------------------------------------------------------------------------
def test_send_makes_the_exact_request_and_reads_message_id(provider, sms):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(f"{BASE}/sms", json={"messageId": "5e43f5b2a7b11b0001c6a1f2"}, status=200)
        result = provider.send(sms)

        assert len(rsps.calls) == 1
        sent = rsps.calls[0].request
    assert sent.method == "POST"
    assert sent.url == "https://messages.cloud.cegedim.com/sms"
    assert sent.headers["Authorization"] == BASIC
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    # Only the two documented fields: the per-message sender (and everything else) is not sent.
    assert json.loads(sent.body) == {
        "phoneNumber": "+33612345678",
        "message": "Votre rendez-vous est confirmé pour demain 10h. Répondez OUI ou NON.",
    }
    assert result == SendResult(
        provider_message_id="5e43f5b2a7b11b0001c6a1f2",
        status=DeliveryStatus.SENT,
        cost=None,
        raw={"messageId": "5e43f5b2a7b11b0001c6a1f2"},
    )


def test_send_uses_the_provider_accounts_base_url(sms):
    provider = VortextProvider(base_url="http://127.0.0.1:8765/", credentials=CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post("http://127.0.0.1:8765/sms", json={"messageId": 987654}, status=201)
        result = provider.send(sms)
    assert result.provider_message_id == "987654"


class TestVortextHTTP(ProviderHTTPCases):
    """The doc documents no error answers: these are the readings where it is silent."""

    send_endpoint = ("POST", f"{BASE}/sms")
    check_endpoint = ("GET", f"{BASE}/status")
    secrets = ("s3cret-pass",)
    send_errors = [
        Answer(
            "400-json-error",
            {"status": 400, "json": SPRING_ERROR},
            ProviderRejected,
            ("Vortext (Cegedim) refused the request (HTTP 400)", "phoneNumber is not valid"),
        ),
        Answer("400-text", {"status": 400, "body": "invalid request"}, ProviderRejected),
        Answer(
            "401-json",
            {"status": 401, "json": {"error": "Unauthorized"}},
            ProviderAccountError,
            ("username and password were not accepted", "Unauthorized"),
        ),
        Answer(
            "403-json",
            {"status": 403, "json": {"error": "Forbidden"}},
            ProviderAccountError,
            ("not allowed", "Forbidden"),
        ),
        Answer(
            "402",
            {"status": 402, "body": "Payment Required"},
            ProviderAccountError,
            ("Vortext (Cegedim) refused the provider account (HTTP 402)",),
        ),
        Answer(
            "404-wrong-base-url",
            {"status": 404, "body": "Not Found"},
            ProviderAccountError,
            ("refused the provider account (HTTP 404)", "/sms not found", "check the base URL"),
        ),
        Answer(
            "200-garbage",
            {"status": 200, "body": "<html>maintenance</html>"},
            ProviderRejected,
            ("unreadable", "Vortext", "messageId", "maintenance"),
        ),
        Answer(
            "200-without-message-id",
            {"status": 200, "json": {"status": "OK"}},
            ProviderRejected,
            ("unreadable", "messageId"),
        ),
        Answer(
            "200-empty-message-id",
            {"status": 200, "json": {"messageId": ""}},
            ProviderRejected,
            ("unreadable",),
        ),
        Answer(
            "200-list",
            {"status": 200, "json": ["5e43f5b2a7b11b0001c6a1f2"]},
            ProviderRejected,
            ("unreadable",),
        ),
    ]
    check_errors = [
        Answer(
            "401",
            {"status": 401, "body": ""},
            ProviderAccountError,
            ("username and password were not accepted",),
        ),
        Answer(
            "404-wrong-base-url",
            {"status": 404, "body": ""},
            ProviderAccountError,
            ("/status not found", "check the base URL"),
        ),
    ]

    def provider(self) -> VortextProvider:
        return VortextProvider(base_url=BASE, credentials=dict(CREDENTIALS))

    def sms(self) -> OutboundSMS:
        return OutboundSMS(to="+33612345678", text="Votre rendez-vous est confirmé.")


# --- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        pytest.param({"text": ""}, ["text is empty"], id="empty-text"),
        pytest.param({"to": "0612345678"}, ["international format", "0612345678"], id="national"),
        pytest.param({"to": "33612345678"}, ["international format", "+"], id="no-plus"),
        pytest.param({"to": "+33 6 12 34 56 78"}, ["international format"], id="spaces"),
        pytest.param({"to": ""}, ["international format"], id="no-number"),
    ],
)
def test_validate_refuses_before_any_call(provider, sms, changes, words):
    refused = OutboundSMS(**{**sms.__dict__, **changes})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderRejected) as caught:
            provider.send(refused)
        assert len(rsps.calls) == 0
    assert caught.value.retryable is False
    for word in words:
        assert word in caught.value.message


def test_missing_credentials_are_a_configuration_error_before_any_call(sms):
    provider = VortextProvider(base_url=BASE, credentials={"username": "acme-sms"})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderConfigurationError, match="password"):
            provider.send(sms)
        assert len(rsps.calls) == 0


# --- check --------------------------------------------------------------------------------------
def test_check_calls_status_with_credentials(provider):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(f"{BASE}/status", json={"status": "UP"}, status=200)
        description = provider.check()
        sent = rsps.calls[0].request
    assert sent.method == "GET"
    assert sent.url == "https://messages.cloud.cegedim.com/status"
    assert sent.headers["Authorization"] == BASIC
    assert sent.headers["Accept"] == "application/json"
    assert "messages.cloud.cegedim.com" in description
    assert "/status" in description


# --- replies (MO) pushed by Vortext ------------------------------------------------------------
def test_parse_inbound_reads_the_docs_reply(provider):
    replies = provider.parse_inbound(post_json(REPLY))
    assert replies == [
        InboundSMS(
            from_number="+33612345678",
            to_number="",
            text="Response of your customer",
            provider_message_id="",
            in_reply_to="5e43f5b2a7b11b0001c6a1f2",
            received_at=datetime(2020, 2, 12, 13, 0, tzinfo=UTC),
        )
    ]
    assert replies[0].raw == REPLY


@pytest.mark.parametrize(
    ("answered_at", "expected"),
    [
        ("2016-06-01T12:27:19.000+0200", datetime(2016, 6, 1, 10, 27, 19, tzinfo=UTC)),
        ("2016-06-01T12:27:19.000-0130", datetime(2016, 6, 1, 13, 57, 19, tzinfo=UTC)),
        ("2016-06-01T12:27:19.000+02:00", datetime(2016, 6, 1, 10, 27, 19, tzinfo=UTC)),
        ("2016-06-01T12:27:19Z", datetime(2016, 6, 1, 12, 27, 19, tzinfo=UTC)),
        ("2016-06-01T12:27:19.000", datetime(2016, 6, 1, 12, 27, 19, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_inbound_reads_dates_with_their_offset(provider, answered_at, expected):
    body = {**REPLY, "response": {"content": "OUI", "answeredAt": answered_at}}
    (reply,) = provider.parse_inbound(post_json(body))
    assert reply.received_at == expected
    if expected is not None:
        assert reply.received_at.utcoffset() is not None


def test_parse_inbound_with_numeric_id_and_no_number(provider):
    body = {"response": {"content": "NON 👎"}, "message": {"id": 1234}}
    (reply,) = provider.parse_inbound(post_json(body))
    assert reply.in_reply_to == "1234"
    assert reply.from_number == ""
    assert reply.text == "NON 👎"
    assert reply.received_at is None


def test_parse_inbound_with_number_only(provider):
    body = {"response": {"content": "STOP"}, "message": {"phoneNumber": "+33612345678"}}
    (reply,) = provider.parse_inbound(post_json(body))
    assert reply.from_number == "+33612345678"
    assert reply.in_reply_to == ""


# The doc's reply example, byte for byte: "message" names neither the number nor the message.
DOC_REPLY = (
    '{ "response": { "content": "Response of your customer", '
    '"answeredAt" : "2020-02-12T13:00:00.000+0000" }, "message": { }}'
)


def test_parse_inbound_keeps_the_docs_own_example_from_an_unknown_number(provider):
    (reply,) = provider.parse_inbound(post_json(DOC_REPLY))
    assert reply == InboundSMS(
        from_number="",
        to_number="",
        text="Response of your customer",
        in_reply_to="",
        received_at=datetime(2020, 2, 12, 13, 0, tzinfo=UTC),
    )
    assert reply.raw == json.loads(DOC_REPLY)


@pytest.mark.parametrize(
    "original",
    [
        pytest.param({"message": None}, id="null"),
        pytest.param({}, id="absent"),
        pytest.param({"message": {"message": "Venez-vous ?", "phoneNumber": ""}}, id="no-number"),
    ],
)
def test_parse_inbound_without_number_or_id_is_an_unknown_number(provider, original):
    body = {"response": REPLY["response"], **original}
    (reply,) = provider.parse_inbound(post_json(body))
    assert (reply.from_number, reply.in_reply_to) == ("", "")
    assert reply.text == "Response of your customer"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        pytest.param("not json", "not JSON", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", "not JSON", id="not-utf8"),
        pytest.param("[" * 100_000 + "]" * 100_000, "not JSON", id="too-deep"),
        pytest.param([REPLY], "not a JSON object", id="list"),
        pytest.param({"message": REPLY["message"]}, "'response'", id="no-response"),
        pytest.param({**REPLY, "response": "OUI"}, "'response'", id="response-not-object"),
        pytest.param(
            {**REPLY, "response": {"answeredAt": "2020-02-12T13:00:00.000+0000"}},
            "response.content",
            id="no-content",
        ),
        pytest.param({**REPLY, "message": "+33612345678"}, "'message'", id="message-not-object"),
        pytest.param({**REPLY, "message": [REPLY["message"]]}, "'message'", id="message-list"),
        pytest.param(
            {**REPLY, "response": {"content": "OUI", "answeredAt": "yesterday"}},
            "answeredAt",
            id="bad-date",
        ),
        pytest.param(
            {**REPLY, "response": {"content": "OUI", "answeredAt": "2020-13-45T13:00:00+0000"}},
            "answeredAt",
            id="impossible-date",
        ),
        pytest.param(
            {**REPLY, "response": {"content": "OUI", "answeredAt": 1581512400000}},
            "answeredAt",
            id="date-as-number",
        ),
    ],
)
def test_parse_inbound_refuses_malformed_payloads(provider, raw, words):
    with pytest.raises(WebhookValidationError) as caught:
        provider.parse_inbound(post_json(raw))
    assert words in str(caught.value)


def test_vortext_pushes_no_delivery_reports(provider):
    with pytest.raises(WebhookValidationError, match="does not send delivery reports"):
        provider.parse_delivery_reports(post_json({"messageId": "1", "status": "DELIVERED"}))


# --- against the simulator's fake, in each reading the doc allows ------------------------------
# The doc shows the push's "message" as "{ }": the fake sends it in each reading (the send
# answer, the send request's fields, or nothing at all) and the adapter must read each.
EXPECTED_REPLY = {  # reading → (number known, message id known)
    "send_answer": (True, True),
    "send_request": (True, False),
    "empty": (False, False),
}


@pytest.mark.parametrize("reading", list(EXPECTED_REPLY))
def test_the_adapter_reads_the_fakes_reply_in_every_reading(sim, hub, reading):
    sim.configure(credentials={"vortext": {"reply_message": reading}})
    adapter = VortextProvider(
        base_url=sim.url, credentials={"username": "vortext", "password": "vortext-secret"}
    )
    sent = adapter.send(OutboundSMS(to="+33612345678", text="Venez-vous demain ?"))
    injected = requests.post(
        f"{sim.url}/_simulator/replies",
        json={"provider": "vortext", "from": "+33612345678", "text": "Oui"},
        timeout=5,
    )
    assert injected.status_code == 202

    [push] = wait_for(lambda: hub.received("vortext", "inbound"))
    if reading == "empty":
        assert push["body"]["message"] == {}  # the doc's own example
    (reply,) = adapter.parse_inbound(post_json(push["body"]))
    number_known, id_known = EXPECTED_REPLY[reading]
    assert reply.from_number == ("+33612345678" if number_known else "")
    assert reply.in_reply_to == (sent.provider_message_id if id_known else "")
    assert reply.text == "Oui"
    assert reply.received_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("reading", list(EXPECTED_REPLY))
def test_every_reading_of_a_reply_lands_in_the_hub(sim, hub, client, reading):
    """Sent by the hub through the fake, answered, pushed, relayed to the hub's own webhook:
    the reply is threaded when the push names the number, else kept from an unknown number
    for the one account sending through that provider account."""
    sim.configure(credentials={"vortext": {"reply_message": reading}})
    provider_account = ProviderAccountFactory(
        slug="vortext",
        base_url=sim.url,
        credentials={"username": "vortext", "password": "vortext-secret"},
    )
    account = AccountFactory(route=[provider_account])
    message = MessageFactory(account=account, recipient="+33612349999", text="Venez-vous ?")
    dispatch_batch()  # numbers ending in 9999 answer by themselves
    message.refresh_from_db()
    assert message.status == "sent"

    [push] = wait_for(lambda: hub.received("vortext", "inbound"), timeout=10)
    response = client.post(
        provider_account.webhook_url("inbound"),
        data=json.dumps(push["body"]),
        content_type="application/json",
    )
    assert response.status_code == 200
    apply_webhooks()

    reply = Reply.objects.get()
    assert reply.account == account
    assert reply.text == sim.auto_reply_text
    number_known, _ = EXPECTED_REPLY[reading]
    if number_known:
        assert (reply.from_number, reply.message) == ("+33612349999", message)
    else:
        assert (reply.from_number, reply.message) == ("", None)
        answered_at = push["body"]["response"]["answeredAt"]
        assert reply.received_at == parse_vortext_datetime(answered_at, "answeredAt")
