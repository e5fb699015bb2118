"""Ogangi Mobile Engagement adapter: signed path URLs, XML answers, polled replies.

Fixtures are the doc's own examples: from 19893653744, to 13056708084, "OGANGI TEST MESSAGE",
the sendSMS / getMOMessages / sendSMSPinMobileNumberConfirm answers, and the keys of Ogangi's
public Java example (instance 8). Expected signatures were computed outside the adapter
(``openssl dgst -sha256 -hmac``, ``-binary | base64``), in each of the four signature readings.
The same adapter against the simulator's fake, in every reading and list order:
``test_ogangi_readings.py``, ``test_ogangi_polling.py``.
"""

import re
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.test import RequestFactory

from providers import ogangi
from providers.events import DeliveryStatus, OutboundSMS
from providers.exceptions import (
    ProviderAccountError,
    ProviderConfigurationError,
    ProviderError,
    ProviderRejected,
    ProviderTemporaryError,
    WebhookValidationError,
)
from providers.ogangi import OgangiProvider

from .http_cases import Answer, ProviderHTTPCases

BASE = "https://ogangi.test/mmc"
PUBLIC_KEY = "4BFB-4943-9546-9BB8964254F2"
PRIVATE_KEY = "FBF3-4310-909C-C4BBC26F886F"
CREDENTIALS = {"instance_id": "8", "public_key": PUBLIC_KEY, "private_key": PRIVATE_KEY}

# instanceId/carrier/from/base64(mobileNumber)/base64(text), each segment percent-encoded.
SEND_PARAMS = "8/null/19893653744/MTMwNTY3MDgwODQ%3D/T0dBTkdJIFRFU1QgTUVTU0FHRQ%3D%3D"
SEND_SIGNATURE_HEX = "79f854c62ef72e1cd410171658da6eab1d3e805a715d43c76aabe96f5e9a104c"
SEND_SIGNATURE_B64 = "efhUxi73LhzUEBcWWNpuqx0+gFpxXUPHaqvpb16aEEw="
SEND_URL = f"{BASE}/rest/api/tools/sendSMS/{SEND_PARAMS}/{PUBLIC_KEY}/{SEND_SIGNATURE_HEX}"
# The same call signed over the decoded values "8/null/19893653744/MTMwNTY3MDgwODQ=/T0dB...RQ==".
SEND_SIGNATURE_DECODED_HEX = "ba4e518e6ca081daea5e5501f51cbca0afa70caf3fee3659319014eb4d3bcb40"
SEND_SIGNATURE_DECODED_B64 = "uk5RjmyggdrqXlUB9Ry8oK+nDK8/7jZZMZAU6007y0A="

MO_URL_PAGE_1 = (
    f"{BASE}/rest/api/tools/getMOMessages/8/1/100/order%3Ddesc/{PUBLIC_KEY}/"
    "8b5b2a9c1a116f1d20ca0037ed0c6cd5e2f83e5c9478c35a479a3b9b57355884"
)
CHECK_PATH = f"{BASE}/rest/api/tools/getMOMessages/8/1/1/order%3Ddesc/{PUBLIC_KEY}/"
# The check's signature in each reading: over "8/1/1/order%3Ddesc" (encoded) or "8/1/1/order=desc".
CHECK_SIGNATURES = {
    ("encoded", "hex"): "80fa41134003c0539bc42ad0e1758ccac7f07ff98ff99720241ece4de0cbf653",
    ("encoded", "base64"): "gPpBE0ADwFObxCrQ4XWMysfwf%2FmP%2BZcgJB7OTeDL9lM%3D",
    ("decoded", "hex"): "958baa984cfa7c6a423c174fc5e421c1fd200588ff9b88a07603cd261bd548cc",
    ("decoded", "base64"): "lYuqmEz6fGpCPBdPxeQhwf0gBYj%2Fm4igdgPNJhvVSMw%3D",
}
CHECK_URL = CHECK_PATH + CHECK_SIGNATURES["encoded", "hex"]
HINT = (
    "check public_key, private_key, signature_segments and signature_encoding; Test connection "
    "(manage.py checkprovider) finds the signature reading Ogangi accepts"
)

# The doc's sendSMS answer, verbatim (no root element, as in the doc).
SEND_OK = (
    "<input>sendSMS</input> <status>OK</status> <description>Completed</description> <result> "
    "<messages> <message> <id>-8174720676710228700</id> <carrier>carrierName</carrier> "
    "<from>19893653744</from> <to>13056708084</to> <text>OGANGI TEST MESSAGE</text> "
    "<status>SENT_TO_CARRIER</status> <statusDescription>Sent to Carrier</statusDescription> "
    "<encoding>UTF-8</encoding> <date>2013-09-17T10:13:59.176-04:30</date> "
    "<timezone>America/Caracas</timezone> <clientId>As223sdadq8d8287v5v</clientId> </message> "
    "</messages> </result>"
)
BAD_SIGNATURE = (
    "<input>sendSMS</input><status>BAD_SIGNATURE</status>"
    "<description>Invalid signature, access denied</description>"
)
INTERNAL_ERROR = (
    "<input>sendSMS</input><status>ERROR</status>"
    "<description>Internal error, please report this to support@messangi.com</description>"
)

# The doc's getMOMessages answer, with its typo fixed (it closes MOMessageList with an opening tag).
MO_DOC_EXAMPLE = (
    "<input>getMOMessages</input> <status>OK</status> <description>Completed</description> "
    "<result> <MOMessageList> <records>17</records> <MessageList> <MOMessage> <text>Test</text> "
    "<from>58123456789</from> <to>19893143924</to> <encoding>UTF-8</encoding> "
    "<keyword>^OGANGI.*</keyword> <carrier>Movistar</carrier> "
    "<sendDate>2014-10-13 10:30:51.922</sendDate> </MOMessage> </MessageList> </MOMessageList> "
    "</result>"
)
MO_DOC_EXAMPLE_VERBATIM = MO_DOC_EXAMPLE.replace("</MOMessageList>", "<MOMessageList>")

DOC_SMS = OutboundSMS(to="+13056708084", text="OGANGI TEST MESSAGE", sender="19893653744")


def provider(**credentials) -> OgangiProvider:
    return OgangiProvider(base_url=BASE + "/", credentials={**CREDENTIALS, **credentials})


def mo(text: str, sender: str, send_date: str, to: str = "19893143924") -> str:
    return (
        f"<MOMessage><text>{text}</text><from>{sender}</from><to>{to}</to>"
        f"<encoding>UTF-8</encoding><carrier>Movistar</carrier><sendDate>{send_date}</sendDate>"
        "</MOMessage>"
    )


def mo_answer(*messages: str, records: int | None = None) -> str:
    total = len(messages) if records is None else records
    return (
        "<response><input>getMOMessages</input><status>OK</status>"
        "<description>Completed</description><result><MOMessageList>"
        f"<records>{total}</records><MessageList>{''.join(messages)}</MessageList>"
        "</MOMessageList></result></response>"
    )


def mo_url(page: int, per_page: int = 100) -> str:
    """The getMOMessages URL for a page, signed by the adapter (its rule is pinned above)."""
    params = ["8", str(page), str(per_page), "order=desc"]
    return provider().signed_url("tools/getMOMessages", params)


# --- sending -------------------------------------------------------------------------------------
def test_send_makes_the_exact_signed_request_of_the_doc():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(SEND_URL, body=SEND_OK, content_type="application/xml")
        result = provider().send(DOC_SMS)
        request = rsps.calls[0].request

    assert request.method == "GET"
    assert request.url == SEND_URL
    assert request.body is None
    assert "Authorization" not in request.headers
    assert PRIVATE_KEY not in request.url  # the private key only signs
    assert result.provider_message_id == "-8174720676710228700"
    assert result.status == DeliveryStatus.SENT
    assert result.cost is None
    assert result.raw["message"]["status"] == "SENT_TO_CARRIER"
    assert result.raw["message"]["to"] == "13056708084"


def test_base64_signature_is_percent_encoded_in_the_path():
    encoded = "efhUxi73LhzUEBcWWNpuqx0%2BgFpxXUPHaqvpb16aEEw%3D"
    url = f"{BASE}/rest/api/tools/sendSMS/{SEND_PARAMS}/{PUBLIC_KEY}/{encoded}"
    with responses.RequestsMock() as rsps:
        rsps.get(url, body=SEND_OK)
        provider(signature_encoding="base64").send(DOC_SMS)
        sent = rsps.calls[0].request.url
    assert sent == url
    assert SEND_SIGNATURE_B64 not in sent  # raw + and = never reach the path


@pytest.mark.parametrize(
    ("reading", "signature"),
    [
        ({}, SEND_SIGNATURE_HEX),
        ({"signature_encoding": "base64"}, "efhUxi73LhzUEBcWWNpuqx0%2BgFpxXUPHaqvpb16aEEw%3D"),
        ({"signature_segments": "decoded"}, SEND_SIGNATURE_DECODED_HEX),
        (
            {"signature_segments": "DECODED", "signature_encoding": "Base64"},
            "uk5RjmyggdrqXlUB9Ry8oK%2BnDK8%2F7jZZMZAU6007y0A%3D",
        ),
    ],
    ids=["encoded-hex", "encoded-base64", "decoded-hex", "decoded-base64"],
)
def test_each_signature_reading_signs_the_doc_example(reading, signature):
    """The path is the same in every reading; only the signature differs."""
    url = f"{BASE}/rest/api/tools/sendSMS/{SEND_PARAMS}/{PUBLIC_KEY}/{signature}"
    with responses.RequestsMock() as rsps:
        rsps.get(url, body=SEND_OK)
        provider(**reading).send(DOC_SMS)
        assert rsps.calls[0].request.url == url


def test_configured_carrier_and_unicode_text_are_encoded_and_signed():
    sms = OutboundSMS(to="+584121234567", text="¿Qué tal? 👋 a/b+c", sender="+2020")
    request = provider(carrier="Movistar VE").build_request(sms)
    path = request.url.removeprefix(f"{BASE}/rest/api/tools/sendSMS/")
    segments = path.split("/")
    assert segments[:3] == ["8", "Movistar%20VE", "2020"]
    assert segments[3] == "NTg0MTIxMjM0NTY3"  # base64("584121234567"): no plus sign
    assert segments[4] == "wr9RdcOpIHRhbD8g8J%2BRiyBhL2IrYw%3D%3D"  # base64 of the UTF-8 text
    assert segments[5] == PUBLIC_KEY
    # The signature covers exactly the encoded text before the public key.
    assert segments[6] == provider().sign("/".join(segments[:5]))
    assert len(segments) == 7


def test_a_single_root_around_the_answer_is_read_too():
    wrapped = f'<?xml version="1.0" encoding="UTF-8"?><response>{SEND_OK}</response>'
    with responses.RequestsMock() as rsps:
        rsps.get(SEND_URL, body=wrapped)
        result = provider().send(DOC_SMS)
    assert result.provider_message_id == "-8174720676710228700"


def test_a_declaration_before_rootless_answer_is_accepted():
    with responses.RequestsMock() as rsps:
        rsps.get(SEND_URL, body=f'<?xml version="1.0" encoding="UTF-8"?>\n{SEND_OK}')
        result = provider().send(DOC_SMS)
    assert result.provider_message_id == "-8174720676710228700"


ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    "<response><status>OK</status><description>&lol2;</description></response>"
)


def message_status(word: str, description: str) -> str:
    """The doc's sendSMS answer with the message in another state."""
    return SEND_OK.replace("SENT_TO_CARRIER", word).replace("Sent to Carrier", description)


# Ogangi's message statuses that say the message was not sent, and what each means.
MESSAGE_STATUS_CLASSES = {
    "NOT_SENT": ProviderRejected,
    "BAD_FROM": ProviderRejected,
    "BAD_TO": ProviderRejected,
    "BAD_ENCODING": ProviderRejected,
    "BAD_CARRIER/FROM": ProviderRejected,
    "SEGMENTS_EXCEEDED": ProviderRejected,
    "UNREACHABLE": ProviderRejected,
    "UNDELIVERED": ProviderRejected,
    "EXPIRED": ProviderRejected,
    "NOT_ENOUGH_FUNDS": ProviderAccountError,
    "BAD_TIMEZONE": ProviderAccountError,
}


class TestOgangiHTTP(ProviderHTTPCases):
    """The words of Ogangi's answers (top-level status, then the message's own status), at the
    HTTP statuses they may come with (the doc documents none)."""

    send_endpoint = ("GET", SEND_URL)
    # A refused signature makes the check try every reading: each gets the same answer here.
    check_endpoint = ("GET", re.compile(re.escape(CHECK_PATH) + r"[^/]+$"))
    secrets = (PRIVATE_KEY,)
    send_errors = [
        Answer(
            "200-BAD_SIGNATURE",
            {"status": 200, "body": BAD_SIGNATURE},
            ProviderAccountError,
            (
                "credentials refused by Ogangi Mobile Engagement: BAD_SIGNATURE: Invalid "
                f"signature, access denied ({HINT})",
            ),
        ),
        Answer(
            "403-BAD_SIGNATURE",
            {"status": 403, "body": BAD_SIGNATURE},
            ProviderAccountError,
            ("(HTTP 403): BAD_SIGNATURE: Invalid signature", "check public_key"),
        ),
        Answer(
            "400-BAD_SIGNATURE",
            {"status": 400, "body": BAD_SIGNATURE},
            ProviderAccountError,
            ("credentials refused by Ogangi Mobile Engagement (HTTP 400): BAD_SIGNATURE",),
        ),
        Answer(
            "200-ERROR",
            {"status": 200, "body": INTERNAL_ERROR},
            ProviderTemporaryError,
            ("temporary error from Ogangi Mobile Engagement: ERROR: Internal error",),
        ),
        Answer(
            "500-ERROR",
            {"status": 500, "body": INTERNAL_ERROR},
            ProviderTemporaryError,
            ("(HTTP 500): ERROR: Internal error",),
        ),
        Answer(
            "400-ERROR", {"status": 400, "body": INTERNAL_ERROR}, ProviderTemporaryError, ("ERROR",)
        ),
        *(
            Answer(
                f"200-message-{word}",
                {"status": 200, "body": message_status(word, "Message not sent.")},
                error,
                (f"{word}: Message not sent.",),
            )
            for word, error in MESSAGE_STATUS_CLASSES.items()
        ),
        Answer(
            "200-BAD_TO",
            {
                "status": 200,
                "body": message_status("BAD_TO", "Message not sent. Invalid 'to' parameter."),
            },
            ProviderRejected,
            ("Ogangi Mobile Engagement refused the message: BAD_TO: Message not sent. Invalid",),
        ),
        Answer(
            "200-NOT_ENOUGH_FUNDS",
            {"status": 200, "body": message_status("NOT_ENOUGH_FUNDS", "Not enough funds")},
            ProviderAccountError,
            ("Ogangi Mobile Engagement refused the provider account: NOT_ENOUGH_FUNDS", "top up"),
        ),
        Answer(
            "200-unknown-word",
            {"status": 200, "body": BAD_SIGNATURE.replace("BAD_SIGNATURE", "SOMETHING_NEW")},
            ProviderRejected,
            ("Ogangi Mobile Engagement refused the message: SOMETHING_NEW",),
        ),
        Answer(
            "400-text",
            {"status": 400, "body": "Bad Request: malformed path"},
            ProviderRejected,
            ("HTTP 400", "malformed"),
        ),
        Answer(
            "404-html",  # the path carries the message: a 404 is not taken as a wrong base URL
            {"status": 404, "body": "<html>Not Found</html>"},
            ProviderRejected,
            ("HTTP 404",),
        ),
        Answer(
            "200-not-xml",
            {"status": 200, "body": "<<< not xml"},
            ProviderRejected,
            ("unreadable", "not XML"),
        ),
        Answer(
            "200-text",
            {"status": 200, "body": "Service temporarily down"},
            ProviderRejected,
            ("no <status>",),
        ),
        Answer(
            "200-html",
            {"status": 200, "body": "<html><body>Login</body></html>"},
            ProviderRejected,
            ("unreadable",),
        ),
        Answer("200-entity-bomb", {"status": 200, "body": ENTITY_BOMB}, ProviderRejected),
        Answer(
            "200-no-message-id",
            {
                "status": 200,
                "body": "<input>sendSMS</input><status>OK</status>"
                "<description>Completed</description>",
            },
            ProviderRejected,
            ("no <message><id>",),
        ),
    ]
    check_errors = [
        Answer(
            "200-BAD_SIGNATURE",
            {"status": 200, "body": BAD_SIGNATURE.replace("sendSMS", "getMOMessages")},
            ProviderAccountError,
            (
                "credentials refused by",
                "BAD_SIGNATURE",
                "check public_key",
                "No signature reading is accepted",
                "the keys or the instance are wrong",
            ),
        ),
        Answer(
            "200-ERROR",
            {"status": 200, "body": INTERNAL_ERROR.replace("sendSMS", "getMOMessages")},
            ProviderTemporaryError,
            ("Internal error",),
        ),
        Answer(
            "400-unknown-word",
            {"status": 400, "body": "<status>SOMETHING_NEW</status><input>getMOMessages</input>"},
            ProviderRejected,
            ("HTTP 400",),
        ),
        Answer("404-html", {"status": 404, "body": "<html>Not Found</html>"}, ProviderRejected),
    ]

    def provider(self) -> OgangiProvider:
        return provider()

    def sms(self) -> OutboundSMS:
        return DOC_SMS


def test_every_state_word_that_is_not_sent_is_classed():
    """A message state that says it was not sent is an error of the table, never "sent"."""
    not_sent = {
        word.upper()
        for word, status in OgangiProvider.status_map.items()
        if status not in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    }
    assert not_sent <= set(OgangiProvider.errors)
    assert set(MESSAGE_STATUS_CLASSES) <= set(OgangiProvider.errors)


def test_unknown_message_status_next_to_an_id_counts_as_sent(caplog):
    body = SEND_OK.replace("SENT_TO_CARRIER", "QUEUED_SOMEWHERE")
    with responses.RequestsMock() as rsps:
        rsps.get(SEND_URL, body=body)
        result = provider().send(DOC_SMS)
    assert result.status == DeliveryStatus.SENT
    assert "QUEUED_SOMEWHERE" in caplog.text


@pytest.mark.parametrize(
    ("sms", "words"),
    [
        (OutboundSMS(to="+13056708084", text="", sender="19893653744"), ["empty"]),
        (OutboundSMS(to="13056708084x", text="Hi", sender="19893653744"), ["recipient", "E.164"]),
        (OutboundSMS(to="+12345", text="Hi", sender="19893653744"), ["recipient", "7 to 15"]),
        (OutboundSMS(to="+13056708084", text="Hi", sender=""), ["needs a sender", "short or long"]),
        (OutboundSMS(to="+13056708084", text="Hi", sender="ACME"), ["3 to 15 digits", "'ACME'"]),
        (OutboundSMS(to="+13056708084", text="Hi", sender="12"), ["3 to 15 digits"]),
        (
            OutboundSMS(to="+13056708084", text="x" * 1601, sender="19893653744"),
            ["1601 characters", "1600"],
        ),
        (OutboundSMS(to="+13056708084", text="a\ud800b", sender="19893653744"), ["UTF-8"]),
    ],
)
def test_validate_refuses_before_any_call(sms, words):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderRejected) as caught:
            provider().send(sms)
        assert len(rsps.calls) == 0
    assert caught.value.retryable is False
    for word in words:
        assert word in caught.value.message


def test_the_longest_allowed_text_is_accepted():
    provider().validate(OutboundSMS(to="+13056708084", text="x" * 1600, sender="19893653744"))


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        ({"instance_id": "8", "public_key": PUBLIC_KEY}, ["private_key"]),
        ({**CREDENTIALS, "signature_encoding": "sha"}, ["hex", "base64", "'sha'"]),
        (
            {**CREDENTIALS, "signature_segments": "raw"},
            ["signature_segments", "'encoded' or 'decoded'", "'raw'"],
        ),
    ],
)
def test_configuration_errors_before_any_call(credentials, words):
    adapter = OgangiProvider(base_url=BASE, credentials=credentials)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderConfigurationError) as caught:
            adapter.send(DOC_SMS)
        assert len(rsps.calls) == 0
    for word in words:
        assert word in caught.value.message


def test_describe_error_reads_ogangi_xml_or_keeps_the_raw_text():
    adapter = provider()
    xml = requests.Response()
    xml._content = BAD_SIGNATURE.encode()
    assert (
        adapter.describe_error(xml) == f"BAD_SIGNATURE: Invalid signature, access denied ({HINT})"
    )
    html = requests.Response()
    html._content = b"<html><body>Not found</body></html>"
    assert adapter.describe_error(html) is None
    text = requests.Response()
    text._content = b"<<<"
    assert adapter.describe_error(text) is None


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("SENT_TO_CARRIER", DeliveryStatus.SENT),
        ("SENT", DeliveryStatus.SENT),
        ("DELIVERED_TO_CARRIER", DeliveryStatus.SENT),
        ("PENDING", DeliveryStatus.SENT),
        ("DELIVERED_TO_DEVICE", DeliveryStatus.DELIVERED),
        ("DELIVERED", DeliveryStatus.DELIVERED),
        ("UNDELIVERED", DeliveryStatus.UNDELIVERED),
        ("UNREACHABLE", DeliveryStatus.UNDELIVERED),
        ("EXPIRED", DeliveryStatus.EXPIRED),
        ("NOT_SENT", DeliveryStatus.FAILED),
        ("BAD_CARRIER/FROM", DeliveryStatus.FAILED),
        ("NOT_ENOUGH_FUNDS", DeliveryStatus.FAILED),
    ],
)
def test_status_words(word, status):
    assert provider().map_status(word) == status


def test_unknown_status_word_is_refused_by_map_status():
    with pytest.raises(WebhookValidationError, match="unknown ogangi status"):
        provider().map_status("SOMETHING_ELSE")


# --- one-time codes ------------------------------------------------------------------------------
def test_send_pin_makes_the_signed_request_and_returns_the_pin():
    """The carrier's name, case sensitive, as the doc's getMOMessages example writes it."""
    adapter = provider(carrier="Movistar")
    text = "Your code"
    params = ["8", "Movistar", "19893653744", "13056708084", "WW91ciBjb2Rl", "6"]
    signed = "/".join(params)
    url = (
        f"{BASE}/rest/api/tools/sendSMSPinMobileNumberConfirm/{signed}/{PUBLIC_KEY}/"
        f"{adapter.sign(signed)}"
    )
    body = (
        "<input>sendSMSPinMobileNumberConfirm</input> <status>OK</status> "
        "<description>Completed</description> <result> <PinSMSConfirmation> <pin>846547</pin> "
        "</PinSMSConfirmation> </result>"
    )
    with responses.RequestsMock() as rsps:
        rsps.get(url, body=body)
        pin = adapter.send_pin("+13056708084", text, sender="19893653744")
        assert rsps.calls[0].request.url == url
    assert pin == "846547"


@pytest.mark.parametrize("carrier", [None, "", "  ", "null", "NULL"])
def test_send_pin_without_a_carrier_name_is_refused_before_any_call(carrier):
    adapter = provider() if carrier is None else provider(carrier=carrier)
    assert "'carrier' credential" in adapter.pin_unavailable()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderConfigurationError, match="carrier's name") as caught:
            adapter.send_pin("+13056708084", "Your code", sender="19893653744")
        assert len(rsps.calls) == 0
    assert caught.value.code == "no_carrier"
    assert provider(carrier="Movistar").pin_unavailable() is None


@pytest.mark.parametrize("length", [3, 13, "6", True])
def test_send_pin_refuses_odd_lengths_before_any_call(length):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderRejected, match="PIN length"):
            provider(carrier="Movistar").send_pin(
                "+13056708084", "Your code", sender="19893653744", length=length
            )
        assert len(rsps.calls) == 0


def test_send_pin_without_a_pin_in_the_answer_is_unreadable():
    with responses.RequestsMock() as rsps:
        rsps.get(
            url=re.compile(r".*/sendSMSPinMobileNumberConfirm/.*"),
            body="<status>OK</status><description>Completed</description><result/>",
        )
        with pytest.raises(ProviderRejected, match="no <PinSMSConfirmation><pin>"):
            provider(carrier="Movistar").send_pin("+13056708084", "Your code", sender="19893653744")


# --- check ---------------------------------------------------------------------------------------
def test_check_makes_one_cheap_signed_read():
    with responses.RequestsMock() as rsps:
        rsps.get(CHECK_URL, body=MO_DOC_EXAMPLE)
        description = provider().check()
        assert rsps.calls[0].request.url == CHECK_URL
    assert "accepts the signature" in description
    assert "(signature_segments=encoded, signature_encoding=hex)" in description
    assert "17 replies" in description


def test_check_tries_the_other_readings_in_turn_and_names_the_one_accepted():
    refused = BAD_SIGNATURE.replace("sendSMS", "getMOMessages")
    tried = [("encoded", "hex"), ("encoded", "base64"), ("decoded", "hex")]
    with responses.RequestsMock() as rsps:
        for reading in tried[:2]:
            rsps.get(CHECK_PATH + CHECK_SIGNATURES[reading], body=refused, status=403)
        rsps.get(CHECK_PATH + CHECK_SIGNATURES[tried[2]], body=MO_DOC_EXAMPLE)
        with pytest.raises(ProviderConfigurationError) as caught:
            provider().check()
        assert [call.request.url for call in rsps.calls] == [
            CHECK_PATH + CHECK_SIGNATURES[reading] for reading in tried
        ]
    assert caught.value.message == (
        "credentials refused by Ogangi Mobile Engagement: Ogangi refuses the signature as "
        "configured (signature_segments=encoded, signature_encoding=hex) but accepts "
        "signature_segments=decoded, signature_encoding=hex: set the provider account's "
        'credentials signature_segments to "decoded" and signature_encoding to "hex", then test '
        "again (nothing was changed automatically)"
    )
    assert PRIVATE_KEY not in caught.value.message


def test_check_does_not_guess_a_reading_when_another_call_fails_otherwise():
    refused = BAD_SIGNATURE.replace("sendSMS", "getMOMessages")
    with responses.RequestsMock() as rsps:
        rsps.get(CHECK_URL, body=refused)
        rsps.get(CHECK_PATH + CHECK_SIGNATURES["encoded", "base64"], body="<html>busy</html>")
        with pytest.raises(ProviderRejected, match="unreadable"):
            provider().check()


def test_the_check_search_string_tells_the_segment_readings_apart():
    assert ogangi.segment(ogangi.MO_SEARCH) != ogangi.MO_SEARCH


def test_check_without_credentials_is_a_configuration_error():
    adapter = OgangiProvider(base_url=BASE, credentials={"instance_id": "8"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderConfigurationError, match="public_key"):
            adapter.check()
        assert len(rsps.calls) == 0


# --- polled replies ------------------------------------------------------------------------------
def test_fetch_inbound_reads_the_doc_example():
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=MO_DOC_EXAMPLE)
        replies, cursor = provider().fetch_inbound("")
        assert rsps.calls[0].request.url == MO_URL_PAGE_1
    assert len(replies) == 1
    reply = replies[0]
    assert reply.from_number == "58123456789"
    assert reply.to_number == "19893143924"
    assert reply.text == "Test"
    assert reply.received_at == datetime(2014, 10, 13, 10, 30, 51, 922000, tzinfo=UTC)
    assert len(reply.provider_message_id) == 32
    assert reply.raw["keyword"] == "^OGANGI.*"
    assert reply.raw["carrier"] == "Movistar"
    # Floor: the newest sendDate (2014-10-13 10:30:51.922 UTC, 1413196251922 ms) minus 2 minutes;
    # then the reply listed, the count of replies read (the doc's <records>17</records> is more
    # than its page holds: one), and the first reply of page 1 (the same one).
    assert (
        cursor
        == f"1413196131922:{reply.provider_message_id[:10]}|1^{reply.provider_message_id[:10]}"
    )


def test_fetch_inbound_never_returns_a_reply_twice():
    first = mo("Hello", "58123456789", "2014-10-13 10:30:51.922")
    second = mo("STOP", "58111111111", "2014-10-13 10:31:02.000")
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=mo_answer(first))
        replies, cursor = provider().fetch_inbound("")
        assert [r.text for r in replies] == ["Hello"]

        rsps.replace(responses.GET, MO_URL_PAGE_1, body=mo_answer(first))
        again, cursor = provider().fetch_inbound(cursor)
        assert again == []

        rsps.replace(responses.GET, MO_URL_PAGE_1, body=mo_answer(second, first))
        newer, cursor = provider().fetch_inbound(cursor)
        assert [(r.from_number, r.text) for r in newer] == [("58111111111", "STOP")]

        rsps.replace(responses.GET, MO_URL_PAGE_1, body=mo_answer(second, first))
        assert provider().fetch_inbound(cursor)[0] == []


def test_fetch_inbound_catches_a_late_reply_dated_before_the_newest():
    newest = mo("Later", "58100000001", "2014-10-13 10:40:00.000")
    late = mo("Late", "58100000002", "2014-10-13 10:39:00.000")  # within the 2 min overlap
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=mo_answer(newest))
        _, cursor = provider().fetch_inbound("")
        rsps.replace(responses.GET, MO_URL_PAGE_1, body=mo_answer(newest, late))
        replies, _ = provider().fetch_inbound(cursor)
    assert [r.text for r in replies] == ["Late"]


def test_fetch_inbound_walks_pages_and_returns_oldest_first(monkeypatch):
    monkeypatch.setattr(ogangi, "MO_PER_PAGE", 2)
    page_1 = mo_answer(
        mo("c", "5801", "2014-10-13T10:03:00.000-04:30"),
        mo("b", "5802", "2014-10-13T10:02:00.000-04:30"),
        records=3,
    )
    page_2 = mo_answer(mo("a", "5803", "2014-10-13T10:01:00.000-04:30"), records=3)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(mo_url(1, 2), body=page_1)
        rsps.get(mo_url(2, 2), body=page_2)
        replies, cursor = provider().fetch_inbound("")
    assert [r.text for r in replies] == ["a", "b", "c"]
    assert replies[0].received_at == datetime(2014, 10, 13, 14, 31, tzinfo=UTC)
    assert cursor.startswith(f"{1413210780000 - 120000}:")  # 14:33 UTC minus 2 minutes
    assert len(cursor.split(":")[1].split(",")) == 2  # "a" sits on the floor: not listed


def test_fetch_inbound_stops_once_it_reaches_old_replies(monkeypatch):
    monkeypatch.setattr(ogangi, "MO_PER_PAGE", 2)
    cursor = "1413201600000:"  # 2014-10-13 12:00 UTC, nothing listed
    page_1 = mo_answer(
        mo("new", "5801", "2014-10-13 12:05:00.000"),
        mo("old", "5802", "2014-10-13 09:00:00.000"),
        records=40,
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(mo_url(1, 2), body=page_1)  # page 2 is never asked for
        replies, _ = provider().fetch_inbound(cursor)
    assert [r.text for r in replies] == ["new"]


def test_a_burst_of_replies_keeps_the_cursor_within_its_field():
    burst = [mo(f"r{n}", f"58100000{n:03d}", f"2014-10-13 10:40:{n:02d}.000") for n in range(30)]
    body = mo_answer(*reversed(burst))
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=body)
        replies, cursor = provider().fetch_inbound("")
        assert len(replies) == 30
        assert len(cursor) <= 200
        assert len(cursor.split(":")[1].split(",")) == ogangi.CURSOR_MAX_SEEN == 10
        assert "|30^" in cursor

        rsps.replace(responses.GET, MO_URL_PAGE_1, body=body)
        again, cursor = provider().fetch_inbound(cursor)
        assert again == []

        latest = mo("after the burst", "58199999999", "2014-10-13 10:40:30.500")
        rsps.replace(responses.GET, MO_URL_PAGE_1, body=mo_answer(latest, *reversed(burst)))
        newer, cursor = provider().fetch_inbound(cursor)
        assert [r.text for r in newer] == ["after the burst"]
        assert len(cursor) <= 200


def test_fetch_inbound_skips_unplaceable_replies(caplog):
    body = mo_answer(
        mo("no date", "5801", "yesterday"),
        mo("no sender", "", "2014-10-13 10:30:00.000"),
        mo("fine", "5803", "2014-10-13 10:29:00.000"),
    )
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=body)
        replies, _ = provider().fetch_inbound("")
    assert [r.text for r in replies] == ["fine"]
    assert "skipped a reply" in caplog.text


def test_fetch_inbound_with_nothing_stored():
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=mo_answer(records=0))
        assert provider().fetch_inbound("") == ([], "")


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (MO_DOC_EXAMPLE_VERBATIM, ProviderRejected, ["unreadable", "not XML"]),
        (
            BAD_SIGNATURE.replace("sendSMS", "getMOMessages"),
            ProviderAccountError,
            ["credentials refused by", "BAD_SIGNATURE"],
        ),
        (
            BAD_SIGNATURE.replace("sendSMS", "getMOMessages").replace("BAD_SIGNATURE", "NEW"),
            ProviderRejected,
            ["refused the reply search", "NEW"],
        ),
        ("", ProviderRejected, ["unreadable"]),
    ],
)
def test_fetch_inbound_refuses_bad_answers(body, error, words):
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=body)
        with pytest.raises(ProviderError) as caught:
            provider().fetch_inbound("")
    assert type(caught.value) is error
    for word in words:
        assert word in caught.value.message


def test_a_cursor_of_before_the_count_is_still_read():
    """A cursor written before it held the count ("<floor>:<fp>,..."): new replies by date."""
    old = mo("old", "5801", "2014-10-13 10:30:00.000")
    new = mo("new", "5802", "2014-10-13 10:35:00.000")
    with responses.RequestsMock() as rsps:
        rsps.get(MO_URL_PAGE_1, body=mo_answer(new, old))
        replies, cursor = provider().fetch_inbound("1413196200000:")  # 10:30:00 UTC
    assert [r.text for r in replies] == ["new"]
    assert "|2^" in cursor


def test_the_longest_cursor_fits_its_field():
    gap = ogangi.Gap(-(10**13 - 1), 10**15 - 1, 10**15 - 1)
    seen = frozenset(f"{n:010x}" for n in range(ogangi.CURSOR_MAX_SEEN))
    cursor = ogangi.Cursor(-(10**13 - 1), seen, 10**15 - 1, gap, "f" * 10)
    longest = cursor.dump()
    assert len(longest) == 198
    assert ogangi.Cursor.load(longest) == cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "1413201600000",
        "abc:",
        "1413201600000:XYZ",
        "1413201600000:abc,",
        "1:a:b",
        "1:|x",
        "1:|2;3",
        "1:|2;3@x",
        "1:|2;3@4@5@6",
        "1:|2^xyz",
    ],
)
def test_fetch_inbound_refuses_an_unreadable_cursor_before_any_call(cursor):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(ProviderConfigurationError, match="cursor"):
            provider().fetch_inbound(cursor)
        assert len(rsps.calls) == 0


# --- webhooks: Ogangi pushes nothing -------------------------------------------------------------
@pytest.mark.parametrize("hook", ["parse_delivery_reports", "parse_inbound"])
def test_webhooks_are_refused_clearly(hook):
    request = RequestFactory().post(
        "/hooks/ogangi/token/dlr/", data=MO_DOC_EXAMPLE, content_type="application/xml"
    )
    with pytest.raises(WebhookValidationError, match="ogangi does not send"):
        getattr(provider(), hook)(request)


def test_class_attributes():
    assert OgangiProvider.slug == "ogangi"
    assert OgangiProvider.default_base_url == "https://www.messangi.com/messangi_mmc"
    assert OgangiProvider.required_credentials == ("instance_id", "public_key", "private_key")
    assert OgangiProvider.secret_credentials == frozenset({"private_key"})
    for key in (
        "instance_id",
        "public_key",
        "private_key",
        "carrier",
        "signature_segments",
        "signature_encoding",
    ):
        assert key in OgangiProvider.credentials_help
