"""One-time codes: sent by the hub as an SMS, or by Ogangi's PIN method when the route starts
with Ogangi; stored hashed; expiring; a few tries only; usable once."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.api import otp
from campaigns.api.models import OneTimeCode
from campaigns.models import Message
from campaigns.services.dispatch import outbound
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    OptOutFactory,
    ProviderAccountFactory,
    SenderNameFactory,
)

from .conftest import ApiClient, error_of

NUMBER = "+33612345678"


def sent_code(response) -> str:
    """The code, as the person reads it in the SMS the hub sends (what goes to the provider)."""
    message = Message.objects.get(pk=response.json()["message_id"])
    return re.search(r"\d{6}", outbound(message, ProviderAccountFactory()).text).group(0)


def test_hub_code_is_sent_as_an_sms_and_verified_once(api, account):
    response = api.post(
        "/otp", {"to": "+33 6 12 34 56 78", "text": "Code: {code}. Ignore if not you."}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["to"], body["channel"], body["max_attempts"]) == (NUMBER, "sms", 5)
    message = Message.objects.get(pk=body["message_id"])
    assert message.status == Message.Status.QUEUED and message.account == account
    assert message.text == "Code: ••••••. Ignore if not you."
    assert re.fullmatch(r"Code: \d{6}\. Ignore if not you\.", message.secret_text)
    code = sent_code(response)

    stored = OneTimeCode.objects.filter(pk=body["id"]).values().get()
    assert code not in str({k: v for k, v in stored.items() if k != "template"})
    created = OneTimeCode.objects.get(pk=body["id"])
    assert created.expires_at - created.created_at == timedelta(seconds=300)

    ok = api.post("/otp/verify", {"to": NUMBER, "code": code})
    assert ok.status_code == 200, ok.content
    assert ok.json()["verified"] is True and ok.json()["to"] == NUMBER
    again = api.post("/otp/verify", {"to": NUMBER, "code": code})
    assert again.status_code == 422 and error_of(again)["code"] == "code_used"


def test_wrong_codes_count_and_the_code_dies_after_max_attempts(api, settings):
    settings.SMSHUB_OTP_MAX_ATTEMPTS = 3
    code = sent_code(api.post("/otp", {"to": NUMBER}))
    wrong = "000000" if code != "000000" else "111111"
    first = api.post("/otp/verify", {"to": NUMBER, "code": wrong})
    assert first.status_code == 422
    assert error_of(first)["code"] == "wrong_code"
    assert error_of(first)["fields"]["code"] == ["Wrong code: 2 tries left."]
    assert (
        "1 try left" in error_of(api.post("/otp/verify", {"to": NUMBER, "code": wrong}))["message"]
    )
    last = api.post("/otp/verify", {"to": NUMBER, "code": wrong})
    assert error_of(last)["code"] == "too_many_attempts"
    right = api.post("/otp/verify", {"to": NUMBER, "code": code})
    assert right.status_code == 422 and error_of(right)["code"] == "too_many_attempts"
    assert OneTimeCode.objects.get().verified_at is None


def test_a_wrong_try_counts_even_with_an_idempotency_key(api):
    code = sent_code(api.post("/otp", {"to": NUMBER}))
    wrong = "000000" if code != "000000" else "111111"
    for n in range(3):
        api.post("/otp/verify", {"to": NUMBER, "code": wrong}, headers={"Idempotency-Key": f"{n}"})
    assert OneTimeCode.objects.get().attempts == 3


def test_an_expired_code_is_refused(api, settings):
    settings.SMSHUB_OTP_TTL = 60
    code = sent_code(api.post("/otp", {"to": NUMBER}))
    created = OneTimeCode.objects.get()
    assert created.expires_at - created.created_at == timedelta(seconds=60)
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post("/otp/verify", {"to": NUMBER, "code": code})
    assert response.status_code == 422 and error_of(response)["code"] == "code_expired"
    assert OneTimeCode.objects.get().verified_at is None


def test_a_new_code_replaces_the_previous_one(api):
    first = sent_code(api.post("/otp", {"to": NUMBER}))
    second = sent_code(api.post("/otp", {"to": NUMBER}))
    if first != second:
        assert error_of(api.post("/otp/verify", {"to": NUMBER, "code": first}))["code"] == (
            "wrong_code"
        )
    assert api.post("/otp/verify", {"to": NUMBER, "code": second}).status_code == 200


def test_codes_are_per_account(api, other_api):
    code = sent_code(api.post("/otp", {"to": NUMBER}))
    response = other_api.post("/otp/verify", {"to": NUMBER, "code": code})
    assert response.status_code == 422 and error_of(response)["code"] == "no_code"
    assert api.post("/otp/verify", {"to": NUMBER, "code": code}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/otp", {"to": "12"}, "to"),
        ("/otp", {"to": NUMBER, "text": "No placeholder"}, "text"),
        ("/otp", {"to": NUMBER, "text": "{code}" + "x" * 1528}, "text"),
        ("/otp", {"to": NUMBER, "length": 3}, "length"),
        ("/otp", {"to": NUMBER, "length": "6"}, "length"),
        ("/otp", {"to": NUMBER, "length": True}, "length"),
        ("/otp", {"to": NUMBER, "category": ""}, "category"),
        ("/otp", {"to": NUMBER, "sender": "Nope"}, "sender"),
        ("/otp/verify", {"to": NUMBER, "code": "12ab"}, "code"),
        ("/otp/verify", {"to": NUMBER}, "code"),
    ],
)
def test_bad_otp_input_is_422_and_sends_nothing(api, path, body, field):
    response = api.post(path, body)
    assert response.status_code == 422, response.content
    assert field in error_of(response)["fields"]
    assert not Message.objects.exists() and not OneTimeCode.objects.exists()


def test_no_code_to_an_opted_out_number(api, account):
    OptOutFactory(account=account, number=NUMBER)
    response = api.post("/otp", {"to": NUMBER})
    assert response.status_code == 422
    assert "opted out" in error_of(response)["fields"]["to"][0]
    assert not Message.objects.exists() and not OneTimeCode.objects.exists()


def test_the_code_is_never_shown_and_forgotten_once_sent_and_used(api, other_api):
    response = api.post("/otp", {"to": NUMBER, "text": "Your code is {code}"})
    code = sent_code(response)
    message = Message.objects.get()
    assert message.text == "Your code is ••••••"  # what every page and API answer shows
    assert message.segments == 1 and message.encoding == Message.Encoding.GSM7  # of the code
    assert code not in api.get(f"/messages/{message.pk}").content.decode()
    with connection.cursor() as cursor:  # stored encrypted
        cursor.execute("SELECT secret_text FROM campaigns_message WHERE id = %s", [message.pk])
        assert code not in cursor.fetchone()[0]
    assert otp.redact_finished(now=timezone.now() + timedelta(hours=1)) == 0  # not sent yet
    Message.objects.filter(pk=message.pk).update(status=Message.Status.DELIVERED)
    api.post("/otp/verify", {"to": NUMBER, "code": code})
    message.refresh_from_db()
    assert message.secret_text is None and message.text == "Your code is ••••••"
    assert OneTimeCode.objects.get().redacted


def test_expired_codes_are_masked_then_forgotten(api):
    sent_code(api.post("/otp", {"to": NUMBER, "text": "Code {code}"}))
    Message.objects.update(status=Message.Status.SENT)
    later = timezone.now() + timedelta(minutes=6)
    assert otp.redact_finished(now=later) == 1
    assert Message.objects.get().secret_text is None
    assert otp.purge(now=later) == 0
    assert otp.purge(now=later + timedelta(days=1)) == 1
    assert not OneTimeCode.objects.exists() and Message.objects.exists()


@pytest.fixture
def ogangi_account(db, simulator):
    ogangi = ProviderAccountFactory(
        name="Ogangi",
        slug="ogangi",
        base_url=simulator.url,
        credentials={
            "instance_id": "1001",
            "public_key": "ogangi-public",
            "private_key": "ogangi-private",
            "carrier": "Movistar",  # the PIN method needs the carrier's name
        },
    )
    account = AccountFactory(name="Ogangi customer", route=[ogangi])
    SenderNameFactory(account=account, name="4545")
    return account


def pin_of(code: OneTimeCode) -> str:
    """The PIN Ogangi made, found back from the stored HMAC by trying every 4-digit code (what
    the person would read on their phone; the simulator keeps no copy)."""
    for n in range(10**code.length):
        candidate = f"{n:0{code.length}d}"
        if otp.code_hash(code.salt, candidate) == code.code_hash:
            return candidate
    raise AssertionError("no code matches the stored hash")


def test_through_ogangi_the_pin_method_sends_the_code(client, ogangi_account, simulator):
    api = ApiClient(client, ApiKeyFactory(account=ogangi_account).secret)
    before = simulator.recorded
    response = api.post(
        "/otp", {"to": NUMBER, "text": "Your code is {code}", "length": 4, "sender": "4545"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["channel"] == "ogangi_pin"
    calls = [
        e
        for e in [e for e in simulator.requests_log if e["seq"] > before]
        if e.get("kind") == "request"
    ]
    assert len(calls) == 1
    assert (
        "/rest/api/tools/sendSMSPinMobileNumberConfirm/1001/Movistar/4545/33612345678/"
        in (calls[0]["path"])
    )
    assert calls[0]["status"] == 200
    message = Message.objects.get(pk=body["message_id"])
    assert message.status == Message.Status.SENT and message.text == "Your code is"
    assert message.provider_account.slug == "ogangi"

    pin = pin_of(OneTimeCode.objects.get())
    wrong = "0000" if pin != "0000" else "1111"
    assert api.post("/otp/verify", {"to": NUMBER, "code": wrong}).status_code == 422
    assert api.post("/otp/verify", {"to": NUMBER, "code": pin}).status_code == 200


def test_through_ogangi_without_a_short_code_is_a_clear_422(client, ogangi_account, simulator):
    SenderNameFactory(account=ogangi_account, name="Clinic")
    api = ApiClient(client, ApiKeyFactory(account=ogangi_account).secret)
    before = simulator.recorded
    response = api.post("/otp", {"to": NUMBER, "sender": "Clinic"})
    assert response.status_code == 422
    assert "short or long code" in error_of(response)["fields"]["sender"][0]
    assert simulator.recorded == before  # nothing was sent
    assert not OneTimeCode.objects.exists() and not Message.objects.exists()


def test_the_beat_task_masks_and_forgets(api, api_key):
    from campaigns.api import tasks
    from campaigns.api.models import IdempotencyRecord

    api.post("/otp", {"to": NUMBER, "text": "Code {code}"}, headers={"Idempotency-Key": "k"})
    Message.objects.update(status=Message.Status.DELIVERED)
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(days=2))
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert tasks.purge() == {"idempotency_records": 1, "codes_masked": 1, "codes_deleted": 1}
    assert Message.objects.get().text == "Code ••••••"


def test_through_ogangi_refusing_the_keys_the_hub_sends_its_own_code(
    client, ogangi_account, simulator
):
    """Ogangi answers BAD_SIGNATURE: the provider account is put on hold, and the code goes as
    the hub's own, by SMS through the route (where it waits for the hold, or fails over)."""
    ogangi = ogangi_account.route()[0]
    ogangi.credentials = {**ogangi.credentials, "private_key": "revoked"}
    ogangi.save()
    api = ApiClient(client, ApiKeyFactory(account=ogangi_account).secret)
    response = api.post("/otp", {"to": NUMBER, "text": "Your code is {code}", "sender": "4545"})
    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "sms"
    ogangi.refresh_from_db()
    assert ogangi.hold_reason.startswith("credentials refused by Ogangi")
    message = Message.objects.get(pk=response.json()["message_id"])
    assert message.status == Message.Status.QUEUED
