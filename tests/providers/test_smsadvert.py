"""The SMSAdvert adapter against the provider's own doc (../shared/provider-docs/smsadvert.txt)."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from django.test import RequestFactory

from providers import smsadvert
from providers.events import DeliveryReport, DeliveryStatus, OutboundSMS, SendResult
from providers.exceptions import (
    ProviderAccountError,
    ProviderConfigurationError,
    ProviderRejected,
    ProviderTemporaryError,
    WebhookValidationError,
)
from providers.smsadvert import SmsAdvertProvider

from .http_cases import Answer, ProviderHTTPCases
from .test_simulator_server import wait_for

BASE = "https://www.smsadvert.io"
URL = f"{BASE}/api/sms/"
TOKEN = "API_AUTH_TOKEN"
# The doc's own answers.
SUCCESS = {"successMessage": "Your message has been successfully submitted!", "msgId": "xxxxxx"}
FIELD_ERRORS = {
    "errors": {
        "phone": "Numéro de téléphone invalide!",
        "shortTextMessage": "Saisissez un minimum de caractères 3!",
    }
}
ERROR_MESSAGE = {"errorMessage": "There was a database error!"}
# A refused token (the doc shows none; the simulator answers so, with 401).
TOKEN_REFUSED = {"errorMessage": "Invalid authentication token!"}
TEXT = "C'est le contenu du message SMS"
# The doc's schedule example: startDate 1486883578036, endDate 1486889778036.
DOC_START = datetime(2017, 2, 12, 7, 12, 58, 36000, tzinfo=UTC)
DOC_END = datetime(2017, 2, 12, 8, 56, 18, 36000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def before_the_doc_window(monkeypatch):
    """'Now' is just before the doc's example window, so its dates are still in the future."""
    monkeypatch.setattr(smsadvert, "now", lambda: datetime(2017, 2, 12, 7, 0, tzinfo=UTC))


def provider(base: str = BASE, **credentials) -> SmsAdvertProvider:
    return SmsAdvertProvider(base_url=base, credentials={"token": TOKEN, **credentials})


def sent_body(call) -> dict:
    return json.loads(call.request.body)


# --- the exact request ---------------------------------------------------------------------
DOC_SENDS = [
    pytest.param(
        "https://www.smsadvert.ro",
        {"send_as_short": True},
        {"to": "+40740123456", "text": "This is the content of the SMS message"},
        {
            "phone": "+40740123456",
            "shortTextMessage": "This is the content of the SMS message",
            "sendAsShort": True,
        },
        id="via-their-network-ro-host",
    ),
    pytest.param(
        BASE,
        {},
        {"to": "+40740123456", "text": TEXT},
        {"phone": "+40740123456", "shortTextMessage": TEXT},
        id="own-devices",
    ),
    pytest.param(
        BASE,
        {"failover": "short"},
        {"to": "+40740123456", "text": TEXT},
        {"phone": "+40740123456", "shortTextMessage": TEXT, "failover": "short"},
        id="own-devices-with-failover",
    ),
    pytest.param(
        BASE,
        {},
        {"to": "+40740123456", "text": TEXT, "window_start": DOC_START, "window_end": DOC_END},
        {
            "phone": "+40740123456",
            "shortTextMessage": TEXT,
            "startDate": 1486883578036,
            "endDate": 1486889778036,
        },
        id="send-window",
    ),
    pytest.param(
        BASE,
        {},
        {"to": "+40740123456", "text": TEXT, "callback_url": "http://votresite.com/callback-url/"},
        {
            "phone": "+40740123456",
            "shortTextMessage": TEXT,
            "callback": "http://votresite.com/callback-url/",
        },
        id="delivery-report-callback",
    ),
    pytest.param(
        BASE,
        {},
        {"to": "+40740123456", "text": TEXT, "window_start": DOC_START},
        {"phone": "+40740123456", "shortTextMessage": TEXT, "startDate": 1486883578036},
        id="window-start-only",
    ),
    pytest.param(
        BASE,
        {},
        {"to": "+40740123456", "text": TEXT, "window_end": DOC_END},
        {"phone": "+40740123456", "shortTextMessage": TEXT, "endDate": 1486889778036},
        id="window-end-only",
    ),
    pytest.param(
        BASE,
        {"send_as_short": "false", "failover": ""},
        {"to": "+40740123456", "text": TEXT, "sender": "ACME", "reference": "42"},
        {"phone": "+40740123456", "shortTextMessage": TEXT},
        id="false-options-and-sender-left-out",
    ),
]


@pytest.mark.parametrize(("base", "credentials", "sms", "expected"), DOC_SENDS)
def test_send_makes_the_documented_request(base, credentials, sms, expected):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(f"{base}/api/sms/", json=SUCCESS)
        provider(base, **credentials).send(OutboundSMS(**sms))
        assert len(rsps.calls) == 1
        request = rsps.calls[0].request
    assert request.method == "POST"
    assert request.url == f"{base}/api/sms/"
    assert request.headers["Authorization"] == "API_AUTH_TOKEN"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == expected


def test_the_token_is_sent_raw_without_surrounding_whitespace():
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=SUCCESS)
        SmsAdvertProvider(base_url=BASE + "/", credentials={"token": " tok-123\n"}).send(
            OutboundSMS(to="+40740123456", text=TEXT)
        )
        assert rsps.calls[0].request.url == URL
        assert rsps.calls[0].request.headers["Authorization"] == "tok-123"


def test_naive_window_is_read_in_the_project_time_zone():
    """The project runs in UTC: a naive 07:12:58.036 is the doc's startDate."""
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=SUCCESS)
        provider().send(
            OutboundSMS(to="+40740123456", text=TEXT, window_start=DOC_START.replace(tzinfo=None))
        )
        assert sent_body(rsps.calls[0])["startDate"] == 1486883578036


def test_the_doc_success_answer_gives_the_msg_id():
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=SUCCESS)
        result = provider().send(OutboundSMS(to="+40740123456", text=TEXT))
    assert result == SendResult(
        provider_message_id="xxxxxx", status=DeliveryStatus.SENT, cost=None, raw=SUCCESS
    )


def test_a_numeric_msg_id_is_kept_as_text():
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json={"successMessage": "ok", "msgId": 123456})
        result = provider().send(OutboundSMS(to="+40740123456", text=TEXT))
    assert result.provider_message_id == "123456"


# --- failures ------------------------------------------------------------------------------
class TestSmsAdvertHTTP(ProviderHTTPCases):
    """The doc's two error shapes, with its own examples, at the statuses they may come with."""

    send_endpoint = ("POST", URL)
    check_endpoint = ("POST", URL)
    secrets = (TOKEN,)
    send_errors = [
        Answer(
            "200-field-errors",
            {"status": 200, "json": FIELD_ERRORS},
            ProviderRejected,
            (
                "SMSAdvert refused the message: phone: Numéro de téléphone invalide!",
                "shortTextMessage: Saisissez un minimum de caractères 3!",
            ),
        ),
        Answer(
            "400-field-errors",
            {"status": 400, "json": FIELD_ERRORS},
            ProviderRejected,
            ("SMSAdvert refused the message (HTTP 400): phone: Numéro de téléphone invalide!",),
        ),
        Answer(
            "200-database-error",
            {"status": 200, "json": ERROR_MESSAGE},
            ProviderTemporaryError,
            ("temporary error from SMSAdvert: There was a database error!",),
        ),
        Answer(
            "500-database-error",
            {"status": 500, "json": ERROR_MESSAGE},
            ProviderTemporaryError,
            ("temporary error from SMSAdvert (HTTP 500): There was a database error!",),
        ),
        Answer(
            "400-database-error",
            {"status": 400, "json": ERROR_MESSAGE},
            ProviderTemporaryError,
            ("There was a database error!",),
        ),
        Answer(
            "401-token-refused",
            {"status": 401, "json": TOKEN_REFUSED},
            ProviderAccountError,
            ("Invalid authentication token! (check the provider account's token)",),
        ),
        Answer(
            "200-token-refused",
            {"status": 200, "json": TOKEN_REFUSED},
            ProviderAccountError,
            ("credentials refused by SMSAdvert: Invalid authentication token!",),
        ),
        Answer(
            "400-token-refused",
            {"status": 400, "json": {"errorMessage": "Invalid token!"}},
            ProviderAccountError,
            ("credentials refused by SMSAdvert (HTTP 400): Invalid token!",),
        ),
        Answer(
            "200-no-credit",
            {"status": 200, "json": {"errorMessage": "Not enough credit!"}},
            ProviderAccountError,
            ("SMSAdvert refused the provider account: Not enough credit!", "top up"),
        ),
        Answer(
            "200-other-error-message",
            {"status": 200, "json": {"errorMessage": "Something went wrong!"}},
            ProviderRejected,
            ("SMSAdvert refused the message: Something went wrong!",),
        ),
        Answer(
            "400-other-error-message",
            {"status": 400, "json": {"errorMessage": "Something went wrong!"}},
            ProviderRejected,
            ("SMSAdvert refused the request (HTTP 400): Something went wrong!",),
        ),
        Answer(
            "503-other-error-message",
            {"status": 503, "json": {"errorMessage": "Something went wrong!"}},
            ProviderTemporaryError,
            ("HTTP 503", "Something went wrong!"),
        ),
        Answer(
            "404-wrong-base-url",
            {"status": 404, "body": "<html>Not Found</html>"},
            ProviderAccountError,
            ("SMSAdvert refused the provider account (HTTP 404)",),
        ),
        Answer(
            "502-html",
            {"status": 502, "body": "<html>Bad gateway</html>"},
            ProviderTemporaryError,
            ("HTTP 502", "Bad gateway"),
        ),
        Answer(
            "200-garbage",
            {"status": 200, "body": "<html>maintenance</html>"},
            ProviderRejected,
            ("unreadable answer", "maintenance"),
        ),
        Answer(
            "200-without-msg-id",
            {"status": 200, "json": {"successMessage": "Your message has been submitted!"}},
            ProviderRejected,
            ("unreadable answer", "no msgId"),
        ),
    ]
    check_errors = [
        Answer(
            "400-token-refused",
            {"status": 400, "json": {"errorMessage": "Invalid token!"}},
            ProviderAccountError,
            ("Invalid token!",),
        ),
        Answer(
            "200-token-refused",
            {"status": 200, "json": TOKEN_REFUSED},
            ProviderAccountError,
            ("Invalid authentication token!",),
        ),
        Answer(
            "200-success-to-nothing",
            {"status": 200, "json": SUCCESS},
            ProviderConfigurationError,
            ("does not answer like SMSAdvert's API", "unexpectedly"),
        ),
        Answer(
            "200-html",
            {"status": 200, "body": "<html>hello</html>"},
            ProviderConfigurationError,
            ("unexpectedly",),
        ),
        Answer(
            "500-database-error",
            {"status": 500, "json": ERROR_MESSAGE},
            ProviderTemporaryError,
            ("database error",),
        ),
        Answer(
            "200-database-error",
            {"status": 200, "json": ERROR_MESSAGE},
            ProviderTemporaryError,
            ("database error",),
        ),
    ]

    def provider(self) -> SmsAdvertProvider:
        return provider()

    def sms(self) -> OutboundSMS:
        return OutboundSMS(to="+40740123456", text=TEXT)


def test_an_error_answer_on_200_keeps_the_refused_fields_as_code():
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=FIELD_ERRORS)
        with pytest.raises(ProviderRejected) as caught:
            provider().send(OutboundSMS(to="+40740123456", text=TEXT))
    assert caught.value.code == "phone,shortTextMessage"
    assert caught.value.raw == FIELD_ERRORS


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (400, FIELD_ERRORS, "phone: Numéro de téléphone invalide!; shortTextMessage: "),
        (400, {"errors": {"phone": ["a", "b"]}}, "phone: a, b"),
        (403, {"errorMessage": "Invalid token"}, "Invalid token (check the provider account's"),
        (503, ERROR_MESSAGE, "There was a database error!"),
        (400, {"message": "something else"}, None),
        (400, "not json", None),
    ],
)
def test_describe_error_gives_the_bodys_own_words(status, body, detail):
    response = requests.Response()
    response.status_code = status
    response._content = (json.dumps(body) if isinstance(body, dict) else body).encode()
    described = provider().describe_error(response)
    if detail is None:
        assert described is None
    else:
        assert described.startswith(detail)


# --- validation before any call ------------------------------------------------------------
REFUSALS = [
    pytest.param({"to": "0740123456"}, ["E.164", "'0740123456'"], id="national-number"),
    pytest.param({"to": "40740123456"}, ["E.164"], id="no-plus"),
    pytest.param(
        {"to": "+40740123456,+40740123457"}, ["E.164"], id="several-numbers-in-one-message"
    ),
    pytest.param({"to": ""}, ["E.164"], id="no-number"),
    pytest.param({"text": ""}, ["empty"], id="empty-text"),
    pytest.param({"text": "Hi"}, ["at least 3 characters", "has 2"], id="too-short"),
    pytest.param({"text": "x" * 481}, ["at most 480 characters", "has 481"], id="too-long"),
    pytest.param(
        {"window_start": DOC_END, "window_end": DOC_START},
        ["send window ends", "before it starts"],
        id="window-backwards",
    ),
    pytest.param(
        {"window_end": datetime(2017, 2, 12, 6, 0, tzinfo=UTC)},
        ["send window already ended"],
        id="window-over",
    ),
]


@pytest.mark.parametrize(("fields", "words"), REFUSALS)
def test_validate_refuses_before_any_call(fields, words):
    sms = OutboundSMS(**{"to": "+40740123456", "text": TEXT, **fields})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderRejected) as caught:
            provider().send(sms)
        assert len(rsps.calls) == 0
    assert caught.value.retryable is False
    for word in words:
        assert word in caught.value.message


@pytest.mark.parametrize("text", ["abc", "x" * 480, "Ünïcödé ✓ ok"])
def test_validate_accepts_the_boundaries(text):
    provider().validate(OutboundSMS(to="+40740123456", text=text))


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        ({"token": ""}, ["token"]),
        ({"token": "   "}, ["token"]),
        ({}, ["token"]),
        ({"token": TOKEN, "send_as_short": "maybe"}, ["send_as_short", "true or false"]),
    ],
)
def test_configuration_errors_stop_before_any_call(credentials, words):
    adapter = SmsAdvertProvider(base_url=BASE, credentials=credentials)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderConfigurationError) as caught:
            adapter.send(OutboundSMS(to="+40740123456", text=TEXT))
        assert len(rsps.calls) == 0
    for word in words:
        assert word in caught.value.message


@pytest.mark.parametrize(
    ("value", "sent"), [(True, True), ("true", True), ("1", True), (False, None), ("no", None)]
)
def test_send_as_short_accepts_booleans_and_their_words(value, sent):
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=SUCCESS)
        provider(send_as_short=value).send(OutboundSMS(to="+40740123456", text=TEXT))
        assert sent_body(rsps.calls[0]).get("sendAsShort") is sent


# --- send_many ----------------------------------------------------------------------------
def sms(to: str, text: str = TEXT, **fields) -> OutboundSMS:
    return OutboundSMS(to=to, text=text, callback_url="https://hub.example/hooks/x/dlr/", **fields)


def together(**credentials) -> SmsAdvertProvider:
    """An account that chose many numbers per call (`multi_recipient: true`)."""
    return provider(multi_recipient=True, **credentials)


@pytest.mark.parametrize(
    ("value", "many"),
    [(None, False), (False, False), ("false", False), ("", False), (True, True), ("true", True)],
)
def test_one_number_per_call_unless_the_account_chooses_many(value, many):
    credentials = {} if value is None else {"multi_recipient": value}
    assert provider(**credentials).sends_many() is many


def test_by_default_the_docs_three_numbers_go_one_per_call_each_with_its_callback():
    """The doc's multi-recipient example, sent so that each message gets its own report."""
    messages = [sms("+40740123456"), sms("+40740123457"), sms("+40740123458")]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        for msg_id in ("id-6", "id-7", "id-8"):
            rsps.post(URL, json={**SUCCESS, "msgId": msg_id})
        results = provider().send_many(messages)
        bodies = [sent_body(call) for call in rsps.calls]
    assert bodies == [
        {"phone": n, "shortTextMessage": TEXT, "callback": "https://hub.example/hooks/x/dlr/"}
        for n in ("+40740123456", "+40740123457", "+40740123458")
    ]
    assert [r.provider_message_id for r in results] == ["id-6", "id-7", "id-8"]


def test_send_many_sends_the_same_text_in_one_call_like_the_doc():
    messages = [sms("+40740123456"), sms("+40740123457"), sms("+40740123458")]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, json=SUCCESS)
        results = together(failover="short").send_many(messages)
        assert len(rsps.calls) == 1
        request = rsps.calls[0].request
    assert request.headers["Authorization"] == TOKEN
    # The doc's multi-recipient example; no callback, since a report could not name its recipient.
    assert json.loads(request.body) == {
        "phone": "+40740123456,+40740123457,+40740123458",
        "shortTextMessage": TEXT,
        "failover": "short",
    }
    assert [r.provider_message_id for r in results] == [
        "xxxxxx:+40740123456",
        "xxxxxx:+40740123457",
        "xxxxxx:+40740123458",
    ]
    assert all(r.status == DeliveryStatus.SENT and r.raw == SUCCESS for r in results)


def test_send_many_keeps_the_window_in_a_multi_recipient_call():
    messages = [
        sms(n, window_start=DOC_START, window_end=DOC_END) for n in ("+40740123456", "+40740123457")
    ]
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=SUCCESS)
        together().send_many(messages)
        assert sent_body(rsps.calls[0]) == {
            "phone": "+40740123456,+40740123457",
            "shortTextMessage": TEXT,
            "startDate": 1486883578036,
            "endDate": 1486889778036,
        }


def test_send_many_groups_by_text_and_window_and_answers_in_input_order():
    messages = [
        sms("+40740123456"),  # group A
        sms("+40740123457", text="Another text"),  # alone: an ordinary send, with callback
        sms("+40740123458"),  # group A
        sms("+40740123459", window_end=DOC_END),  # same text, other window: alone
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(
            URL,
            match=[
                responses.matchers.json_params_matcher(
                    {"phone": "+40740123456,+40740123458", "shortTextMessage": TEXT}
                )
            ],
            json={"successMessage": "ok", "msgId": "batch-a"},
        )
        rsps.post(
            URL,
            match=[
                responses.matchers.json_params_matcher(
                    {
                        "phone": "+40740123457",
                        "shortTextMessage": "Another text",
                        "callback": "https://hub.example/hooks/x/dlr/",
                    }
                )
            ],
            json={"successMessage": "ok", "msgId": "single-b"},
        )
        rsps.post(
            URL,
            match=[
                responses.matchers.json_params_matcher(
                    {
                        "phone": "+40740123459",
                        "shortTextMessage": TEXT,
                        "endDate": 1486889778036,
                        "callback": "https://hub.example/hooks/x/dlr/",
                    }
                )
            ],
            json={"successMessage": "ok", "msgId": "single-d"},
        )
        results = together().send_many(messages)
        assert len(rsps.calls) == 3
    assert [r.provider_message_id for r in results] == [
        "batch-a:+40740123456",
        "single-b",
        "batch-a:+40740123458",
        "single-d",
    ]


def test_send_many_never_repeats_a_number_in_one_call():
    messages = [sms("+40740123456"), sms("+40740123457"), sms("+40740123456")]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, json={"successMessage": "ok", "msgId": "first"})
        rsps.post(URL, json={"successMessage": "ok", "msgId": "second"})
        results = together().send_many(messages)
        bodies = [sent_body(call) for call in rsps.calls]
    assert bodies == [
        {"phone": "+40740123456,+40740123457", "shortTextMessage": TEXT},
        {
            "phone": "+40740123456",
            "shortTextMessage": TEXT,
            "callback": "https://hub.example/hooks/x/dlr/",
        },
    ]
    assert [r.provider_message_id for r in results] == [
        "first:+40740123456",
        "first:+40740123457",
        "second",
    ]


def test_send_many_splits_more_than_1000_numbers():
    numbers = [f"+4074{i:07d}" for i in range(1001)]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, json={"successMessage": "ok", "msgId": "big"})
        rsps.post(URL, json={"successMessage": "ok", "msgId": "rest"})
        results = together().send_many([sms(n) for n in numbers])
        phones = [sent_body(call)["phone"] for call in rsps.calls]
    assert len(phones) == 2
    assert phones[0] == ",".join(numbers[:1000])
    assert not phones[0].endswith(",")
    assert phones[1] == numbers[1000]
    assert results[999].provider_message_id == f"big:{numbers[999]}"
    assert results[1000].provider_message_id == "rest"


def test_send_many_reports_refusals_and_call_errors_per_message():
    messages = [
        sms("+40740123456"),
        sms("0740123457"),  # refused before any call
        sms("+40740123458"),
        sms("+40740123459", text="x"),  # refused before any call
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, status=400, json=FIELD_ERRORS)
        results = together().send_many(messages)
        assert len(rsps.calls) == 1
        assert sent_body(rsps.calls[0])["phone"] == "+40740123456,+40740123458"
    assert isinstance(results[0], ProviderRejected)
    assert "Numéro de téléphone invalide!" in results[0].message
    assert results[2] is results[0]
    assert isinstance(results[1], ProviderRejected) and "E.164" in results[1].message
    assert isinstance(results[3], ProviderRejected) and "at least 3" in results[3].message


def test_send_many_a_database_error_is_temporary_for_every_message_of_the_call():
    messages = [sms("+40740123456"), sms("+40740123457")]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, json=ERROR_MESSAGE)
        results = together().send_many(messages)
    assert all(isinstance(result, ProviderTemporaryError) for result in results)
    assert all(result.retryable for result in results)
    assert "There was a database error!" in results[0].message


def test_send_many_stops_calling_once_the_token_is_refused():
    messages = [
        sms("+40740123456"),
        sms("+40740123457"),
        sms("+40740123458", text="Another text"),  # another call, never made
        sms("0740123459"),  # refused before any call: its own reason stays
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, status=401, json=TOKEN_REFUSED)
        results = together().send_many(messages)
        assert len(rsps.calls) == 1
    assert [type(result) for result in results] == [ProviderAccountError] * 3 + [ProviderRejected]
    assert results[2].message.startswith("credentials refused by SMSAdvert (HTTP 401): ")
    assert "E.164" in results[3].message


def test_send_many_with_a_malformed_multi_recipient_flag_fails_no_message():
    adapter = provider(multi_recipient="perhaps")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        results = adapter.send_many([sms("+40740123456"), sms("+40740123457")])
        assert len(rsps.calls) == 0
    assert all(isinstance(result, ProviderConfigurationError) for result in results)
    assert "multi_recipient" in results[0].message


def test_send_many_of_nothing_calls_nobody():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        assert provider().send_many([]) == []
        assert len(rsps.calls) == 0


# --- delivery reports ----------------------------------------------------------------------
def dlr_request(body, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return RequestFactory().post(
        "/hooks/smsadvert/token/dlr/", data=data, content_type=content_type
    )


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"status": "delivered", "msgId": "xxxxxx"}, DeliveryStatus.DELIVERED),
        ({"status": "failed", "msgId": "xxxxxx"}, DeliveryStatus.FAILED),
        ({"status": "Delivered", "msgId": "xxxxxx"}, DeliveryStatus.DELIVERED),
    ],
)
def test_delivery_reports_from_the_doc(payload, status):
    reports = provider().parse_delivery_reports(dlr_request(payload))
    assert reports == [DeliveryReport(provider_message_id="xxxxxx", status=status)]
    assert reports[0].raw == payload
    assert reports[0].occurred_at is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "not JSON"),
        ("status=delivered&msgId=xxxxxx", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ([{"status": "delivered", "msgId": "xxxxxx"}], "JSON object"),
        ({"status": "delivered"}, "'msgId'"),
        ({"status": "delivered", "msgId": ""}, "'msgId'"),
        ({"status": "delivered", "msgId": {"id": 1}}, "'msgId'"),
        ({"msgId": "xxxxxx"}, "'status'"),
        ({"status": 1, "msgId": "xxxxxx"}, "'status'"),
        ({"status": "pending", "msgId": "xxxxxx"}, "unknown smsadvert status 'pending'"),
    ],
)
def test_malformed_delivery_reports(body, words):
    with pytest.raises(WebhookValidationError) as caught:
        provider().parse_delivery_reports(dlr_request(body))
    assert words in str(caught.value)


def test_smsadvert_sends_no_replies():
    with pytest.raises(WebhookValidationError):
        provider().parse_inbound(dlr_request({"status": "delivered", "msgId": "x"}))


# --- check --------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [400, 422, 200])
def test_check_succeeds_when_the_empty_request_is_refused_field_by_field(status):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, status=status, json=FIELD_ERRORS)
        description = provider().check()
        request = rsps.calls[0].request
    assert json.loads(request.body) == {}
    assert request.headers["Authorization"] == TOKEN
    assert "did not refuse the token" in description
    assert "nothing was sent" in description


def test_check_without_token_makes_no_call():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ProviderConfigurationError):
            SmsAdvertProvider(base_url=BASE, credentials={}).check()
        assert len(rsps.calls) == 0


# --- what admin shows ----------------------------------------------------------------------
def test_class_attributes():
    assert SmsAdvertProvider.slug == "smsadvert"
    assert SmsAdvertProvider.default_base_url == "https://www.smsadvert.io"
    assert SmsAdvertProvider.required_credentials == ("token",)
    assert SmsAdvertProvider.secret_credentials == frozenset({"token"})
    for key in ("token", "send_as_short", "failover"):
        assert key in SmsAdvertProvider.credentials_help
    assert SmsAdvertProvider.missing_credentials({"token": ""}) == ["token"]


def test_epoch_ms_is_exact():
    assert smsadvert.epoch_ms(DOC_START) == 1486883578036
    assert smsadvert.epoch_ms(DOC_START + timedelta(microseconds=999)) == 1486883578036


def test_check_warns_when_the_account_sends_many_numbers_per_call():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(URL, status=400, json=FIELD_ERRORS)
        assert "Warning" not in provider().check()
        rsps.post(URL, status=400, json=FIELD_ERRORS)
        description = together().check()
    assert "no delivery report" in description


def test_options_are_labelled_choices_whose_absence_is_the_docs_default():
    options = {option.key: option for option in SmsAdvertProvider.options}
    assert set(options) == {"send_as_short", "failover", "multi_recipient"}
    # sendAsShort absent (or false) sends from the customer's own devices, per the doc.
    for stored in ({}, {"send_as_short": False}, {"send_as_short": "no"}):
        assert "own devices" in options["send_as_short"].choice(stored).label
    assert "network" in options["send_as_short"].choice({"send_as_short": "true"}).label
    assert options["send_as_short"].choice({"send_as_short": "maybe"}) is None
    # Many numbers per call is the explicit choice, and the one that warns.
    assert options["multi_recipient"].warnings({}) == []
    (warning,) = options["multi_recipient"].warnings({"multi_recipient": True})
    assert "no delivery report" in warning


# --- against the simulator's fake, in each reading the doc allows --------------------------
# The doc does not say what a multi-recipient call's callback gets (its report names only the
# shared msgId): the fake is set to each reading, and every message must get its report anyway.
READINGS = ["none", "per_recipient"]
DOC_NUMBERS = ("+40740123456", "+40740123457", "+40740120000")  # 0000: reported failed


def through_the_fake(sim, hub, reading, **credentials):
    sim.configure(credentials={"smsadvert": {"multi_recipient_reports": reading}})
    adapter = SmsAdvertProvider(
        base_url=sim.url, credentials={"token": "smsadvert-token", **credentials}
    )
    callback = hub.url("smsadvert", "dlr")
    messages = [OutboundSMS(to=n, text=TEXT, callback_url=callback) for n in DOC_NUMBERS]
    return adapter, adapter.send_many(messages)


def reports_received(adapter, hub):
    return [
        report
        for call in hub.received("smsadvert", "dlr")
        for report in adapter.parse_delivery_reports(dlr_request(call["body"]))
    ]


@pytest.mark.parametrize("reading", READINGS)
def test_by_default_every_message_gets_its_delivery_report_in_every_reading(sim, hub, reading):
    adapter, results = through_the_fake(sim, hub, reading)
    ids = [result.provider_message_id for result in results]
    assert len(set(ids)) == 3 and not any(":" in i for i in ids)

    reports = wait_for(
        lambda: len(reports_received(adapter, hub)) == 3 and reports_received(adapter, hub)
    )
    assert {(r.provider_message_id, r.status) for r in reports} == {
        (ids[0], DeliveryStatus.DELIVERED),
        (ids[1], DeliveryStatus.DELIVERED),
        (ids[2], DeliveryStatus.FAILED),
    }


@pytest.mark.parametrize("reading", READINGS)
def test_messages_sent_together_get_no_report_in_any_reading(sim, hub, reading):
    _, results = through_the_fake(sim, hub, reading, multi_recipient=True)
    [request] = [e for e in sim.requests_log if e.get("provider") == "smsadvert"]
    assert request["body"] == {"phone": ",".join(DOC_NUMBERS), "shortTextMessage": TEXT}
    msg_id = results[0].provider_message_id.split(":")[0]
    assert [r.provider_message_id for r in results] == [f"{msg_id}:{n}" for n in DOC_NUMBERS]
    time.sleep(10 * sim.dlr_delay)
    assert hub.received("smsadvert", "dlr") == []  # they stay "sent": admin warns of it


@pytest.mark.parametrize(("reading", "reports"), [("none", 0), ("per_recipient", 3)])
def test_the_fake_answers_a_multi_recipient_callback_in_its_reading(sim, hub, reading, reports):
    """Why the adapter sends no callback with many numbers: in no reading can a report be told
    apart from the others (the same msgId for all, or no report at all)."""
    sim.configure(credentials={"smsadvert": {"multi_recipient_reports": reading}})
    body = {"phone": ",".join(DOC_NUMBERS), "shortTextMessage": TEXT}
    body["callback"] = hub.url("smsadvert", "dlr")
    answer = requests.post(
        f"{sim.url}/api/sms/", json=body, headers={"Authorization": "smsadvert-token"}, timeout=5
    ).json()
    time.sleep(10 * sim.dlr_delay)
    received = [call["body"] for call in hub.received("smsadvert", "dlr")]
    assert len(received) == reports
    assert all(report["msgId"] == answer["msgId"] for report in received)
