"""The simulator's fakes of the five providers, its faults and its control endpoints.

Plain `requests` against a real `SimulatorServer` on a loopback port, and a small stdlib server
standing in for the hub's webhooks. No mocks.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import datetime
from urllib.parse import quote

import pytest
import requests
from defusedxml.ElementTree import fromstring as parse_xml

from providers import http
from providers.events import DeliveryStatus, OutboundSMS
from providers.exceptions import (
    ProviderAccountError,
    ProviderError,
    ProviderTemporaryError,
    ProviderThrottled,
)
from providers.expertflow import ExpertflowProvider
from providers.management.commands.runsimulator import (
    parse_fault,
    parse_hub_url,
    settings_from_database,
)
from providers.ogangi import OgangiProvider
from providers.primotexto import PrimotextoProvider
from providers.simulator.adapter import SimulatorProvider
from providers.simulator.server import SimRequest, SimulatorServer
from providers.smsadvert import SmsAdvertProvider
from providers.vortext import VortextProvider

from .test_simulator_server import wait_for

VORTEXT_AUTH = ("vortext", "vortext-secret")
PRIMOTEXTO = {"X-Primotexto-ApiKey": "primotexto-key"}
SMSADVERT = {"Authorization": "smsadvert-token"}
SEND_PRIMOTEXTO = "/v2/notification/messages/send"


def inject(sim, **reply):
    return requests.post(f"{sim.url}/_simulator/replies", json=reply, timeout=5)


def configure(sim, **settings):
    return requests.post(f"{sim.url}/_simulator/config", json=settings, timeout=5)


# --- Vortext ------------------------------------------------------------------------------------
def vortext_send(sim, payload, auth=VORTEXT_AUTH, **kwargs):
    return requests.post(f"{sim.url}/sms", json=payload, auth=auth, timeout=5, **kwargs)


def test_vortext_send_answers_the_message_with_its_id(sim):
    payload = {"phoneNumber": "+33612345678", "message": "Bonjour", "sender": "ignored"}
    response = vortext_send(sim, payload)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"messageId", "phoneNumber", "message"}
    assert body["messageId"]
    assert (body["phoneNumber"], body["message"]) == ("+33612345678", "Bonjour")


@pytest.mark.parametrize(
    "auth", [("vortext", "wrong"), ("someone", "vortext-secret"), None], ids=str
)
def test_vortext_refuses_bad_basic_auth(sim, auth):
    response = vortext_send(sim, {"phoneNumber": "+33612345678", "message": "hi"}, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "error" in response.json()
    assert requests.get(f"{sim.url}/status", auth=auth, timeout=5).status_code == 401


def test_vortext_status(sim):
    response = requests.get(f"{sim.url}/status", auth=VORTEXT_AUTH, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "UP"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"phoneNumber": "0612345678", "message": "hi"}, "phoneNumber"),
        ({"message": "hi"}, "phoneNumber"),
        ({"phoneNumber": "+33612345678", "message": ""}, "message"),
        ({"phoneNumber": "+33612345678"}, "message"),
    ],
)
def test_vortext_validation_errors_name_the_field(sim, payload, field):
    response = vortext_send(sim, payload)
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_vortext_wants_a_json_body(sim):
    response = requests.post(
        f"{sim.url}/sms",
        data="phoneNumber=%2B33612345678&message=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=VORTEXT_AUTH,
        timeout=5,
    )
    assert response.status_code == 415


def test_vortext_reply_is_pushed_with_the_original_message(sim, hub):
    sent = vortext_send(sim, {"phoneNumber": "+33612345678", "message": "Venez-vous ?"}).json()
    response = inject(sim, provider="vortext", **{"from": "+33612345678"}, text="Oui")

    assert response.status_code == 202
    assert response.json()["delivery"] == "push"
    [call] = wait_for(lambda: hub.received("vortext", "inbound"))
    assert call["content_type"] == "application/json"
    assert call["authorization"] is None  # Vortext's push has no authentication
    assert call["body"]["message"] == sent
    assert call["body"]["response"]["content"] == "Oui"
    answered_at = call["body"]["response"]["answeredAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", answered_at)


def test_vortext_numbers_ending_in_9999_reply_by_themselves(sim, hub):
    sent = vortext_send(sim, {"phoneNumber": "+33612349999", "message": "Question ?"}).json()
    [call] = wait_for(lambda: hub.received("vortext", "inbound"))
    assert call["body"]["message"]["messageId"] == sent["messageId"]
    assert call["body"]["response"]["content"] == sim.auto_reply_text


# --- Primotexto ---------------------------------------------------------------------------------
def primotexto_send(sim, payload, headers=PRIMOTEXTO):
    return requests.post(f"{sim.url}{SEND_PRIMOTEXTO}", json=payload, headers=headers, timeout=5)


def test_primotexto_send_answers_credits_and_snapshot(sim):
    # The doc's example, dated 2014: accepted in the reading that sends a past date at once.
    assert configure(sim, credentials={"primotexto": {"past_date": "send_now"}}).ok
    response = primotexto_send(
        sim,
        {
            "number": "+33600000000",
            "message": "Code de confirmation: 283951",
            "sender": "YourCompany",
            "campaignName": "Code de confirmation",
            "category": "codeConfirmation",
            "date": 1398177000000,
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert set(body) == {"creditsUsed", "snapshotId"}
    assert body["creditsUsed"] == 1.0
    assert isinstance(body["creditsUsed"], float)
    assert re.fullmatch(r"\d+", body["snapshotId"])


def test_primotexto_credits_count_the_parts(sim):
    body = primotexto_send(sim, {"number": "0600000000", "message": "a" * 161}).json()
    assert body["creditsUsed"] == 2.0


def test_primotexto_browser_form_of_the_doc(sim):
    response = requests.get(
        f"{sim.url}{SEND_PRIMOTEXTO}",
        params={
            "apiKey": "primotexto-key",
            "identifier": "+33600000000",
            "sender": "Shop",
            "message": "hi",
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["creditsUsed"] == 1.0
    [entry] = [e for e in sim.requests_log if e["provider"] == "primotexto"]
    assert "primotexto-key" not in entry["path"]


@pytest.mark.parametrize("headers", [{"X-Primotexto-ApiKey": "wrong"}, {}], ids=["wrong", "none"])
def test_primotexto_refuses_a_bad_key(sim, headers):
    response = primotexto_send(sim, {"number": "+33600000000", "message": "hi"}, headers)
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sender": "AB"}, "sender"),
        ({"sender": "TooLongSender"}, "sender"),
        ({"sender": "My Shop"}, "sender"),
        ({"number": "612345678"}, "number"),
        ({"message": ""}, "message"),
        ({"message": "Prix : 5 €"}, "message"),
        ({"date": "tomorrow"}, "date"),
    ],
)
def test_primotexto_validation_errors(sim, changes, field):
    payload = {"number": "+33600000000", "message": "hi", **changes}
    response = primotexto_send(sim, payload)
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_primotexto_has_no_replies(sim):
    response = inject(sim, provider="primotexto", **{"from": "+33600000000"}, text="hi")
    assert response.status_code == 400


# --- SMSAdvert ----------------------------------------------------------------------------------
def smsadvert_send(sim, payload, headers=SMSADVERT):
    return requests.post(f"{sim.url}/api/sms/", json=payload, headers=headers, timeout=5)


def test_smsadvert_send_answers_as_documented(sim):
    response = smsadvert_send(
        sim, {"phone": "+40740123456", "shortTextMessage": "Hello there", "sendAsShort": True}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["successMessage"] == "Your message has been successfully submitted!"
    assert body["msgId"]
    assert set(body) == {"successMessage", "msgId"}


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "wrong-token"}, {"Authorization": "Bearer smsadvert-token"}, {}],
    ids=["wrong", "with-scheme", "none"],
)
def test_smsadvert_refuses_a_bad_token(sim, headers):
    response = smsadvert_send(sim, {"phone": "+40740123456", "shortTextMessage": "hi!"}, headers)
    assert response.status_code == 401
    assert set(response.json()) == {"errorMessage"}


def test_smsadvert_field_errors_come_together(sim):
    response = smsadvert_send(sim, {"phone": "0740123456", "shortTextMessage": "hi"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "phone": "Numéro de téléphone invalide!",
            "shortTextMessage": "Saisissez un minimum de caractères 3!",
        }
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "+40740123456,"}, "phone"),
        ({"phone": "+40740123456, +40740123457"}, "phone"),
        ({"phone": ",".join(f"+4074{i:07d}" for i in range(1001))}, "phone"),
        ({"shortTextMessage": "x" * 481}, "shortTextMessage"),
        ({"sendAsShort": "yes"}, "sendAsShort"),
        ({"failover": "long"}, "failover"),
        ({"startDate": 1486889778036, "endDate": 1486883578036}, "endDate"),
        ({"callback": "not a url"}, "callback"),
    ],
)
def test_smsadvert_validation_errors(sim, changes, field):
    payload = {"phone": "+40740123456", "shortTextMessage": "Hello there", **changes}
    response = smsadvert_send(sim, payload)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_smsadvert_accepts_1000_numbers(sim):
    phones = ",".join(f"+4074{i:07d}" for i in range(1000))
    assert smsadvert_send(sim, {"phone": phones, "shortTextMessage": "Hi all"}).status_code == 200


def test_smsadvert_reports_each_recipient_to_the_callback(sim, hub):
    # The reading in which a multi-recipient submission is reported (by default it is not).
    configure(sim, credentials={"smsadvert": {"multi_recipient_reports": "per_recipient"}})
    callback = hub.url("smsadvert", "dlr")
    response = smsadvert_send(
        sim,
        {
            "phone": "+40740123456,+40740120000,+40740123456",
            "shortTextMessage": "Hello there",
            "callback": callback,
        },
    )
    msg_id = response.json()["msgId"]

    calls = wait_for(
        lambda: len(hub.received("smsadvert", "dlr")) == 2 and hub.received("smsadvert", "dlr")
    )
    assert [call["body"] for call in calls] == [
        {"status": "delivered", "msgId": msg_id},
        {"status": "failed", "msgId": msg_id},
    ]
    assert all(call["content_type"] == "application/json" for call in calls)


# --- Expertflow ---------------------------------------------------------------------------------
def expertflow_send(sim, payload, **kwargs):
    return requests.post(f"{sim.url}/msg-client/send", json=payload, timeout=5, **kwargs)


def test_expertflow_send_is_200_with_no_content(sim):
    response = expertflow_send(sim, {"To": "+923001234567", "Body": "Salam", "channel": "sms"})
    assert response.status_code == 200
    assert response.content == b""
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize(
    "payload",
    [
        {"Body": "hi", "channel": "sms"},
        {"To": "+923001234567", "channel": "sms"},
        {"To": "+923001234567", "Body": "hi", "channel": "smpp"},
        {"To": "+923001234567", "Body": "hi"},
        {"To": "not a number", "Body": "hi", "channel": "sms"},
    ],
)
def test_expertflow_bad_requests_are_400_with_no_content(sim, payload):
    response = expertflow_send(sim, payload)
    assert response.status_code == 400
    assert response.content == b""


def test_expertflow_basic_auth_when_configured(sim):
    assert configure(
        sim, credentials={"expertflow": {"username": "ef", "password": "ef-secret"}}
    ).ok
    payload = {"To": "+923001234567", "Body": "hi", "channel": "sms"}
    assert expertflow_send(sim, payload).status_code == 401
    assert expertflow_send(sim, payload, auth=("ef", "nope")).status_code == 401
    assert expertflow_send(sim, payload, auth=("ef", "ef-secret")).status_code == 200


def test_expertflow_delivery_reports_are_twilio_style_forms(sim, hub):
    expertflow_send(sim, {"To": "+923001234567", "Body": "one", "channel": "sms"})
    expertflow_send(sim, {"To": "+923001230000", "Body": "two", "channel": "sms"})

    calls = wait_for(
        lambda: len(hub.received("expertflow", "dlr")) == 2 and hub.received("expertflow", "dlr")
    )
    assert all(c["content_type"] == "application/x-www-form-urlencoded" for c in calls)
    assert {(c["body"]["To"], c["body"]["SmsStatus"]) for c in calls} == {
        ("+923001234567", "delivered"),
        ("+923001230000", "undelivered"),
    }
    for call in calls:
        assert set(call["body"]) == {"MessageSid", "To", "SmsStatus", "MessageStatus"}
        assert re.fullmatch(r"SM[0-9a-f]{32}", call["body"]["MessageSid"])
        assert call["body"]["MessageStatus"] == call["body"]["SmsStatus"]


@pytest.mark.parametrize(
    ("reading", "fields"),
    [
        ({"report_sid": "no"}, {"To", "SmsStatus", "MessageStatus"}),
        ({"report_to": "none"}, {"MessageSid", "SmsStatus", "MessageStatus"}),
        ({"report_to": "digits", "report_status": "SmsStatus"}, {"MessageSid", "To", "SmsStatus"}),
        ({"report_status": "MessageStatus"}, {"MessageSid", "To", "MessageStatus"}),
    ],
)
def test_expertflow_reports_take_the_configured_reading(sim, hub, reading, fields):
    assert configure(sim, credentials={"expertflow": reading}).ok
    expertflow_send(sim, {"To": "+923001234567", "Body": "one", "channel": "sms"})
    [call] = wait_for(lambda: hub.received("expertflow", "dlr"))
    assert set(call["body"]) == fields
    if "To" in fields:
        expected = "923001234567" if reading.get("report_to") == "digits" else "+923001234567"
        assert call["body"]["To"] == expected


def test_expertflow_refuses_a_reading_the_doc_does_not_allow(sim):
    response = configure(sim, credentials={"expertflow": {"report_to": "national"}})
    assert response.status_code == 400
    assert "report_to must be one of as_sent, digits, none" in response.json()["error"]


def test_expertflow_replies_are_twilio_style_forms(sim, hub):
    expertflow_send(sim, {"To": "+923001234567", "Body": "?", "From": "8080", "channel": "sms"})
    response = inject(sim, provider="expertflow", **{"from": "+923001234567"}, text="Yes")
    assert response.status_code == 202

    [call] = wait_for(lambda: hub.received("expertflow", "inbound"))
    assert call["content_type"] == "application/x-www-form-urlencoded"
    body = call["body"]
    assert (body["Body"], body["From"], body["To"]) == ("Yes", "+923001234567", "8080")
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["SmsSid"])


# --- Ogangi -------------------------------------------------------------------------------------
def b64(text):
    return base64.b64encode(text.encode()).decode()


def ogangi_url(sim, method, params, *, public="ogangi-public", private="ogangi-private", **kw):
    """A signed URL: each segment percent-encoded, the signature over them as they appear."""
    encoded = [quote(str(param), safe="") for param in params]
    joined = "/".join(encoded)
    digest = hmac.new(private.encode(), joined.encode(), hashlib.sha256).digest()
    if kw.get("encoding") == "base64":
        signature = quote(base64.b64encode(digest).decode(), safe="")
    else:
        signature = digest.hex()
    return f"{sim.url}/rest/api/{method}/{joined}/{quote(public, safe='')}/{signature}"


def xml(response):
    return parse_xml(response.content)


def send_sms_url(sim, number="+13056708084", text="OGANGI TEST + /MESSAGE?", **kw):
    params = ["1001", "null", "19893653744", b64(number), b64(text)]
    return ogangi_url(sim, "tools/sendSMS", params, **kw)


def test_ogangi_send_sms_with_a_good_signature(sim):
    url = send_sms_url(sim)
    assert "%2F" in url or "%2B" in url or "%3D" in url  # the Base64 needed percent-encoding
    response = requests.get(url, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = xml(response)
    assert (root.findtext("input"), root.findtext("status")) == ("sendSMS", "OK")
    assert root.findtext("description") == "Completed"
    message = root.find("result/messages/message")
    assert re.fullmatch(r"-?\d+", message.findtext("id"))
    assert message.findtext("status") == "SENT_TO_CARRIER"
    assert message.findtext("statusDescription") == "Sent to Carrier"
    assert message.findtext("to") == "+13056708084"
    assert message.findtext("from") == "19893653744"
    assert message.findtext("text") == "OGANGI TEST + /MESSAGE?"
    assert datetime.fromisoformat(message.findtext("date")).utcoffset() is not None


def test_ogangi_accepts_only_the_configured_digest_form(sim):
    url = send_sms_url(sim, encoding="base64")
    response = requests.get(url, timeout=5)  # hex by default
    assert response.status_code == 403
    assert xml(response).findtext("status") == "BAD_SIGNATURE"
    assert configure(sim, credentials={"ogangi": {"signature_encoding": "base64"}}).ok
    assert requests.get(url, timeout=5).status_code == 200
    assert requests.get(send_sms_url(sim), timeout=5).status_code == 403


@pytest.mark.parametrize(
    "kwargs",
    [{"private": "wrong-private"}, {"public": "wrong-public"}],
    ids=["wrong-signature", "wrong-public-key"],
)
def test_ogangi_refuses_a_bad_signature(sim, kwargs):
    response = requests.get(send_sms_url(sim, **kwargs), timeout=5)
    assert response.status_code == 403
    root = xml(response)
    assert root.findtext("status") == "BAD_SIGNATURE"
    assert root.findtext("description") == "Invalid signature, access denied"
    assert root.find("result") is None


def test_ogangi_signature_covers_the_segments_as_encoded(sim):
    """Signing the decoded values (not what the URL holds) is refused when they differ."""
    params = ["1001", "null", "19893653744", b64("+13056708084"), b64("OGANGI TEST + /MESSAGE?")]
    joined_decoded = "/".join(params)
    digest = hmac.new(b"ogangi-private", joined_decoded.encode(), hashlib.sha256).hexdigest()
    encoded = "/".join(quote(p, safe="") for p in params)
    assert encoded != joined_decoded
    url = f"{sim.url}/rest/api/tools/sendSMS/{encoded}/ogangi-public/{digest}"
    assert requests.get(url, timeout=5).status_code == 403


def test_ogangi_unencoded_base64_slash_is_not_a_route(sim):
    url = f"{sim.url}/rest/api/tools/sendSMS/1001/null/123/{b64('+1305')}/a/b+c/ogangi-public/x"
    assert requests.get(url, timeout=5).status_code == 404


def test_ogangi_bad_base64_is_an_error(sim):
    url = ogangi_url(sim, "tools/sendSMS", ["1001", "null", "123", "%%%", b64("hi")])
    response = requests.get(url, timeout=5)
    assert response.status_code == 400
    assert xml(response).findtext("status") == "ERROR"


def test_ogangi_send_mt_answers_the_static_part(sim):
    url = ogangi_url(sim, "sendMT", ["1001", "19893653744", "null", "13056708084", b64("hi")])
    response = requests.get(url, timeout=5)
    root = xml(response)
    assert (root.findtext("input"), root.findtext("status")) == ("sendMT", "OK")
    assert root.find("result") is None


def test_ogangi_pin(sim):
    params = ["1001", "Movistar", "19893653744", "13056708084", b64("Your code"), "6"]
    response = requests.get(
        ogangi_url(sim, "tools/sendSMSPinMobileNumberConfirm", params), timeout=5
    )
    assert re.fullmatch(r"\d{6}", xml(response).findtext("result/PinSMSConfirmation/pin"))


def get_mo(sim, page=1, per_page=10, parameters="null"):
    url = ogangi_url(sim, "tools/getMOMessages", ["1001", page, per_page, parameters])
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    root = xml(response)
    assert root.findtext("status") == "OK"
    mo_list = root.find("result/MOMessageList")
    return int(mo_list.findtext("records")), mo_list.findall("MessageList/MOMessage")


def test_ogangi_replies_are_stored_for_get_mo_messages(sim):
    requests.get(send_sms_url(sim, number="+58123456789"), timeout=5)
    for text in ("Yes please", "STOP"):
        response = inject(sim, provider="ogangi", **{"from": "+58123456789"}, text=text)
        assert response.status_code == 202
        assert response.json()["delivery"] == "stored"

    records, [first, second] = get_mo(sim)
    assert records == 2
    assert [child.tag for child in first] == [
        "text",
        "from",
        "to",
        "encoding",
        "keyword",
        "carrier",
        "sendDate",
    ]
    assert first.findtext("text") == "Yes please"
    assert first.findtext("from") == "58123456789"
    assert first.findtext("to") == "19893653744"  # the code the message came from
    assert first.findtext("encoding") == "UTF-8"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", first.findtext("sendDate"))
    assert second.findtext("text") == "STOP"

    records, [only] = get_mo(sim, page=2, per_page=1)
    assert (records, only.findtext("text")) == (2, "STOP")
    _, newest_first = get_mo(sim, parameters="order=desc")
    assert [m.findtext("text") for m in newest_first] == ["STOP", "Yes please"]
    records, matched = get_mo(sim, parameters="keyword=%5ESTOP.*")
    assert (records, [m.findtext("text") for m in matched]) == (1, ["STOP"])
    assert get_mo(sim, parameters="from=11111111111")[0] == 0


def test_ogangi_get_mo_messages_checks_the_signature(sim):
    url = ogangi_url(sim, "tools/getMOMessages", ["1001", 1, 10, "null"], private="nope")
    response = requests.get(url, timeout=5)
    assert response.status_code == 403
    assert xml(response).findtext("input") == "getMOMessages"


def test_ogangi_numbers_ending_in_9999_reply_by_polling(sim):
    requests.get(send_sms_url(sim, number="+13056709999"), timeout=5)
    wait_for(lambda: get_mo(sim)[0] == 1)
    [reply] = get_mo(sim)[1]
    assert reply.findtext("from") == "13056709999"
    assert reply.findtext("text") == sim.auto_reply_text


# --- simulator protocol replies -------------------------------------------------------------------
def test_simulator_protocol_replies_are_pushed_as_json(sim, hub):
    sent = requests.post(
        f"{sim.url}/simulator/messages",
        json={"to": "+33612345678", "text": "hi", "from": "SMSHub"},
        headers={"Authorization": "Bearer simulator-key"},
        timeout=5,
    ).json()
    inject(sim, provider="simulator", **{"from": "+33612345678"}, text="STOP")

    [call] = wait_for(lambda: hub.received("simulator", "inbound"))
    body = call["body"]
    assert body["in_reply_to"] == sent["id"]
    assert (body["from"], body["to"], body["text"]) == ("+33612345678", "SMSHub", "STOP")
    assert body["id"].startswith("sim-mo-")
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None


def test_injecting_a_reply_needs_a_hub_url_and_a_valid_body(sim):
    assert configure(sim, hub_urls={"vortext": None}).ok
    response = inject(sim, provider="vortext", **{"from": "+33612345678"}, text="hi")
    assert response.status_code == 409
    assert inject(sim, provider="nobody", **{"from": "+1"}, text="hi").status_code == 400
    assert inject(sim, provider="vortext", text="hi").status_code == 400


# --- faults ---------------------------------------------------------------------------------------
def test_error_rate_1_gives_5xx_in_the_providers_shape(sim):
    assert configure(sim, faults={"smsadvert": {"error_rate": 1}, "ogangi": {"error_rate": 1}}).ok

    response = smsadvert_send(sim, {"phone": "+40740123456", "shortTextMessage": "Hello"})
    assert response.status_code == 500
    assert set(response.json()) == {"errorMessage"}
    response = requests.get(send_sms_url(sim), timeout=5)
    assert response.status_code == 500
    assert xml(response).findtext("status") == "ERROR"
    # Other providers are unaffected.
    assert primotexto_send(sim, {"number": "+33600000000", "message": "hi"}).status_code == 200
    entries = [e for e in sim.requests_log if e["provider"] == "smsadvert"]
    assert entries[-1]["fault"] == "error"


def test_throttle_rate_1_gives_429_with_retry_after(sim):
    assert configure(sim, faults={"vortext": {"throttle_rate": 1, "retry_after": 7}}).ok
    response = vortext_send(sim, {"phoneNumber": "+33612345678", "message": "hi"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_latency_is_added(sim):
    assert configure(sim, faults={"primotexto": {"latency_ms": 300}}).ok
    started = time.monotonic()
    response = primotexto_send(sim, {"number": "+33600000000", "message": "hi"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_hangs_past_the_client_timeout_then_answers(sim):
    assert configure(sim, faults={"expertflow": {"timeout_rate": 1, "hang_seconds": 1}}).ok
    payload = {"To": "+923001234567", "Body": "hi", "channel": "sms"}
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sim.url}/msg-client/send", json=payload, timeout=0.2)

    def answered():
        return [e for e in sim.requests_log if e["provider"] == "expertflow"]

    [entry] = wait_for(answered)
    assert (entry["status"], entry["fault"]) == (200, "timeout")


def test_control_routes_are_never_faulty(sim):
    assert configure(sim, faults={p: {"error_rate": 1} for p in ("simulator", "vortext")}).ok
    assert requests.get(f"{sim.url}/_simulator/config", timeout=5).status_code == 200


def test_seeded_faults_are_reproducible():
    def outcomes(seed):
        server = SimulatorServer(seed=seed, faults={"vortext": {"error_rate": 0.5}})
        server.start()
        try:
            with requests.Session() as session:
                return [
                    session.get(f"{server.url}/status", auth=VORTEXT_AUTH, timeout=5).status_code
                    for _ in range(20)
                ]
        finally:
            server.stop()

    first = outcomes(42)
    assert first == outcomes(42)
    assert set(first) == {200, 500}


# --- what the hub's adapters read in the fakes' answers ------------------------------------------
# Each adapter with the credentials its fake accepts, and credentials the fake can be switched to
# at run time (POST /_simulator/config) so that the adapter's are refused, as a revoked key is.
ADAPTERS = {
    "simulator": (SimulatorProvider, {"api_key": "simulator-key"}, {"api_key": "rotated"}),
    "vortext": (
        VortextProvider,
        {"username": "vortext", "password": "vortext-secret"},
        {"password": "rotated"},
    ),
    "primotexto": (PrimotextoProvider, {"api_key": "primotexto-key"}, {"api_key": "rotated"}),
    "smsadvert": (SmsAdvertProvider, {"token": "smsadvert-token"}, {"token": "rotated"}),
    "expertflow": (
        ExpertflowProvider,
        {"channel": "sms"},
        {"username": "hub", "password": "now-required"},
    ),
    "ogangi": (
        OgangiProvider,
        {"instance_id": "1001", "public_key": "ogangi-public", "private_key": "ogangi-private"},
        {"private_key": "rotated"},
    ),
}
# A send path of each fake, for the fault answers built without a request.
SEND_PATHS = {
    "simulator": "/simulator/messages",
    "vortext": "/sms",
    "primotexto": SEND_PRIMOTEXTO,
    "smsadvert": "/api/sms/",
    "expertflow": "/msg-client/send",
    "ogangi": "/rest/api/tools/sendSMS/1001/null/12345/KzMz/SGk%3D/ogangi-public/00",
}
HUB_SMS = OutboundSMS(to="+33612345678", text="Hello from the hub", sender="12345")


def adapter(sim, slug):
    adapter_class, credentials, _ = ADAPTERS[slug]
    return adapter_class(base_url=sim.url, credentials=credentials)


def read_as(provider, answer):
    """The error the adapter reads in a fake's answer, as `providers.http` would raise it."""
    response = requests.Response()
    response.status_code = answer.status
    response._content = answer.encode()
    response.headers.update(answer.headers)
    if answer.content_type:
        response.headers["Content-Type"] = answer.content_type
    with pytest.raises(ProviderError) as caught:
        http.raise_for_status(
            response,
            provider.describe_error,
            provider.http_errors,
            provider.display_name,
            provider.classify_error,
        )
    return caught.value


@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_each_adapter_sends_and_checks_through_its_fake(sim, slug):
    provider = adapter(sim, slug)
    assert provider.send(HUB_SMS).status == DeliveryStatus.SENT
    assert provider.check()


@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_revoked_credentials_are_refused_in_each_providers_own_words(sim, slug):
    provider = adapter(sim, slug)
    assert configure(sim, credentials={slug: ADAPTERS[slug][2]}).ok

    with pytest.raises(ProviderAccountError) as sent:
        provider.send(HUB_SMS)
    with pytest.raises(ProviderAccountError) as checked:
        provider.check()
    lead = f"credentials refused by {provider.display_name} (HTTP "
    assert sent.value.message.startswith(lead)
    assert checked.value.message.startswith(lead)

    assert configure(sim, credentials={slug: None}).ok  # the key is back: sending works again
    assert provider.send(HUB_SMS).status == DeliveryStatus.SENT


def test_the_hold_reasons_of_revoked_credentials_say_what_to_check(sim):
    revoked = {slug: ADAPTERS[slug][2] for slug in ("ogangi", "smsadvert")}
    assert configure(sim, credentials=revoked).ok
    with pytest.raises(ProviderAccountError) as ogangi:
        adapter(sim, "ogangi").send(HUB_SMS)
    with pytest.raises(ProviderAccountError) as smsadvert:
        adapter(sim, "smsadvert").send(HUB_SMS)
    assert ogangi.value.message == (
        "credentials refused by Ogangi Mobile Engagement (HTTP 403): BAD_SIGNATURE: Invalid "
        "signature, access denied (check public_key, private_key, signature_segments and "
        "signature_encoding; Test connection (manage.py checkprovider) finds the signature "
        "reading Ogangi accepts)"
    )
    assert smsadvert.value.message == (
        "credentials refused by SMSAdvert (HTTP 401): Invalid authentication token! "
        "(check the provider account's token)"
    )


@pytest.mark.parametrize(
    ("slug", "words"),
    [
        ("simulator", "HTTP 500"),
        ("vortext", "HTTP 500"),
        ("primotexto", "HTTP 500"),
        ("smsadvert", "(HTTP 500): There was a database error!"),
        ("expertflow", "HTTP 500"),
        ("ogangi", "(HTTP 500): ERROR: Internal error"),
    ],
)
def test_error_faults_are_temporary_errors_in_each_providers_own_words(sim, slug, words):
    assert configure(sim, faults={slug: {"error_rate": 1}}).ok
    with pytest.raises(ProviderTemporaryError) as caught:
        adapter(sim, slug).send(HUB_SMS)
    assert type(caught.value) is ProviderTemporaryError
    assert words in caught.value.message


@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_throttle_faults_are_throttling_for_each_adapter(sim, slug):
    assert configure(sim, faults={slug: {"throttle_rate": 1, "retry_after": 7}}).ok
    with pytest.raises(ProviderThrottled) as caught:
        adapter(sim, slug).send(HUB_SMS)
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_a_credentials_fault_is_answered_as_refused_credentials(sim, slug, status):
    """``error_status`` 401/403: each provider's own refusal of credentials, which its adapter
    reads as an account problem."""
    assert configure(sim, faults={slug: {"error_rate": 1, "error_status": status}}).ok
    provider = adapter(sim, slug)
    with pytest.raises(ProviderAccountError) as caught:
        provider.send(HUB_SMS)
    assert caught.value.message.startswith(f"credentials refused by {provider.display_name}")


def test_credentials_faults_take_each_providers_shape(sim):
    def fault(slug, status=401):
        request = SimRequest("GET", SEND_PATHS[slug], "", {}, b"")
        return sim.fakes[slug].fault_response(request, status, "refused (simulated)")

    assert fault("vortext").headers["WWW-Authenticate"] == 'Basic realm="Vortext"'
    assert fault("smsadvert").body == {"errorMessage": "Invalid authentication token!"}
    assert fault("smsadvert", 503).body == {"errorMessage": "There was a database error!"}
    assert parse_xml(fault("ogangi", 403).encode()).findtext("status") == "BAD_SIGNATURE"
    assert parse_xml(fault("ogangi", 500).encode()).findtext("status") == "ERROR"
    assert fault("expertflow").encode() == b""


# --- configuration --------------------------------------------------------------------------------
def test_config_shows_settings_with_secrets_masked(hub):
    server = SimulatorServer(
        api_key="simulator-key-0123456789",
        credentials={"ogangi": {"private_key": "very-private-key-9876"}},
        hub_urls={"vortext": {"inbound": hub.url("vortext", "inbound")}},
        faults={"vortext": {"latency_ms": 5}},
        seed=9,
    )
    server.start()
    try:
        response = requests.get(f"{server.url}/_simulator/config", timeout=5)
    finally:
        server.stop()
    assert response.status_code == 200
    config = response.json()
    assert "very-private-key-9876" not in response.text
    assert "simulator-key-0123456789" not in response.text
    assert "token-vortext-0123456789abcdef" not in response.text
    assert config["credentials"]["ogangi"]["private_key"] == "****9876"
    assert config["credentials"]["ogangi"]["public_key"] == "ogangi-public"
    assert config["credentials"]["vortext"]["username"] == "vortext"
    assert config["hub_urls"]["vortext"]["inbound"].startswith(hub.base + "/hooks/vortext/****")
    assert config["faults"]["vortext"]["latency_ms"] == 5
    assert config["faults"]["primotexto"]["error_rate"] == 0
    assert config["seed"] == 9
    assert "POST /sms" in config["routes"]["vortext"]
    assert "POST /api/sms/" in config["routes"]["smsadvert"]


def test_config_changes_at_runtime_and_refuses_nonsense(sim, hub):
    response = configure(
        sim,
        dlr_delay=0.01,
        faults={"vortext": {"error_rate": 0.25}},
        hub_urls={"expertflow": {"dlr": hub.url("other", "dlr")}},
        credentials={"primotexto": {"api_key": "new-primotexto-key"}},
    )
    assert response.status_code == 200
    assert response.json()["faults"]["vortext"]["error_rate"] == 0.25
    assert sim.dlr_delay == 0.01
    assert sim.hub_url("expertflow", "dlr") == hub.url("other", "dlr")
    assert primotexto_send(sim, {"number": "+33600000000", "message": "hi"}).status_code == 401

    # A masked secret sent back unchanged keeps the stored one.
    shown = requests.get(f"{sim.url}/_simulator/config", timeout=5).json()
    assert configure(sim, credentials={"primotexto": shown["credentials"]["primotexto"]}).ok
    assert sim.credentials_for("primotexto")["api_key"] == "new-primotexto-key"

    for bad in (
        {"faults": {"vortext": {"error_rate": 2}}},
        {"faults": {"vortext": {"nonsense": 1}}},
        {"faults": {"nobody": {"error_rate": 1}}},
        {"hub_urls": {"vortext": {"inbound": "ftp://x"}}},
        {"hub_urls": {"vortext": {"sideways": "http://x"}}},
        {"credentials": {"vortext": {"token": "x"}}},
        {"credentials": {"ogangi": {"signature_encoding": "rot13"}}},
        {"dlr_delay": -1},
        {"whatever": 1},
    ):
        response = configure(sim, **bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]
    assert sim.faults_for("vortext")["error_rate"] == 0.25  # unchanged by the refusals

    assert configure(sim, faults={"vortext": None}).ok
    assert sim.faults_for("vortext")["error_rate"] == 0


def test_request_log_names_the_provider(sim):
    vortext_send(sim, {"phoneNumber": "+33612345678", "message": "hi"})
    smsadvert_send(sim, {"phone": "+40740123456", "shortTextMessage": "hi!"})
    requests.get(f"{sim.url}/nowhere", timeout=5)
    entries = requests.get(f"{sim.url}/_simulator/log", timeout=5).json()
    assert [e["provider"] for e in entries] == ["vortext", "smsadvert", None]
    assert entries[0]["headers"]["Authorization"] == "Basic ****"
    assert entries[1]["headers"]["Authorization"] == "****oken"
    assert "vortext-secret" not in json.dumps(entries)
    assert "smsadvert-token" not in json.dumps(entries)


# --- runsimulator -------------------------------------------------------------------------------
def test_runsimulator_parses_faults_and_hub_urls():
    assert parse_fault("vortext:error_rate=0.5") == ("vortext", "error_rate", 0.5)
    assert parse_hub_url("expertflow:dlr=http://h:8000/hooks/x/y/dlr/?a=b") == (
        "expertflow",
        "dlr",
        "http://h:8000/hooks/x/y/dlr/?a=b",
    )


@pytest.mark.django_db
def test_runsimulator_reads_hub_urls_and_credentials_from_provider_accounts():
    from tests.factories import ProviderAccountFactory

    first = ProviderAccountFactory(slug="simulator", priority=1, credentials={"api_key": "db-key"})
    ProviderAccountFactory(slug="simulator", priority=2, credentials={"api_key": "other"})
    ProviderAccountFactory(
        slug="ogangi",
        credentials={"instance_id": 77, "public_key": "pk", "private_key": "sk", "carrier": "x"},
    )
    ProviderAccountFactory(slug="vortext", enabled=False)

    hub_urls, credentials = settings_from_database()

    assert set(hub_urls) == {"simulator", "ogangi"}
    assert hub_urls["simulator"] == {
        "dlr": first.webhook_url("dlr"),
        "inbound": first.webhook_url("inbound"),
    }
    assert credentials["simulator"] == {"api_key": "db-key"}
    assert credentials["ogangi"] == {"instance_id": "77", "public_key": "pk", "private_key": "sk"}
    server = SimulatorServer(credentials=credentials, hub_urls=hub_urls)
    try:
        assert server.credentials_for("ogangi")["signature_encoding"] == "hex"
        assert server.api_key == "db-key"
    finally:
        server.stop()
