"""Ogangi's signature reading: a provider-account setting, tested against every reading.

The doc says only that the signature "involve[s] all input parameters" (HMAC-SHA256, Ogangi's
Java example). Which text is signed (the percent-encoded path segments or the decoded values)
and how the digest is written (hex or Base64) are open: the simulator's fake accepts the one
reading it is configured for, and the adapter is run against each. Keys, instance and message are
the doc's own (the Java example's instance 8 and keys; 19893653744 → 13056708084, "OGANGI TEST
MESSAGE"): the Base64 of 13056708084 ends in "=", so the two segment readings differ.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import product

import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse

from providers.events import DeliveryStatus, OutboundSMS
from providers.exceptions import ProviderAccountError, ProviderConfigurationError
from providers.management.commands.runsimulator import settings_from_database
from providers.ogangi import OgangiProvider
from providers.simulator.server import SimulatorServer
from tests.factories import ProviderAccountFactory

PUBLIC_KEY = "4BFB-4943-9546-9BB8964254F2"
PRIVATE_KEY = "FBF3-4310-909C-C4BBC26F886F"
KEYS = {"instance_id": "8", "public_key": PUBLIC_KEY, "private_key": PRIVATE_KEY}
DOC_SMS = OutboundSMS(to="+13056708084", text="OGANGI TEST MESSAGE", sender="19893653744")

SEGMENTS = ("encoded", "decoded")
ENCODINGS = ("hex", "base64")
READINGS = list(product(SEGMENTS, ENCODINGS))
IDS = [f"{segments}-{encoding}" for segments, encoding in READINGS]


def reading(segments: str, encoding: str) -> dict[str, str]:
    return {"signature_segments": segments, "signature_encoding": encoding}


def said(segments: str, encoding: str) -> str:
    return f"signature_segments={segments}, signature_encoding={encoding}"


@contextmanager
def ogangi_fake(segments: str, encoding: str, **settings: str) -> Iterator[SimulatorServer]:
    """The simulator with Ogangi's fake accepting that reading only, for one test."""
    server = SimulatorServer(
        dlr_delay=0, credentials={"ogangi": {**KEYS, **reading(segments, encoding), **settings}}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def adapter(sim: SimulatorServer, **credentials: str) -> OgangiProvider:
    return OgangiProvider(base_url=sim.url, credentials={**KEYS, **credentials})


def requests_to(sim: SimulatorServer, method: str) -> list[dict]:
    return [e for e in sim.requests_log if e.get("kind") == "request" and method in e["path"]]


# --- sending ---------------------------------------------------------------------------------
@pytest.mark.parametrize("accepted", READINGS, ids=[f"provider-{i}" for i in IDS])
@pytest.mark.parametrize("configured", READINGS, ids=[f"account-{i}" for i in IDS])
def test_a_message_goes_only_in_the_reading_the_provider_accepts(accepted, configured):
    with ogangi_fake(*accepted) as sim:
        ogangi = adapter(sim, **reading(*configured))
        if configured == accepted:
            result = ogangi.send(DOC_SMS)
            assert result.status == DeliveryStatus.SENT
            assert result.raw["message"]["to"] == "13056708084"
            assert result.raw["message"]["text"] == "OGANGI TEST MESSAGE"
        else:
            with pytest.raises(ProviderAccountError) as refused:
                ogangi.send(DOC_SMS)
            assert refused.value.message.startswith(
                "credentials refused by Ogangi Mobile Engagement (HTTP 403): BAD_SIGNATURE"
            )
            assert "Test connection (manage.py checkprovider) finds" in refused.value.message
        [call] = requests_to(sim, "/sendSMS/")
        assert call["status"] == (200 if configured == accepted else 403)
        assert PRIVATE_KEY not in call["path"]


@pytest.mark.parametrize("accepted", READINGS, ids=IDS)
def test_replies_and_one_time_codes_are_signed_in_the_reading_too(accepted):
    with ogangi_fake(*accepted) as sim:
        ogangi = adapter(sim, carrier="Movistar", **reading(*accepted))
        assert ogangi.fetch_inbound("") == ([], "")
        assert len(ogangi.send_pin("+13056708084", "Your code", sender="19893653744")) == 6
        statuses = [e["status"] for e in sim.requests_log if e.get("kind") == "request"]
        assert statuses == [200, 200]


# --- finding the reading: check, checkprovider, admin's Test connection ----------------------
@pytest.mark.parametrize("accepted", READINGS, ids=[f"provider-{i}" for i in IDS])
@pytest.mark.parametrize("configured", READINGS, ids=[f"account-{i}" for i in IDS])
def test_check_finds_the_reading_the_provider_accepts(accepted, configured):
    with ogangi_fake(*accepted) as sim:
        ogangi = adapter(sim, **reading(*configured))
        if configured == accepted:
            assert ogangi.check() == (
                f"Ogangi answers and accepts the signature for instance 8 ({said(*accepted)}); "
                "0 replies stored"
            )
            assert len(requests_to(sim, "/getMOMessages/")) == 1
            return
        with pytest.raises(ProviderConfigurationError) as found:
            ogangi.check()
        message = found.value.message
        assert message.startswith("credentials refused by Ogangi Mobile Engagement: ")
        assert f"as configured ({said(*configured)}) but accepts {said(*accepted)}" in message
        assert (
            f'set the provider account\'s credentials signature_segments to "{accepted[0]}" '
            f'and signature_encoding to "{accepted[1]}"'
        ) in message
        assert "nothing was changed automatically" in message
        assert PRIVATE_KEY not in message
        # Harmless reads only, each reading once at most, until the accepted one.
        calls = requests_to(sim, "/getMOMessages/")
        assert [call["status"] for call in calls][-1] == 200
        assert all(call["status"] == 403 for call in calls[:-1])
        assert len(calls) <= len(READINGS)
        assert not requests_to(sim, "/sendSMS/")
        # Doing what the message says makes everything work.
        fixed = adapter(sim, **reading(*accepted))
        assert said(*accepted) in fixed.check()
        assert fixed.send(DOC_SMS).status == DeliveryStatus.SENT


def test_check_with_wrong_keys_tries_every_reading_and_says_none_is_accepted():
    with ogangi_fake("decoded", "base64") as sim:
        with pytest.raises(ProviderAccountError) as refused:
            adapter(sim, private_key="not-the-private-key").check()
        message = refused.value.message
        assert message.startswith(
            "credentials refused by Ogangi Mobile Engagement (HTTP 403): BAD_SIGNATURE"
        )
        assert "No signature reading is accepted" in message
        assert "the keys or the instance are wrong" in message
        for segments, encoding in READINGS:
            assert said(segments, encoding) in message
        assert len(requests_to(sim, "/getMOMessages/")) == len(READINGS)
        assert "not-the-private-key" not in message


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        (
            {"signature_segments": "both"},
            ["signature_segments", "'encoded' or 'decoded'", "'both'"],
        ),
        ({"signature_encoding": "hexadecimal"}, ["signature_encoding", "'hexadecimal'"]),
    ],
)
def test_a_reading_that_does_not_exist_is_a_configuration_error_before_any_call(credentials, words):
    with ogangi_fake("encoded", "hex") as sim:
        for call in (
            lambda ogangi: ogangi.check(),
            lambda ogangi: ogangi.send(DOC_SMS),
            lambda ogangi: ogangi.fetch_inbound(""),
        ):
            with pytest.raises(ProviderConfigurationError) as wrong:
                call(adapter(sim, **credentials))
            for word in words:
                assert word in wrong.value.message
        assert sim.requests_log == []


@pytest.mark.django_db
def test_checkprovider_names_the_reading_to_set_then_succeeds_with_it(capsys):
    with ogangi_fake("decoded", "base64") as sim:
        account = ProviderAccountFactory(
            name="Ogangi VE", slug="ogangi", base_url=sim.url, credentials=dict(KEYS)
        )
        with pytest.raises(CommandError) as failed:
            call_command("checkprovider", "Ogangi VE")
        assert failed.value.returncode == 1
        assert str(failed.value).startswith("Ogangi VE: credentials refused by Ogangi")
        assert 'signature_segments to "decoded" and signature_encoding to "base64"' in str(
            failed.value
        )
        account.refresh_from_db()
        assert account.credentials == KEYS  # told, not changed behind the administrator's back

        account.credentials = {**KEYS, **reading("decoded", "base64")}
        account.save()
        call_command("checkprovider", "Ogangi VE")
        assert capsys.readouterr().out == (
            "Ogangi VE: Ogangi answers and accepts the signature for instance 8 "
            f"({said('decoded', 'base64')}); 0 replies stored\n"
        )


@pytest.mark.django_db
def test_admins_test_connection_names_the_reading_to_set(admin_client):
    with ogangi_fake("encoded", "base64") as sim:
        account = ProviderAccountFactory(
            name="Ogangi VE", slug="ogangi", base_url=sim.url, credentials=dict(KEYS)
        )
        response = admin_client.post(
            reverse("admin:providers_provideraccount_changelist"),
            {"action": "test_connection", "_selected_action": [account.pk]},
            follow=True,
        )
        [message] = response.context["messages"]
        assert message.level_tag == "error"
        assert message.message.startswith("Ogangi VE: credentials refused by Ogangi")
        assert 'signature_segments to "encoded" and signature_encoding to "base64"' in (
            message.message
        )
        assert PRIVATE_KEY not in response.content.decode()


# --- the fake: one reading, its own ------------------------------------------------------------
def test_the_fakes_reading_is_set_per_run_and_checked():
    with ogangi_fake("encoded", "hex") as sim:
        ogangi = adapter(sim, **reading("decoded", "base64"))
        with pytest.raises(ProviderAccountError):
            ogangi.send(DOC_SMS)
        changed = requests.post(
            f"{sim.url}/_simulator/config",
            json={"credentials": {"ogangi": reading("decoded", "base64")}},
            timeout=5,
        )
        assert changed.status_code == 200
        assert changed.json()["credentials"]["ogangi"]["signature_segments"] == "decoded"
        assert ogangi.send(DOC_SMS).status == DeliveryStatus.SENT
        for bad in ({"signature_segments": "any"}, {"signature_encoding": "any"}):
            refused = requests.post(
                f"{sim.url}/_simulator/config", json={"credentials": {"ogangi": bad}}, timeout=5
            )
            assert refused.status_code == 400
            assert "must be one of" in refused.json()["error"]


@pytest.mark.django_db
def test_runsimulator_does_not_copy_the_hubs_reading_into_the_fake():
    """The simulator must not agree with the hub by construction: the reading stays its own."""
    ProviderAccountFactory(slug="ogangi", credentials={**KEYS, **reading("decoded", "base64")})
    _, credentials = settings_from_database()
    assert credentials["ogangi"] == KEYS
