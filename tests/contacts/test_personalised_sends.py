"""Sending to contacts, personalised: lists and segments in compose, merge fields from contacts
and CSV columns, the preview recipient by recipient, templates."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template
from campaigns.models import Campaign, Message, OptOut
from campaigns.services import bulk

from ..campaigns.test_compose import COMPOSE, confirm, form, preview
from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def people(account):
    account.country = "FR"
    account.price_per_segment = "0.05"
    account.save()
    ContactField.objects.create(account=account, key="first_name", label="First name")
    ContactField.objects.create(account=account, key="city", label="City")
    ann = Contact.objects.create(
        account=account, number="+33612345601", values={"first_name": "Ann", "city": "Lyon"}
    )
    bob = Contact.objects.create(account=account, number="+33612345602", values={"city": "Paris"})
    # A long first name: two SMS for this one.
    long = Contact.objects.create(
        account=account, number="+33612345603", values={"first_name": "Maximilian" * 14}
    )
    vip = ContactList.objects.create(account=account, name="VIP")
    vip.contacts.add(ann, bob, long)
    return {"ann": ann, "bob": bob, "long": long, "vip": vip}


TEXT = "Hi {first_name|there}, your order is ready in {city}."


def texts(campaign) -> dict[str, str]:
    return dict(campaign.messages.values_list("recipient", "text"))


def test_a_list_is_previewed_recipient_by_recipient_then_sent_personalised(operator_client, people):
    data = {"lists": [people["vip"].pk], "recipients": "06 12 34 56 01", "name": "Orders"}
    shown = preview(operator_client, text=TEXT, **data)
    page = shown.content.decode()
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<strong>)?([^<]+)", page))
    assert facts["Recipients"].strip() == "3"  # the typed number is Ann's: once
    assert facts["Duplicates left out"] == "1"
    assert facts["Each message"].strip() == "2 \u00d7 1 SMS, 1 \u00d7 2 SMS"
    assert facts["In all"] == "4 SMS"
    assert "0.20 EUR" in page
    assert "Hi Ann, your order is ready in Lyon." in page
    assert "Hi there, your order is ready in Paris." in page
    # The long name has no city and no fallback: flagged.
    assert "1 recipient</strong> has no value for a merge field" in page
    assert "+33612345603: <code>{city}</code>" in page

    confirm(operator_client, shown, text=TEXT, **data)
    campaign = Campaign.objects.get()
    assert campaign.text == TEXT
    sent = texts(campaign)
    assert sent["+33612345601"] == "Hi Ann, your order is ready in Lyon."
    assert sent["+33612345602"] == "Hi there, your order is ready in Paris."
    long = Message.objects.get(recipient="+33612345603")
    # Each message carries its own segments: what flood limits and costs count.
    assert (long.segments, long.encoding) == (2, "GSM-7")
    assert Message.objects.get(recipient="+33612345601").segments == 1


def test_segments_and_lists_count_a_number_once_and_leave_out_opt_outs(operator_client, people):
    OptOut.objects.create(account=people["ann"].account, number=people["bob"].number)
    paris = Segment.objects.create(
        account=people["ann"].account,
        name="Paris",
        rules=[{"field": "city", "op": "eq", "value": "Paris"}],
    )
    data = {"lists": [people["vip"].pk], "segments": [paris.pk], "name": "All"}
    shown = preview(operator_client, text="Hello {first_name|you}", **data)
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<strong>)?([^<]+)", shown.content.decode()))
    assert (facts["Recipients"].strip(), facts["Opted out, left out"]) == ("2", "1")
    assert facts["Duplicates left out"] == "1"


def test_csv_columns_are_merge_fields(operator_client, people):
    content = "Phone;Prénom;Ville\n0612345610;Zoé;Nantes\n0612345611;;Lille\n".encode()
    page = operator_client.post(
        COMPOSE,
        form(
            action="preview",
            csv_file=SimpleUploadedFile("people.csv", content, "text/csv"),
            name="CSV",
            text="Bonjour {prenom|à vous} de {ville}",
        ),
    ).content.decode()
    assert "Bonjour Zoé de Nantes" in page
    assert "Bonjour à vous de Lille" in page


def test_a_text_empty_for_a_recipient_leaves_that_one_out_with_the_reason(account):
    result = bulk.create_campaign(
        account,
        name="Empty",
        text="{first_name}",
        recipients=[(1, "+33612345678", {"first_name": "Ann"}), (2, "+33612345679", {})],
    )
    assert result.queued == 1
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "The text is empty for this recipient: {first_name}.")
    ]


def test_a_template_fills_the_text(operator_client, people):
    template = Template.objects.create(account=people["ann"].account, name="Ready", text=TEXT)
    theirs = Template.objects.create(account=AccountFactory(), name="Theirs", text="Secret")
    page = operator_client.get(
        reverse("campaigns:compose_template"), {"template": template.pk}
    ).content.decode()
    assert "Hi {first_name|there}, your order is ready in {city}." in page
    # Another account's template fills nothing; the text typed stays.
    page = operator_client.get(
        reverse("campaigns:compose_template"), {"template": theirs.pk, "text": "Mine"}
    ).content.decode()
    assert "Secret" not in page and ">Mine</textarea>" in page
    # Without JavaScript: previewing with a template and no text uses the template's.
    shown = preview(operator_client, recipients="0612345601", template=template.pk, text="")
    assert "Hi Ann, your order is ready in Lyon." in shown.content.decode()
    confirm(operator_client, shown, recipients="0612345601", template=template.pk, text="")
    assert Message.objects.get().text == "Hi Ann, your order is ready in Lyon."


def test_another_accounts_list_cannot_be_chosen(operator_client, people):
    theirs = ContactList.objects.create(account=AccountFactory(), name="Theirs")
    page = preview(operator_client, lists=[theirs.pk], name="X").content.decode()
    assert "Select a valid choice" in page
    assert not Campaign.objects.exists()
