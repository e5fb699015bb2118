"""National numbers: an account's default country reads `06 12 34 56 78` wherever numbers come
in (compose, CSV, opt-outs, searches, the API, `sendsms`); without one, every number needs its
+ and country code, and the error says so."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from campaigns import phone
from campaigns.contacts.models import ContactList, Template
from campaigns.models import Account, Campaign, Membership, Message, OptOut
from campaigns.services import bulk, optouts

from ..api.conftest import BASE
from ..factories import AccountFactory, ApiKeyFactory, MembershipFactory, MessageFactory
from .test_compose import confirm, preview

pytestmark = pytest.mark.django_db

SAME = ["06 12 34 56 78", "0612345678", "+33 6 12 34 56 78", "0033612345678", "06.12.34.56.78"]


@pytest.fixture
def french(account):
    account.country = "FR"
    account.save()
    return account


@pytest.mark.parametrize("written", SAME)
def test_every_french_writing_is_one_number(written):
    assert phone.normalize(written, "FR") == "+33612345678"


def test_without_a_country_a_national_number_says_what_was_expected():
    with pytest.raises(Exception, match="Start it with \\+ and the country code"):
        phone.normalize("0612345678")


def test_an_unreadable_national_number_says_what_was_expected():
    with pytest.raises(Exception) as error:
        phone.normalize("06 12", "FR")
    assert error.value.messages == [
        "“06 12” is not a valid number of France. Write it with + and the country code, or as "
        "a number of France (06 12 34 56 78)."
    ]


def test_another_country_reads_its_own_numbers():
    assert phone.normalize("0721 234 567", "RO") == "+40721234567"
    assert phone.normalize("+33612345678", "RO") == "+33612345678"


def test_compose_sends_a_pasted_list_of_national_numbers_once_each(operator_client, french):
    data = {"recipients": "\n".join([*SAME, "0721234567"]), "name": "Lyon", "text": "Hello"}
    page = preview(operator_client, **data).content.decode()
    assert "e.g. 06 12 34 56 78, or any number with + and its country code." in page
    response = confirm(operator_client, preview(operator_client, **data), **data)
    assert response.status_code == 200
    campaign = Campaign.objects.get()
    # 0721234567 is not a French mobile: left out with the reason, nothing else lost.
    assert list(campaign.messages.values_list("recipient", flat=True)) == ["+33612345678"]


def test_a_csv_of_national_numbers_without_header_keeps_its_first_row(french):
    info = bulk.inspect_csv(io.BytesIO(b"0612345678;Ann\n0612345679;Bob\n"), "FR")
    assert (info.has_header, info.column) == (False, 0)
    result = bulk.create_campaign(
        french,
        name="CSV",
        text="Hi",
        recipients=bulk.csv_recipients(
            io.BytesIO(b"0612345678;Ann\n06 12;Eve\n0612345679;Bob\n"),
            column=0,
            has_header=False,
            delimiter=";",
        ),
    )
    assert result.queued == 2
    assert sorted(result.campaign.messages.values_list("recipient", flat=True)) == [
        "+33612345678",
        "+33612345679",
    ]
    assert [(row.line, row.reason) for row in result.rejected] == [
        (2, "Not a valid number of France.")
    ]


def test_opt_outs_are_added_imported_and_found_by_national_number(client, french):
    client.force_login(MembershipFactory(account=french, role=Membership.Role.ADMIN).user)
    client.post(reverse("campaigns:optout_add"), {"number": "06 12 34 56 78"})
    client.post(reverse("campaigns:optout_import"), {"numbers": "0612345679\n06 12\n"})
    assert sorted(OptOut.objects.values_list("number", flat=True)) == [
        "+33612345678",
        "+33612345679",
    ]
    found = client.get(reverse("campaigns:optout_list"), {"q": "06 12 34 56 79"})
    assert [o.number for o in found.context["rows"]] == ["+33612345679"]
    parsed = optouts.parse_numbers("06 12\n", "FR")
    assert parsed.errors == [
        (
            1,
            "“06 12” is not a valid number of France. Write it with + and the country code, "
            "or as a number of France (06 12 34 56 78).",
        )
    ]


def test_the_messages_page_finds_a_national_number(operator_client, french):
    message = MessageFactory(account=french, recipient="+33612345678")
    MessageFactory(account=french, recipient="+33612345679")
    page = operator_client.get(reverse("campaigns:message_list"), {"number": "06 12 34 56 78"})
    assert [m.pk for m in page.context["page"]["rows"]] == [message.pk]


def test_the_api_reads_national_numbers_in_the_accounts_country(client, french, provider_account):
    secret = ApiKeyFactory(account=french).secret
    headers = {"Authorization": f"Bearer {secret}"}
    body = json.dumps({"to": "06 12 34 56 78", "text": "Hi"})
    sent = client.post(f"{BASE}/messages", body, "application/json", headers=headers)
    assert sent.status_code == 201, sent.content
    assert sent.json()["message"]["to"] == "+33612345678"
    many = json.dumps({"to": ["0612345678", "+33 6 12 34 56 78", "0612345679"], "text": "Hi"})
    campaign = client.post(f"{BASE}/messages", many, "application/json", headers=headers).json()
    assert (campaign["queued"], campaign["duplicates"]) == (2, 1)
    # An account without a country: the same number is refused, saying what was expected.
    theirs = ApiKeyFactory(account=AccountFactory(route=[provider_account])).secret
    refused = client.post(
        f"{BASE}/messages", body, "application/json", headers={"Authorization": f"Bearer {theirs}"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"]["to"] == [
        "“06 12 34 56 78” is not a phone number. Start it with + and the country code."
    ]


def test_sendsms_reads_a_national_number(french, provider_account, capsys):
    call_command(
        "sendsms",
        provider=provider_account.name,
        to="06 12 34 56 78",
        text="Hello",
        account=french.name,
    )
    assert Message.objects.get().recipient == "+33612345678"


def test_the_demo_account_reads_french_numbers(db, settings):
    settings.DEBUG = True  # seed_demo's known password
    call_command("seed_demo", stdout=io.StringIO())
    demo = Account.objects.get(name="Demo")
    assert demo.country == "FR"
    # A few contacts in a list and a template, to try personalisation; seeding twice adds none.
    call_command("seed_demo", stdout=io.StringIO())
    regulars = ContactList.objects.get(account=demo, name="Regulars")
    assert regulars.contacts.count() == 4
    assert Template.objects.get(account=demo).text.startswith("Hello {first_name|there}")
