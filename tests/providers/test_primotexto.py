"""The Primotexto adapter against the wire protocol of ``provider-docs/primotexto.txt``."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from django.test import RequestFactory
from django.utils import timezone

from providers.events import DeliveryStatus, OutboundSMS, SendResult
from providers.exceptions import (
    ProviderAccountError,
    ProviderConfigurationError,
    ProviderRejected,
    ProviderTemporaryError,
    WebhookValidationError,
)
from providers.gsm import GSM7_CHARACTERS
from providers.primotexto import (
    ALLOWED_CHARACTERS,
    DOC_CHARACTERS,
    FUTURE_MARGIN,
    PrimotextoProvider,
    epoch_milliseconds,
    future_date,
)

from .http_cases import Answer, ProviderHTTPCases

BASE = "https://api.primotexto.com"
SEND_URL = f"{BASE}/v2/notification/messages/send"
STATS_URL = f"{BASE}/v2/account/stats"
API_KEY = "pt-test-key-5b1e0c"

# The doc's own example, field for field.
DOC_SMS = OutboundSMS(
    to="+33600000000",
    text="Code de confirmation: 283951",
    reference="msg-1",
    sender="YourCompany",
    campaign_name="Code de confirmation",
    category="codeConfirmation",
    send_at=datetime(2014, 4, 22, 14, 30, tzinfo=UTC),  # the doc's 1398177000000
)
DOC_BODY = {
    "number": "+33600000000",
    "message": "Code de confirmation: 283951",
    "sender": "YourCompany",
    "campaignName": "Code de confirmation",
    "category": "codeConfirmation",
    "date": 1398177000000,
}
DOC_ANSWER = '{ "creditsUsed":1.0, "snapshotId": "386479" }'


@pytest.fixture
def provider():
    return PrimotextoProvider(base_url=BASE, credentials={"api_key": API_KEY})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_class_attributes():
    assert PrimotextoProvider.slug == "primotexto"
    assert PrimotextoProvider.default_base_url == "https://api.primotexto.com"
    assert PrimotextoProvider.required_credentials == ("api_key",)
    assert PrimotextoProvider.secret_credentials == frozenset({"api_key"})
    assert "api_key" in PrimotextoProvider.credentials_help
    assert PrimotextoProvider.missing_credentials({}) == ["api_key"]


# --- sending -----------------------------------------------------------------------------------
def test_send_makes_the_exact_request_of_the_doc(provider, rsps):
    """The doc's example, scheduled as far ahead of now as its date was of its writing."""
    rsps.post(SEND_URL, body=DOC_ANSWER, content_type="application/json;charset=UTF-8")
    ahead = timezone.now() + timedelta(days=1)

    provider.send(replace(DOC_SMS, send_at=ahead))

    assert len(rsps.calls) == 1
    sent = rsps.calls[0].request
    assert sent.method == "POST"
    assert sent.url == SEND_URL
    assert sent.headers["X-Primotexto-ApiKey"] == API_KEY
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {**DOC_BODY, "date": epoch_milliseconds(ahead)}


def test_the_docs_date_is_sent_while_it_is_ahead():
    just_before = datetime(2014, 4, 22, 12, 0, tzinfo=UTC)
    assert future_date(DOC_SMS.send_at, now=just_before) == 1398177000000


def test_a_due_message_is_sent_without_a_date_in_the_past(provider, rsps):
    """The hub hands a scheduled message over once due (and again on retries): its scheduled
    time is past, so no `date`: Primotexto sends it at once."""
    rsps.post(SEND_URL, body=DOC_ANSWER)

    provider.send(DOC_SMS)  # scheduled for the doc's 2014-04-22 14:30 UTC, long past
    provider.send(replace(DOC_SMS, send_at=timezone.now() - timedelta(seconds=1)))

    doc_body_now = {key: value for key, value in DOC_BODY.items() if key != "date"}
    assert [json.loads(call.request.body) for call in rsps.calls] == [doc_body_now] * 2


@pytest.mark.parametrize(
    ("ahead", "dated"),
    [
        (timedelta(seconds=-1), False),
        (timedelta(0), False),
        (FUTURE_MARGIN - timedelta(seconds=1), False),  # could be past on arrival: sent now
        (FUTURE_MARGIN + timedelta(seconds=1), True),
        (timedelta(days=30), True),
    ],
)
def test_date_only_for_a_time_still_to_come(ahead, dated):
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    expected = epoch_milliseconds(now + ahead) if dated else None
    assert future_date(now + ahead, now=now) == expected
    assert future_date(None, now=now) is None


def test_send_parses_the_doc_answer(provider, rsps):
    rsps.post(SEND_URL, body=DOC_ANSWER, content_type="application/json;charset=UTF-8")

    result = provider.send(DOC_SMS)

    assert result == SendResult(
        provider_message_id="386479",
        status=DeliveryStatus.SENT,
        cost=Decimal("1.0"),
        raw={"creditsUsed": 1.0, "snapshotId": "386479"},
    )
    assert isinstance(result.cost, Decimal)


def test_send_omits_optional_fields_the_message_does_not_have(provider, rsps):
    rsps.post(SEND_URL, json={"creditsUsed": 2.0, "snapshotId": "386480"})

    result = provider.send(OutboundSMS(to="+33600000000", text="Bonjour"))

    assert json.loads(rsps.calls[0].request.body) == {
        "number": "+33600000000",
        "message": "Bonjour",
    }
    assert result.cost == Decimal("2.0")


def test_send_uses_the_account_base_url(rsps):
    provider = PrimotextoProvider(
        base_url="http://127.0.0.1:8025/", credentials={"api_key": API_KEY}
    )
    rsps.post("http://127.0.0.1:8025/v2/notification/messages/send", body=DOC_ANSWER)

    assert provider.send(DOC_SMS).provider_message_id == "386479"


def test_numeric_snapshot_id_becomes_a_string(provider, rsps):
    rsps.post(SEND_URL, json={"creditsUsed": 1.0, "snapshotId": 386479})

    assert provider.send(DOC_SMS).provider_message_id == "386479"


@pytest.mark.parametrize("answer", [{"snapshotId": "1"}, {"snapshotId": "1", "creditsUsed": "?"}])
def test_unreadable_cost_leaves_the_cost_unknown_but_keeps_the_send(provider, rsps, answer):
    rsps.post(SEND_URL, json=answer)

    result = provider.send(DOC_SMS)

    assert result.provider_message_id == "1"
    assert result.cost is None
    assert result.raw == answer


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2014, 4, 22, 14, 30, tzinfo=UTC),
        datetime(2014, 4, 22, 16, 30, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2014, 4, 22, 14, 30),  # naive: the project's zone, UTC in the test settings
    ],
)
def test_date_is_epoch_milliseconds(moment):
    assert epoch_milliseconds(moment) == 1398177000000


def test_date_keeps_milliseconds():
    moment = datetime(2014, 4, 22, 14, 30, 0, 123999, tzinfo=UTC)
    assert epoch_milliseconds(moment) == 1398177000123


# --- failures ----------------------------------------------------------------------------------
class TestPrimotextoHTTP(ProviderHTTPCases):
    """Error bodies are undocumented (NOTES.md: classify by status code)."""

    send_endpoint = ("POST", SEND_URL)
    check_endpoint = ("GET", STATS_URL)
    secrets = (API_KEY,)
    send_errors = [
        Answer(
            "400",
            {"status": 400, "body": '{"code": 10, "error": "invalid number"}'},
            ProviderRejected,
            ("Primotexto refused the request (HTTP 400)", "invalid number"),
        ),
        Answer("401", {"status": 401, "body": "Unauthorized"}, ProviderAccountError, ("api_key",)),
        Answer("403-empty", {"status": 403, "body": ""}, ProviderAccountError, ("(empty body)",)),
        Answer(
            "402-no-credits",
            {"status": 402, "body": "Payment Required"},
            ProviderAccountError,
            ("Primotexto refused the provider account (HTTP 402)", "credits"),
        ),
        Answer(
            "404-wrong-base-url",
            {"status": 404, "body": "Not Found"},
            ProviderAccountError,
            ("Primotexto refused the provider account (HTTP 404)", "base URL"),
        ),
        Answer(
            "500",
            {"status": 500, "body": "Internal Server Error"},
            ProviderTemporaryError,
            ("HTTP 500", "server error"),
        ),
        Answer(
            "200-html",
            {"status": 200, "body": "<html>Bienvenue</html>"},
            ProviderRejected,
            ("unreadable answer", "snapshotId", "Bienvenue"),
        ),
        Answer(
            "200-no-snapshot",
            {"status": 200, "body": '{"creditsUsed": 1.0}'},
            ProviderRejected,
            ("unreadable answer", "creditsUsed"),
        ),
        Answer(
            "200-empty",
            {"status": 200, "body": ""},
            ProviderRejected,
            ("unreadable answer", "(empty body)"),
        ),
        Answer("200-list", {"status": 200, "body": '["386479"]'}, ProviderRejected, ("386479",)),
    ]
    check_errors = [
        Answer("401", {"status": 401, "body": "Unauthorized"}, ProviderAccountError, ("api_key",)),
        Answer(
            "404-wrong-base-url",
            {"status": 404, "body": "Not Found"},
            ProviderAccountError,
            ("HTTP 404", "base URL"),
        ),
        Answer(
            "502", {"status": 502, "body": "Bad Gateway"}, ProviderTemporaryError, ("HTTP 502",)
        ),
        Answer(
            "200-html",
            {"status": 200, "body": "<html>Primotexto</html>"},
            ProviderConfigurationError,
            ("does not answer like Primotexto's API", "/v2/account/stats", "<html>"),
        ),
    ]

    def provider(self) -> PrimotextoProvider:
        return PrimotextoProvider(base_url=BASE, credentials={"api_key": API_KEY})

    def sms(self) -> OutboundSMS:
        return DOC_SMS


def test_error_body_is_kept_verbatim(provider, rsps):
    body = '{"code": 10, "error": "invalid number", "extra": "kept"}'
    rsps.post(SEND_URL, status=400, body=body)

    with pytest.raises(ProviderRejected) as caught:
        provider.send(DOC_SMS)

    assert caught.value.code == "400"
    assert body in caught.value.raw
    assert "(error: invalid number)" in caught.value.message


# --- validation before any call ----------------------------------------------------------------
def refused(**changes) -> OutboundSMS:
    fields = {
        "to": DOC_SMS.to,
        "text": DOC_SMS.text,
        "sender": DOC_SMS.sender,
        "campaign_name": DOC_SMS.campaign_name,
        "category": DOC_SMS.category,
    }
    return OutboundSMS(**{**fields, **changes})


@pytest.mark.parametrize(
    ("sms", "words"),
    [
        (refused(category="marketing"), ["forbids marketing", "notification"]),
        (refused(category=" Marketing "), ["forbids marketing"]),
        (refused(category="MARKETING"), ["forbids marketing"]),
        (refused(sender="AB"), ["'AB'", "3 to 11", "letters or digits"]),
        (refused(sender="ABCDEFGHIJKL"), ["'ABCDEFGHIJKL'", "3 to 11"]),
        (refused(sender="Your Co"), ["'Your Co'", "no spaces"]),
        (refused(sender="Société"), ["'Société'", "letters or digits"]),
        (refused(sender="Shop-24"), ["'Shop-24'", "letters or digits"]),
        (refused(to="0600000000"), ["'0600000000'", "E.164"]),
        (refused(to="+33 6 00 00 00 00"), ["E.164"]),
        (refused(text="Prix: 5€"), ["does not accept", "'€'"]),
        (refused(text="Ça coûte [5] €"), ["does not accept", "'Ç', 'û', '[', ']', '€'"]),
        (refused(text="Élodie, ÄÖäö ß"), ["'É', 'Ä', 'Ö', 'ä', 'ö', 'ß'"]),
        (refused(text="Merci 🙂"), ["'🙂'"]),
        (refused(text="a\tb"), ["'\\t'"]),
        (refused(text=""), ["empty"]),
    ],
    ids=[
        "marketing",
        "marketing-mixed-case",
        "marketing-upper",
        "sender-short",
        "sender-long",
        "sender-space",
        "sender-accent",
        "sender-punctuation",
        "number-national",
        "number-spaces",
        "euro",
        "cedilla-brackets",
        "gsm-but-not-listed",
        "emoji",
        "tab",
        "empty",
    ],
)
def test_validate_refuses_before_any_call(provider, rsps, sms, words):
    with pytest.raises(ProviderRejected) as caught:
        provider.send(sms)

    assert caught.value.retryable is False
    for word in words:
        assert word in caught.value.message
    assert len(rsps.calls) == 0


def test_charset_refusal_names_each_character_once_in_order(provider):
    with pytest.raises(ProviderRejected) as caught:
        provider.validate(refused(text="€ puis [ puis € puis ]"))

    assert "characters Primotexto does not accept: '€', '[', ']'." in caught.value.message


def test_every_listed_character_space_and_line_breaks_are_accepted(provider, rsps):
    rsps.post(SEND_URL, body=DOC_ANSWER)
    text = DOC_CHARACTERS + " \n\r"

    provider.send(refused(text=text, sender="", campaign_name="", category=""))

    assert json.loads(rsps.calls[0].request.body) == {"number": "+33600000000", "message": text}


def test_allowed_characters_are_the_doc_list_a_subset_of_gsm7():
    assert set(DOC_CHARACTERS) <= GSM7_CHARACTERS
    assert set(DOC_CHARACTERS) | {" ", "\n", "\r"} == ALLOWED_CHARACTERS
    assert {"€", "[", "]", "É", "Ç", "\f"}.isdisjoint(ALLOWED_CHARACTERS)


@pytest.mark.parametrize("sender", ["abc", "YourCompany", "Shop24", "12345"])
def test_valid_senders_are_accepted(provider, sender):
    provider.validate(refused(sender=sender))


def test_non_marketing_categories_are_accepted(provider):
    provider.validate(refused(category="marketing-notice"))
    provider.validate(refused(category="codeConfirmation"))


@pytest.mark.parametrize("credentials", [{}, {"api_key": ""}, {"api_key": "  "}])
def test_missing_api_key_is_a_configuration_error_before_any_call(rsps, credentials):
    provider = PrimotextoProvider(base_url=BASE, credentials=credentials)

    with pytest.raises(ProviderConfigurationError) as caught:
        provider.send(DOC_SMS)

    assert "api_key" in caught.value.message
    assert len(rsps.calls) == 0


# --- what Primotexto sends back: no documented callback format -----------------------------------
@pytest.mark.parametrize("hook", ["parse_delivery_reports", "parse_inbound"])
def test_parse_hooks_refuse_because_the_doc_documents_no_callback(provider, hook):
    request = RequestFactory().post(
        "/hooks/primotexto/token/dlr/",
        data=json.dumps({"snapshotId": "386479", "status": "delivered"}),
        content_type="application/json",
    )

    with pytest.raises(WebhookValidationError) as caught:
        getattr(provider, hook)(request)

    assert "primotexto does not send" in str(caught.value)


# --- check -------------------------------------------------------------------------------------
def test_check_verifies_the_key_on_the_account_endpoint(provider, rsps):
    rsps.get(STATS_URL, json={"credits": 1234.5})

    description = provider.check()

    assert "accepts the API key" in description
    assert "1234.5 credits" in description
    sent = rsps.calls[0].request
    assert sent.method == "GET"
    assert sent.url == STATS_URL
    assert sent.headers["X-Primotexto-ApiKey"] == API_KEY


def test_check_without_credits_in_the_answer(provider, rsps):
    rsps.get(STATS_URL, json={"email": "ops@example.com"})

    assert provider.check() == "Primotexto accepts the API key"


def test_check_without_api_key_makes_no_call(rsps):
    provider = PrimotextoProvider(base_url=BASE, credentials={})

    with pytest.raises(ProviderConfigurationError):
        provider.check()

    assert len(rsps.calls) == 0


# --- against the simulator's fake, in each reading the doc allows ------------------------------
# What Primotexto does with a `date` in the past is not documented: the fake refuses it (as a
# real provider plausibly would) or sends at once; the adapter must work with either.
def primotexto_through(sim, reading):
    sim.configure(credentials={"primotexto": {"past_date": reading}})
    return PrimotextoProvider(base_url=sim.url, credentials={"api_key": "primotexto-key"})


def bodies_received(sim):
    return [e["body"] for e in sim.requests_log if e.get("provider") == "primotexto"]


@pytest.mark.parametrize("reading", ["refuse", "send_now"])
def test_due_and_retried_messages_are_accepted_in_every_reading(sim, reading):
    adapter = primotexto_through(sim, reading)
    first = adapter.send(DOC_SMS)  # the doc's example, due since 2014
    retried = adapter.send(replace(DOC_SMS, send_at=timezone.now() - timedelta(minutes=5)))
    ahead = timezone.now() + timedelta(hours=2)
    scheduled = adapter.send(replace(DOC_SMS, send_at=ahead))

    assert all(r.status == DeliveryStatus.SENT for r in (first, retried, scheduled))
    doc_body_now = {key: value for key, value in DOC_BODY.items() if key != "date"}
    assert bodies_received(sim) == [
        doc_body_now,
        doc_body_now,
        {**DOC_BODY, "date": epoch_milliseconds(ahead)},
    ]


@pytest.mark.parametrize(("reading", "status"), [("refuse", 400), ("send_now", 200)])
def test_the_fake_answers_the_docs_past_date_in_its_reading(sim, reading, status):
    """Why the adapter never sends a past `date`: the default reading refuses it."""
    primotexto_through(sim, reading)
    response = requests.post(
        f"{sim.url}/v2/notification/messages/send",
        json=DOC_BODY,  # "date": 1398177000000, in 2014
        headers={"X-Primotexto-ApiKey": "primotexto-key"},
        timeout=5,
    )
    assert response.status_code == status
    if status == 400:
        assert "'date' is in the past" in response.json()["error"]
