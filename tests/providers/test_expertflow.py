"""The Expertflow SMS Connector adapter against its doc (expertflow-sms-connector.txt)."""

import base64
import json
from urllib.parse import urlencode

import pytest
import requests
import responses
from django.test import RequestFactory

from campaigns.models import Message, PendingDeliveryReport, WebhookRequest
from campaigns.services.compose import enqueue_message
from providers.events import DeliveryReport, DeliveryStatus, InboundSMS, OutboundSMS, SendResult
from providers.exceptions import (
    ProviderAccountError,
    ProviderConfigurationError,
    ProviderRejected,
    ProviderTemporaryError,
    WebhookValidationError,
)
from providers.expertflow import (
    ExpertflowProvider,
    parse_queue_report,
    parse_twilio_inbound,
    parse_twilio_status,
)
from providers.twilio import TwilioStyleProvider

from ..conftest import apply_webhooks, dispatch_batch
from ..factories import AccountFactory, ProviderAccountFactory
from .http_cases import Answer, ProviderHTTPCases
from .test_simulator_server import wait_for

# The doc's example host (the connector is self-hosted: there is no production URL).
BASE = "http://localhost:8080"
SEND_URL = f"{BASE}/msg-client/send"
CREDENTIALS = {"channel": "smpp", "username": "hub", "password": "c0nnector-pass"}
BASIC = "Basic " + base64.b64encode(b"hub:c0nnector-pass").decode()

# The doc's send example, field for field: {"To": "string", "Body": "string", "From": "string",
# "channel": "smpp"}.
DOC_SMS = OutboundSMS(to="string", text="string", sender="string", reference="42")
DOC_BODY = {"To": "string", "Body": "string", "From": "string", "channel": "smpp"}


@pytest.fixture
def provider() -> ExpertflowProvider:
    return ExpertflowProvider(base_url=BASE, credentials=dict(CREDENTIALS))


def urlencoded(data: dict[str, str]) -> object:
    """A form-encoded request, as the connector's gateways send (RequestFactory's default is
    multipart)."""
    return RequestFactory().post(
        "/hooks/expertflow/token/dlr/",
        data=urlencode(data),
        content_type="application/x-www-form-urlencoded",
    )


# --- the adapter as the admin sees it ----------------------------------------------------------
def test_declares_credentials_base_url_and_help():
    assert ExpertflowProvider.slug == "expertflow"
    assert ExpertflowProvider.default_base_url == "http://localhost:8080"
    assert ExpertflowProvider.required_credentials == ("channel",)
    assert ExpertflowProvider.secret_credentials == frozenset({"password"})
    for key in ("channel", "username", "password"):
        assert key in ExpertflowProvider.credentials_help
    assert ExpertflowProvider.missing_credentials({}) == ["channel"]
    assert ExpertflowProvider.missing_credentials({"channel": "smpp"}) == []


# --- sending ------------------------------------------------------------------------------------
def test_send_makes_the_docs_exact_request_with_basic_auth(provider):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(SEND_URL, body="", status=200)
        result = provider.send(DOC_SMS)
        assert len(rsps.calls) == 1
        sent = rsps.calls[0].request
    assert sent.method == "POST"
    assert sent.url == SEND_URL
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == BASIC
    assert json.loads(sent.body) == DOC_BODY
    # 200 with no content: queued at the connector, and no id comes back.
    assert result == SendResult(
        provider_message_id="",
        status=DeliveryStatus.SENT,
        raw={"http_status": 200, "body": "", "reference": "42"},
    )


def test_send_without_sender_omits_from_and_without_credentials_omits_auth():
    provider = ExpertflowProvider(base_url=BASE, credentials={"channel": "whatsapp"})
    sms = OutboundSMS(to="+923001234567", text="Your ticket 123 is resolved.", reference="7")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(SEND_URL, status=200)
        provider.send(sms)
        sent = rsps.calls[0].request
    assert json.loads(sent.body) == {
        "To": "+923001234567",
        "Body": "Your ticket 123 is resolved.",
        "channel": "whatsapp",
    }
    assert "Authorization" not in sent.headers


def test_base_url_is_configurable_and_trailing_slash_is_ignored():
    provider = ExpertflowProvider(
        base_url="https://sms.example.org:8443/", credentials={"channel": "smpp"}
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post("https://sms.example.org:8443/msg-client/send", status=200)
        provider.send(DOC_SMS)
        assert rsps.calls[0].request.url == "https://sms.example.org:8443/msg-client/send"


@pytest.mark.parametrize(
    ("answer", "expected_id"),
    [
        (
            {"MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f"},
            "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        ),
        ({"MessageSID": 90210}, "90210"),
        ({"status": "queued"}, ""),
        ([], ""),
    ],
)
def test_a_json_answer_is_accepted_and_an_id_in_it_is_used(provider, answer, expected_id):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(SEND_URL, json=answer, status=200)
        result = provider.send(DOC_SMS)
    assert result.provider_message_id == expected_id
    assert result.status == DeliveryStatus.SENT
    assert result.raw["body"] == answer


class TestExpertflowHTTP(ProviderHTTPCases):
    """The doc's status table for /msg-client/send: 400, 404, 500 (all with no content)."""

    send_endpoint = ("POST", SEND_URL)
    check_endpoint = ("GET", SEND_URL)
    secrets = ("c0nnector-pass",)
    send_errors = [
        Answer(
            "400-required-parameters",
            {"status": 400, "body": ""},
            ProviderRejected,
            ("HTTP 400", "required field", "channel"),
        ),
        Answer(
            "400-with-text",
            {"status": 400, "body": "To must not be null"},
            ProviderRejected,
            ("required field", "To must not be null"),
        ),
        Answer(
            "404-wrong-api-url",
            {"status": 404, "body": ""},
            ProviderAccountError,
            (
                "Expertflow SMS Connector refused the provider account (HTTP 404)",
                "wrong API URL",
                "check the base URL",
            ),
        ),
        Answer(
            "500-internal-error",
            {"status": 500, "body": ""},
            ProviderTemporaryError,
            ("HTTP 500", "server logs"),
        ),
        Answer(
            "401-basic-auth",
            {"status": 401, "body": ""},
            ProviderAccountError,
            ("username/password",),
        ),
        Answer(
            "403-basic-auth",
            {"status": 403, "body": ""},
            ProviderAccountError,
            ("username/password",),
        ),
        Answer(
            "garbage-200",
            {"status": 200, "body": "<html><body>Please log in</body></html>"},
            ProviderRejected,
            ("unexpected answer", "not JSON", "Please log in"),
        ),
    ]
    check_errors = [
        Answer(
            "401-basic-auth",
            {"status": 401},
            ProviderAccountError,
            ("refused the username/password",),
        ),
        Answer(
            "404-no-connector",
            {"status": 404},
            ProviderAccountError,
            ("no SMS connector API", "base URL"),
        ),
        Answer("422", {"status": 422}, ProviderRejected, ("HTTP 422",)),
        Answer("500", {"status": 500}, ProviderTemporaryError, ("HTTP 500",)),
    ]

    def provider(self) -> ExpertflowProvider:
        return ExpertflowProvider(base_url=BASE, credentials=dict(CREDENTIALS))

    def sms(self) -> OutboundSMS:
        return DOC_SMS


def test_describe_error_keeps_other_statuses_raw(provider):
    response = requests.Response()
    response.status_code = 418
    response._content = b"teapot"
    assert provider.describe_error(response) is None


# --- validation and configuration: refused before any network call ------------------------------
@pytest.mark.parametrize(
    ("sms", "words"),
    [
        (OutboundSMS(to="+923001234567", text=""), ["text is empty"]),
        (OutboundSMS(to="", text="Hello"), ["recipient", "To"]),
        (OutboundSMS(to="   ", text="Hello"), ["recipient", "To"]),
    ],
    ids=["empty-text", "no-recipient", "blank-recipient"],
)
def test_validate_refuses_before_any_call(provider, sms, words):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderRejected) as raised:
            provider.send(sms)
        assert len(rsps.calls) == 0
    assert raised.value.retryable is False
    for word in words:
        assert word in raised.value.message


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        ({}, ["channel"]),
        ({"channel": "  "}, ["channel"]),
        ({"channel": "smpp", "username": "hub"}, ["half", "password"]),
        ({"channel": "smpp", "password": "x"}, ["half", "username"]),
    ],
    ids=["no-channel", "blank-channel", "username-only", "password-only"],
)
def test_incomplete_configuration_is_refused_before_any_call(credentials, words):
    provider = ExpertflowProvider(base_url=BASE, credentials=credentials)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderConfigurationError) as raised:
            provider.send(DOC_SMS)
        with pytest.raises(ProviderConfigurationError):
            provider.check()
        assert len(rsps.calls) == 0
    for word in words:
        assert word in raised.value.message


# --- check ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [405, 400, 200])
def test_check_passes_when_the_send_path_answers_without_refusing(provider, status):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(SEND_URL, status=status)
        description = provider.check()
        sent = rsps.calls[0].request
    assert sent.method == "GET"  # never a POST: that could queue an SMS
    assert sent.headers["Authorization"] == BASIC
    assert "answers" in description
    assert SEND_URL in description


def test_check_without_credentials_says_so():
    provider = ExpertflowProvider(base_url=BASE, credentials={"channel": "smpp"})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(SEND_URL, status=405)
        description = provider.check()
        assert "Authorization" not in rsps.calls[0].request.headers
    assert "without basic auth" in description


# --- delivery status, Twilio form style ----------------------------------------------------------
@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("delivered", DeliveryStatus.DELIVERED),
        ("undelivered", DeliveryStatus.UNDELIVERED),
        ("failed", DeliveryStatus.FAILED),
        ("queued", DeliveryStatus.SENT),
        ("sent", DeliveryStatus.SENT),
    ],
)
def test_delivery_status_words(provider, word, status):
    form = {"MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "SmsStatus": word}
    reports = provider.parse_delivery_reports(urlencoded(form))
    assert reports == [
        DeliveryReport(provider_message_id="SM1f0e8ae6ade43cb3c0ce4525424e404f", status=status)
    ]
    assert reports[0].raw == form


def test_delivery_status_accepts_message_status_and_error_code(provider):
    form = {"MessageSid": "SM1", "MessageStatus": "UNDELIVERED", "ErrorCode": "30003"}
    [report] = provider.parse_delivery_reports(urlencoded(form))
    assert report.status == DeliveryStatus.UNDELIVERED
    assert report.error_code == "30003"
    assert report.raw == form


def test_delivery_status_also_reads_multipart_forms(provider):
    [report] = provider.parse_delivery_reports(
        RequestFactory().post("/hooks/", data={"MessageSid": "SM2", "SmsStatus": "delivered"})
    )
    assert report.provider_message_id == "SM2"
    assert report.status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"SmsStatus": "delivered"}, ["no MessageSid (or To)"]),
        ({"MessageSid": "", "To": " ", "SmsStatus": "delivered"}, ["no MessageSid (or To)"]),
        ({"MessageSid": "SM1"}, ["SmsStatus (or MessageStatus)"]),
        ({"To": "+923001234567"}, ["SmsStatus (or MessageStatus)"]),
        ({}, ["MessageSid", "To", "SmsStatus"]),
        ({"MessageSid": "SM1", "SmsStatus": "read"}, ["unknown", "'read'"]),
    ],
    ids=[
        "no-sid-no-to",
        "empty-sid-and-to",
        "no-status",
        "number-no-status",
        "empty-form",
        "unknown-word",
    ],
)
def test_malformed_delivery_status(provider, form, words):
    with pytest.raises(WebhookValidationError) as raised:
        provider.parse_delivery_reports(urlencoded(form))
    for word in words:
        assert word in str(raised.value)


def test_delivery_status_must_be_a_form(provider):
    request = RequestFactory().post(
        "/hooks/", data=json.dumps({"MessageSid": "SM1"}), content_type="application/json"
    )
    with pytest.raises(WebhookValidationError, match="form-encoded"):
        provider.parse_delivery_reports(request)


def test_broken_multipart_body_is_a_validation_error(provider):
    request = RequestFactory().generic(
        "POST", "/hooks/", data=b"garbage", content_type="multipart/form-data; boundary="
    )
    with pytest.raises(WebhookValidationError, match="not a readable form"):
        provider.parse_delivery_reports(request)


def test_the_number_the_message_went_to_is_read_for_matching_by_number(provider):
    """The send answer has no id: a report is matched by its `To` (Twilio's callbacks carry it),
    with or without the doc's `MessageSid`."""
    assert ExpertflowProvider.reports_match_by_number is True
    form = {
        "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "SmsStatus": "delivered",
        "To": " +923001234567 ",
    }
    [report] = provider.parse_delivery_reports(urlencoded(form))
    assert report == DeliveryReport(
        provider_message_id="SM1f0e8ae6ade43cb3c0ce4525424e404f",
        status=DeliveryStatus.DELIVERED,
        to_number="+923001234567",
    )
    [without_id] = provider.parse_delivery_reports(
        urlencoded({"MessageStatus": "undelivered", "To": "923001234567"})
    )
    assert without_id == DeliveryReport(
        provider_message_id="", status=DeliveryStatus.UNDELIVERED, to_number="923001234567"
    )


def test_a_twilio_style_gateway_still_needs_the_message_sid():
    """The receive-only Twilio-style kind sends nothing, so no number can match its reports."""
    assert TwilioStyleProvider.reports_match_by_number is False
    with pytest.raises(WebhookValidationError, match=r"no MessageSid$"):
        TwilioStyleProvider(base_url="").parse_delivery_reports(
            urlencoded({"SmsStatus": "delivered", "To": "+923001234567"})
        )


def test_parse_twilio_status_is_reusable_with_a_wider_vocabulary():
    wider = {"read": DeliveryStatus.DELIVERED, "delivered": DeliveryStatus.DELIVERED}
    report = parse_twilio_status(
        urlencoded({"MessageSid": "SM9", "SmsStatus": "read"}), status_map=wider
    )
    assert report == DeliveryReport(provider_message_id="SM9", status=DeliveryStatus.DELIVERED)


# --- inbound SMS, Twilio form style ---------------------------------------------------------------
INBOUND = {
    "Body": "YES, please call me back",
    "From": "+923001234567",
    "To": "8001",
    "SmsSid": "SMa8b3c0e1f2d4e5f6a7b8c9d0e1f2a3b4",
}


def test_inbound_sms(provider):
    messages = provider.parse_inbound(urlencoded(INBOUND))
    assert messages == [
        InboundSMS(
            from_number="+923001234567",
            to_number="8001",
            text="YES, please call me back",
            provider_message_id="SMa8b3c0e1f2d4e5f6a7b8c9d0e1f2a3b4",
        )
    ]
    assert messages[0].raw == INBOUND


def test_inbound_accepts_message_sid_and_an_empty_body():
    form = {"Body": "", "From": "+923001234567", "To": "8001", "MessageSid": "SM5"}
    message = parse_twilio_inbound(urlencoded(form))
    assert message.provider_message_id == "SM5"
    assert message.text == ""


@pytest.mark.parametrize(
    ("missing", "words"),
    [
        ("From", ["no From"]),
        ("To", ["no To"]),
        ("Body", ["no Body"]),
        ("SmsSid", ["SmsSid (or MessageSid)"]),
    ],
)
def test_malformed_inbound(provider, missing, words):
    form = {key: value for key, value in INBOUND.items() if key != missing}
    with pytest.raises(WebhookValidationError) as raised:
        provider.parse_inbound(urlencoded(form))
    for word in words:
        assert word in str(raised.value)


def test_inbound_must_be_a_form(provider):
    request = RequestFactory().post("/hooks/", data=json.dumps(INBOUND), content_type="text/plain")
    with pytest.raises(WebhookValidationError, match="form-encoded"):
        provider.parse_inbound(request)


# --- the connector's delivery-report queue --------------------------------------------------------
@pytest.mark.parametrize("as_bytes", [True, False])
def test_queue_report_delivered(as_bytes):
    payload = {"MessageSID": "3f9a1c", "DeliveryStatus": "DELIVERED", "ProviderStatusCode": "0"}
    text = json.dumps(payload)
    report = parse_queue_report(text.encode() if as_bytes else text)
    assert report == DeliveryReport(provider_message_id="3f9a1c", status=DeliveryStatus.DELIVERED)
    assert report.error_code == ""
    assert report.raw == payload


@pytest.mark.parametrize("code", ["88", 88])
def test_queue_report_failed_keeps_the_provider_status_code(code):
    payload = {"MessageSID": 1024, "DeliveryStatus": "FAILED", "ProviderStatusCode": code}
    report = parse_queue_report(json.dumps(payload))
    assert report == DeliveryReport(
        provider_message_id="1024", status=DeliveryStatus.FAILED, error_code="88"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe", ["not JSON"]),
        ("not json", ["not JSON"]),
        ("[]", ["not a JSON object"]),
        ('{"DeliveryStatus": "DELIVERED"}', ["no MessageSID"]),
        ('{"MessageSID": "", "DeliveryStatus": "DELIVERED"}', ["no MessageSID"]),
        ('{"MessageSID": true, "DeliveryStatus": "DELIVERED"}', ["no MessageSID"]),
        ('{"MessageSID": "a1"}', ["no DeliveryStatus"]),
        ('{"MessageSID": "a1", "DeliveryStatus": 3}', ["no DeliveryStatus"]),
        ('{"MessageSID": "a1", "DeliveryStatus": "SENT"}', ["unknown", "DELIVERED or FAILED"]),
        (
            '{"MessageSID": "a1", "DeliveryStatus": "FAILED", "ProviderStatusCode": [1]}',
            ["ProviderStatusCode"],
        ),
    ],
    ids=[
        "bad-utf8",
        "not-json",
        "array",
        "no-sid",
        "empty-sid",
        "bool-sid",
        "no-status",
        "status-not-text",
        "unknown-status",
        "bad-code",
    ],
)
def test_malformed_queue_report(body, words):
    with pytest.raises(WebhookValidationError) as raised:
        parse_queue_report(body)
    for word in words:
        assert word in str(raised.value)


# --- every reading of the report form, through the simulator's connector and the hub -----------
READINGS = [
    {"report_sid": sid, "report_to": to, "report_status": field}
    for sid in ("yes", "no")
    for to in ("as_sent", "digits", "none")
    for field in ("both", "SmsStatus", "MessageStatus")
]


def reading_id(reading: dict[str, str]) -> str:
    return "-".join(f"{key.removeprefix('report_')}={value}" for key, value in reading.items())


@pytest.mark.django_db
@pytest.mark.parametrize("reading", READINGS, ids=reading_id)
def test_the_hub_reads_every_form_the_doc_allows(sim, hub, client, reading):
    """The simulator's connector sends its delivery reports in the configured reading; the hub
    sends through it, receives each report on its webhook as posted, and matches it to the
    message whenever it carries the number (with or without `MessageSid`)."""
    configured = requests.post(
        f"{sim.url}/_simulator/config", json={"credentials": {"expertflow": reading}}, timeout=5
    )
    assert configured.status_code == 200, configured.text
    connector = ProviderAccountFactory(
        name="Expertflow", slug="expertflow", base_url=sim.url, credentials={"channel": "sms"}
    )
    account = AccountFactory(route=[connector])
    delivered = enqueue_message(account, recipient="+923001234567", text="Ticket resolved")
    unreachable = enqueue_message(account, recipient="+923001230000", text="Ticket resolved")
    dispatch_batch()

    forms = [
        call["body"]
        for call in wait_for(
            lambda: (
                len(hub.received("expertflow", "dlr")) == 2 and hub.received("expertflow", "dlr")
            )
        )
    ]
    for form in forms:  # what the connector posted, posted again to the hub's real webhook
        response = client.post(
            connector.webhook_url("dlr"),
            data=urlencode(form),
            content_type="application/x-www-form-urlencoded",
        )
        if reading["report_sid"] == "no" and reading["report_to"] == "none":
            assert response.status_code == 400  # neither an id nor a number: nothing to match
        else:
            assert response.status_code == 200
    apply_webhooks()

    for message in (delivered, unreachable):
        message.refresh_from_db()
    if reading["report_to"] == "none":
        # The doc's table alone: no number, and the id is the gateway's, never ours.
        assert (delivered.status, unreachable.status) == (Message.Status.SENT,) * 2
        expected_unmatched = 0 if reading["report_sid"] == "no" else 2
        assert PendingDeliveryReport.objects.count() == expected_unmatched
    else:
        assert delivered.status == Message.Status.DELIVERED
        assert unreachable.status == Message.Status.UNDELIVERED
        assert "Matched by number +923001234567" in delivered.events.last().detail
        assert not PendingDeliveryReport.objects.exists()
        assert set(WebhookRequest.objects.values_list("status", flat=True)) == {"applied"}
