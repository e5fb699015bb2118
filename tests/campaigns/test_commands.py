"""The operator commands, against the simulator on loopback."""

import json

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Message
from providers.models import ProviderAccount

from ..factories import AccountFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db


def sendsms(capsys, *args):
    call_command("sendsms", *args)
    return json.loads(capsys.readouterr().out)


def test_sendsms_sends_now_and_records_the_message(capsys, account, provider_account):
    out = sendsms(
        capsys,
        "--provider",
        "Simulator",
        "--to",
        "+33 6 12 34 56 78",
        "--text",
        "Hello €",
        "--sender",
        "SMSHub",
    )
    message = Message.objects.get()
    assert out == {
        "message_id": message.pk,
        "status": "sent",
        "provider_message_id": message.provider_message_id,
        "cost": None,
        "segments": 1,
        "error": None,
    }
    assert message.provider_message_id.startswith("sim-")
    assert (message.account, message.recipient, message.sender) == (
        account,
        "+33612345678",
        "SMSHub",
    )
    assert [e.to_status for e in message.events.all()] == ["sending", "sent"]


def test_sendsms_exits_1_with_the_providers_reason(capsys, simulator):
    ProviderAccountFactory(
        name="SMSAdvert",
        slug="smsadvert",
        base_url=simulator.url,
        credentials={"token": "smsadvert-token"},
    )
    AccountFactory()
    with pytest.raises(CommandError) as caught:  # SMSAdvert takes 3 characters at least
        call_command("sendsms", "--provider", "SMSAdvert", "--to", "+40740123456", "--text", "Hi")
    assert caught.value.returncode == 1
    assert "3" in str(caught.value)
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed"
    assert out["error"] in str(caught.value)


def test_sendsms_with_refused_credentials_holds_the_provider_account(capsys, simulator):
    ProviderAccountFactory(name="Bad key", base_url=simulator.url, credentials={"api_key": "x"})
    AccountFactory()
    with pytest.raises(CommandError) as caught:
        call_command("sendsms", "--provider", "Bad key", "--to", "+33612345678", "--text", "Hi")
    assert caught.value.returncode == 1
    assert "credentials refused by Simulator (HTTP 401)" in str(caught.value)
    assert "Bad key is now on hold" in str(caught.value)
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "queued"  # not failed: the provider refused the account, not it
    assert ProviderAccount.objects.get(name="Bad key").on_hold


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--provider", "Nope", "--to", "+33612345678", "--text", "Hi"],
            "No provider account named",
        ),
        (["--provider", "Simulator", "--to", "0612", "--text", "Hi"], "is not a phone number"),
        (["--provider", "Simulator", "--to", "+33612345678", "--text", " "], "The text is empty"),
    ],
)
def test_sendsms_refuses_bad_input_and_sends_nothing(account, args, error):
    with pytest.raises(CommandError, match=error):
        call_command("sendsms", *args)
    assert not Message.objects.exists()


def test_sendsms_asks_which_account_when_there_are_several(account):
    AccountFactory()
    with pytest.raises(CommandError, match="--account NAME"):
        call_command("sendsms", "--provider", "Simulator", "--to", "+33612345678", "--text", "Hi")


def test_checkprovider(capsys, provider_account, simulator):
    call_command("checkprovider", "Simulator")
    assert "accepts the API key" in capsys.readouterr().out
    ProviderAccountFactory(name="Closed", base_url="http://127.0.0.1:9")
    with pytest.raises(CommandError, match="Closed: could not reach") as caught:
        call_command("checkprovider", "Closed")
    assert caught.value.returncode == 1
