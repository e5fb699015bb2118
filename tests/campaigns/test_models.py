import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from campaigns.models import Account, Message, MessageEvent, OptOut, SenderName
from campaigns.phone import normalize

from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("+40 (721) 234-567", "+40721234567"),
        ("+1 415 555 2671", "+14155552671"),
    ],
)
def test_numbers_are_normalised_to_e164(given, expected):
    assert normalize(given) == expected


def test_a_national_number_is_read_in_the_given_region():
    assert normalize("06 12 34 56 78", region="FR") == "+33612345678"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("06 12 34 56 78", "Start it with + and the country code"),
        ("hello", "is not a phone number"),
        ("+33 6 12", "is not a valid phone number for its country"),
        ("+999 123456789", "is not"),
        ("", "Enter a phone number"),
    ],
)
def test_invalid_numbers_are_refused_with_a_clear_message(given, message):
    with pytest.raises(ValidationError) as caught:
        normalize(given)
    assert message in " ".join(caught.value.messages)


@pytest.mark.django_db
def test_message_full_clean_normalises_the_recipient():
    message = MessageFactory.build(account=AccountFactory(), recipient="+33 6 12 34 56 78")
    message.full_clean()
    assert message.recipient == "+33612345678"


@pytest.mark.django_db
def test_message_full_clean_refuses_an_invalid_recipient():
    message = MessageFactory.build(account=AccountFactory(), recipient="12345")
    with pytest.raises(ValidationError) as caught:
        message.full_clean()
    assert "recipient" in caught.value.message_dict


@pytest.mark.django_db
def test_the_database_refuses_a_recipient_that_is_not_e164():
    with pytest.raises(IntegrityError):
        MessageFactory(recipient="0612345678")


@pytest.mark.django_db
def test_a_provider_message_id_may_name_several_messages():
    """Providers reuse ids (Primotexto's snapshotId has 6 digits): no uniqueness is assumed."""
    provider = ProviderAccountFactory()
    first = MessageFactory(provider_account=provider, provider_message_id="386479")
    again = MessageFactory(provider_account=provider, provider_message_id="386479")
    assert first.pk != again.pk


@pytest.mark.django_db
def test_a_send_window_must_end_after_it_starts():
    from django.utils import timezone

    now = timezone.now()
    with pytest.raises(IntegrityError):
        MessageFactory(window_start=now, window_end=now)


@pytest.mark.django_db
def test_an_opt_out_is_unique_per_account_and_number():
    account = AccountFactory()
    OptOut.objects.create(account=account, number="+33612345678")
    OptOut.objects.create(account=AccountFactory(), number="+33612345678")
    with pytest.raises(IntegrityError):
        OptOut.objects.create(account=account, number="+33612345678")


@pytest.mark.parametrize("name", ["SMSHub", "Clinic42", "ABC", "+33612345678", "12345"])
def test_valid_sender_names(name):
    SenderName(account=Account(name="x"), name=name).clean_fields(exclude=["account"])


@pytest.mark.parametrize("name", ["AB", "TwelveLetter", "Café", "Dr Who", "ab-cd"])
def test_invalid_sender_names_are_refused(name):
    with pytest.raises(ValidationError) as caught:
        SenderName(account=Account(name="x"), name=name).clean_fields(exclude=["account"])
    assert "3 to 11 letters and digits" in str(caught.value)


def test_account_timezone_must_be_a_real_zone():
    with pytest.raises(ValidationError) as caught:
        Account(name="x", timezone="Mars/Olympus").clean_fields()
    assert "time zone" in str(caught.value)


def test_final_statuses():
    assert Message(status=Message.Status.DELIVERED).is_final
    assert not Message(status=Message.Status.SENT).is_final
    assert not Message(status=Message.Status.UNKNOWN).is_final


def test_provider_numbers_without_plus_are_read_as_international():
    from campaigns.phone import normalize_msisdn

    assert normalize_msisdn("584141234567") == "+584141234567"
    assert normalize_msisdn("+33 6 12 34 56 78") == "+33612345678"
    with pytest.raises(ValidationError):
        normalize_msisdn("0612345678")  # a national number: the country is unknown


@pytest.mark.django_db
def test_times_stored_beyond_the_calendar_are_brought_within_it(operator_client, account):
    """Before the API checked the range, `"send_at": "9999-12-31T23:59:59Z"` was stored, and
    every page showing the message failed (it cannot be shown in the account's time zone)."""
    import importlib
    from datetime import UTC, datetime

    from django.apps import apps
    from django.urls import reverse

    migration = importlib.import_module("campaigns.migrations.0010_times_within_the_calendar")
    message = MessageFactory(
        account=account,  # its time zone is ahead of UTC: 9999-12-31 23:59 UTC is year 10000
        status=Message.Status.SCHEDULED,
        scheduled_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        window_end=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    page = reverse("campaigns:message_detail", args=[message.pk])
    with pytest.raises(OverflowError):
        operator_client.get(page)
    migration.within(apps, None)
    message.refresh_from_db()
    assert message.scheduled_at == datetime(3000, 1, 1, tzinfo=UTC)
    assert operator_client.get(page).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model, covered",
    [
        (Message, ["account_id", "campaign_id", "provider_account_id"]),
        (MessageEvent, ["message_id"]),
    ],
)
def test_every_foreign_key_leads_one_index_only(model, covered):
    """Deleting an account, campaign, category, user or message finds its messages and events
    through an index, and no index is there twice: each status move rewrites every index of the
    message and adds an event."""
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    leading: dict[str, int] = {}
    for constraint in constraints.values():
        if constraint["index"] and constraint["columns"]:
            leading[constraint["columns"][0]] = leading.get(constraint["columns"][0], 0) + 1
    for field in model._meta.concrete_fields:
        if field.many_to_one:
            assert leading.get(field.column), f"no index leads with {field.column}"
    plain = [
        tuple(c["columns"])
        for c in constraints.values()
        if c["index"] and not c["primary_key"] and len(c["columns"]) == 1
    ]
    for column in covered:
        assert (column,) not in plain, f"{column} has an index of its own beside a wider one"
