"""One-time codes through Ogangi: its PIN method wants the carrier's name, or the hub's own code.

The doc's sendSMSPinMobileNumberConfirm takes "carrier: Mobile operator name (case sensitive)",
which only the provider account can know (its ``carrier`` credential: "Movistar" in the doc's
getMOMessages example). With it, Ogangi makes and sends the PIN; without it, the hub makes the
code and sends it as an ordinary SMS through the route, saying why in its log and in the
message's timeline. The simulator's fake stands in for Ogangi (and refuses a PIN for ``null``).
"""

import base64
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from campaigns.api import otp
from campaigns.api.models import OneTimeCode
from campaigns.models import Message
from campaigns.services import dispatch
from providers.ogangi import OgangiProvider
from providers.simulator.server import SimulatorServer
from tests.api.conftest import ApiClient
from tests.factories import AccountFactory, ApiKeyFactory, ProviderAccountFactory, SenderNameFactory

KEYS = {"instance_id": "8", "public_key": "4BFB-4943-9546-9BB8964254F2", "private_key": "FBF3"}
NUMBER = "+13056708084"  # the doc's mobile number
CODE = "19893653744"  # the doc's long code


@contextmanager
def ogangi_fake() -> Iterator[SimulatorServer]:
    server = SimulatorServer(dlr_delay=0, auto_reply_suffix="", credentials={"ogangi": KEYS})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim():
    with ogangi_fake() as server:
        yield server


def api_through_ogangi(client, sim: SimulatorServer, **credentials: str) -> ApiClient:
    ogangi = ProviderAccountFactory(
        name="Ogangi", slug="ogangi", base_url=sim.url, credentials={**KEYS, **credentials}
    )
    account = AccountFactory(name="Clinic", route=[ogangi])
    SenderNameFactory(account=account, name=CODE)
    return ApiClient(client, ApiKeyFactory(account=account).secret)


def calls(sim: SimulatorServer, method: str) -> list[dict]:
    return [e for e in sim.requests_log if e.get("kind") == "request" and method in e["path"]]


def code_of(stored: OneTimeCode) -> str:
    """The code, found back from its stored HMAC (what the person reads on the phone)."""
    for n in range(10**stored.length):
        candidate = f"{n:0{stored.length}d}"
        if otp.code_hash(stored.salt, candidate) == stored.code_hash:
            return candidate
    raise AssertionError("no code matches the stored hash")


@pytest.mark.django_db
def test_with_the_carriers_name_ogangi_makes_and_sends_the_pin(client, sim):
    api = api_through_ogangi(client, sim, carrier="Movistar")
    response = api.post(
        "/otp", {"to": NUMBER, "text": "Your code: {code}", "length": 4, "sender": CODE}
    )
    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "ogangi_pin"
    [call] = calls(sim, "/sendSMSPinMobileNumberConfirm/")
    assert call["path"].startswith(
        "/rest/api/tools/sendSMSPinMobileNumberConfirm/8/Movistar/19893653744/13056708084/"
    )
    assert call["status"] == 200
    message = Message.objects.get(pk=response.json()["message_id"])
    assert message.status == Message.Status.SENT
    code = code_of(OneTimeCode.objects.get())
    assert api.post("/otp/verify", {"to": NUMBER, "code": code}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("carrier", [None, "null"], ids=["no-carrier", "carrier-null"])
def test_without_a_carrier_name_the_hub_sends_its_own_code_and_says_why(
    client, sim, carrier, caplog
):
    credentials = {} if carrier is None else {"carrier": carrier}
    api = api_through_ogangi(client, sim, **credentials)
    with caplog.at_level(logging.WARNING, logger="campaigns.api.otp"):
        response = api.post(
            "/otp", {"to": NUMBER, "text": "Your code: {code}", "length": 6, "sender": CODE}
        )
    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "sms"
    assert calls(sim, "/sendSMSPinMobileNumberConfirm/") == []  # Ogangi's PIN was not asked
    why = "Ogangi's PIN method needs the carrier's name (case sensitive)"
    assert "made by the hub, not Ogangi" in caplog.text and why in caplog.text

    message = Message.objects.get(pk=response.json()["message_id"])
    assert message.status == Message.Status.QUEUED
    assert message.text == "Your code: ••••••"
    [event] = message.events.all()
    assert event.detail.startswith("One-time code queued to send now. The hub made the code")
    assert why in event.detail and "'carrier' credential" in event.detail

    # The code goes as an ordinary SMS, through the route: Ogangi's sendSMS.
    assert dispatch.dispatch_for(10) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    [sent] = calls(sim, "/sendSMS/")
    segments = sent["path"].split("/sendSMS/")[1].split("/")  # instance, carrier, from, to, text
    assert segments[:3] == ["8", "null", CODE]  # ordinary messages: Ogangi chooses the carrier
    text = base64.b64decode(requests.utils.unquote(segments[4])).decode()
    code = re.fullmatch(r"Your code: (\d{6})", text).group(1)
    assert api.post("/otp/verify", {"to": NUMBER, "code": code}).status_code == 200


def test_the_pin_method_is_refused_a_carrier_of_null(sim):
    """What the adapter sent before: the provider stand-in refuses it, as a name is needed."""
    adapter = OgangiProvider(base_url=sim.url, credentials={**KEYS, "carrier": "Movistar"})
    params = ["8", "null", CODE, NUMBER[1:], base64.b64encode(b"Your code").decode(), "6"]
    response = requests.get(
        adapter.signed_url("tools/sendSMSPinMobileNumberConfirm", params), timeout=5
    )
    assert response.status_code == 400
    assert "<status>ERROR</status>" in response.text
    assert "carrier's name" in response.headers["X-Simulator-Reason"]
