"""The Vortext (Cegedim) adapter against the wire protocol of its doc (vortext-cegedim.txt)."""

import base64
import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.test import RequestFactory

from providers.events import DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ProviderConfigurationError,
    ProviderRejected,
    ProviderTemporaryError,
    ProviderThrottled,
    WebhookValidationError,
)
from providers.vortext import VortextProvider

BASE = "https://messages.cloud.cegedim.com"
CREDENTIALS = {"username": "acme-sms", "password": "s3cret-pass"}
BASIC = "Basic " + base64.b64encode(b"acme-sms:s3cret-pass").decode()

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


@pytest.mark.parametrize(
    ("mock", "error_class", "retryable", "words"),
    [
        pytest.param(
            {
                "status": 400,
                "json": {
                    "timestamp": "2016-06-01T12:27:19.000+0200",
                    "status": 400,
                    "error": "Bad Request",
                    "message": "phoneNumber is not valid",
                    "path": "/sms",
                },
            },
            ProviderRejected,
            False,
            ["HTTP 400", "Bad Request", "phoneNumber is not valid"],
            id="400-json-error",
        ),
        pytest.param(
            {"status": 400, "body": "invalid request"},
            ProviderRejected,
            False,
            ["HTTP 400", "invalid request"],
            id="400-text",
        ),
        pytest.param(
            {"status": 401, "body": ""},
            ProviderRejected,
            False,
            ["HTTP 401", "username and password"],
            id="401",
        ),
        pytest.param(
            {"status": 403, "json": {"error": "Forbidden"}},
            ProviderRejected,
            False,
            ["HTTP 403", "not allowed", "Forbidden"],
            id="403",
        ),
        pytest.param(
            {"status": 429, "body": "too many requests", "headers": {"Retry-After": "30"}},
            ProviderThrottled,
            True,
            ["429", "too many requests"],
            id="429",
        ),
        pytest.param(
            {"status": 500, "body": "Internal Server Error"},
            ProviderTemporaryError,
            True,
            ["HTTP 500", "Internal Server Error"],
            id="500",
        ),
        pytest.param(
            {"status": 503, "json": {"error": "Service Unavailable"}},
            ProviderTemporaryError,
            True,
            ["HTTP 503", "Service Unavailable"],
            id="503",
        ),
        pytest.param(
            {"body": requests.exceptions.ReadTimeout("read timed out")},
            ProviderTemporaryError,
            True,
            ["timed out", "messages.cloud.cegedim.com"],
            id="read-timeout",
        ),
        pytest.param(
            {"body": requests.exceptions.ConnectTimeout("connect timed out")},
            ProviderTemporaryError,
            True,
            ["timed out", "messages.cloud.cegedim.com"],
            id="connect-timeout",
        ),
        pytest.param(
            {"body": requests.exceptions.ConnectionError("Connection refused")},
            ProviderTemporaryError,
            True,
            ["could not reach", "messages.cloud.cegedim.com"],
            id="connection-refused",
        ),
        pytest.param(
            {"status": 200, "body": "<html>maintenance</html>"},
            ProviderRejected,
            False,
            ["unreadable", "Vortext", "messageId", "maintenance"],
            id="200-garbage",
        ),
        pytest.param(
            {"status": 200, "json": {"status": "OK"}},
            ProviderRejected,
            False,
            ["unreadable", "messageId"],
            id="200-without-message-id",
        ),
        pytest.param(
            {"status": 200, "json": {"messageId": ""}},
            ProviderRejected,
            False,
            ["unreadable", "messageId"],
            id="200-empty-message-id",
        ),
        pytest.param(
            {"status": 200, "json": ["5e43f5b2a7b11b0001c6a1f2"]},
            ProviderRejected,
            False,
            ["unreadable", "messageId"],
            id="200-list",
        ),
    ],
)
def test_send_failures(provider, sms, mock, error_class, retryable, words):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(f"{BASE}/sms", **mock)
        with pytest.raises(error_class) as caught:
            provider.send(sms)
    error = caught.value
    assert type(error) is error_class
    assert error.retryable is retryable
    for word in words:
        assert word in error.message
    assert "s3cret-pass" not in error.message


def test_throttled_send_says_when_to_retry(provider, sms):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(f"{BASE}/sms", status=429, body="slow down", headers={"Retry-After": "30"})
        with pytest.raises(ProviderThrottled) as caught:
            provider.send(sms)
    assert caught.value.retry_after == 30.0


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


@pytest.mark.parametrize(
    ("mock", "error_class", "words"),
    [
        pytest.param({"status": 401, "body": ""}, ProviderRejected, ["username and password"]),
        pytest.param({"status": 503, "body": "down"}, ProviderTemporaryError, ["HTTP 503"]),
        pytest.param(
            {"body": requests.exceptions.ConnectionError("refused")},
            ProviderTemporaryError,
            ["could not reach"],
        ),
    ],
)
def test_check_failures(provider, mock, error_class, words):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(f"{BASE}/status", **mock)
        with pytest.raises(error_class) as caught:
            provider.check()
    for word in words:
        assert word in caught.value.message


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
        pytest.param({"response": REPLY["response"]}, "'message'", id="no-message"),
        pytest.param({**REPLY, "message": {}}, "phoneNumber", id="empty-message"),
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
