"""The API sends to lists and segments, with templates and merge field values."""

import pytest

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template
from campaigns.models import Campaign, Message

from ..factories import AccountFactory
from .conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(account):
    account.country = "FR"
    account.save()
    ContactField.objects.create(account=account, key="first_name", label="First name")
    ann = Contact.objects.create(
        account=account, number="+33612345601", values={"first_name": "Ann"}
    )
    bob = Contact.objects.create(account=account, number="+33612345602")
    vip = ContactList.objects.create(account=account, name="VIP")
    vip.contacts.add(ann, bob)
    Template.objects.create(account=account, name="ready", text="Hi {first_name|there}!")
    return {"ann": ann, "bob": bob, "vip": vip}


def test_a_list_with_a_template_makes_a_personalised_campaign(api, people):
    response = api.post(
        "/messages", {"lists": [people["vip"].pk], "to": ["0612345601"], "template": "ready"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["queued"], body["duplicates"]) == (2, 1)
    campaign = Campaign.objects.get(pk=body["campaign"]["id"])
    assert dict(campaign.messages.values_list("recipient", "text")) == {
        "+33612345601": "Hi Ann!",
        "+33612345602": "Hi there!",
    }


def test_values_fill_merge_fields_before_the_contacts(api, people):
    response = api.post(
        "/messages",
        {"to": "06 12 34 56 01", "text": "{first_name}, code {code}", "values": {"code": 42}},
    )
    assert response.status_code == 201, response.content
    assert response.json()["message"]["text"] == "Ann, code 42"
    assert Message.objects.get().text == "Ann, code 42"


def test_a_segment_is_sent_to_as_it_is_now(api, people):
    segment = Segment.objects.create(
        account=people["ann"].account,
        name="Named",
        rules=[{"field": "first_name", "op": "set"}],
    )
    body = api.post("/messages", {"segments": [segment.pk], "text": "Hello"}).json()
    assert body["queued"] == 1
    assert Message.objects.get().recipient == people["ann"].number


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"text": "Hi"}, {"to": ["Give a number, a list of numbers, lists or segments."]}),
        ({"to": "+33612345601"}, {"text": ["Give the text to send, or a template's name."]}),
        (
            {"to": "+33612345601", "text": "Hi", "template": "ready"},
            {"template": ["Give a text or a template, not both."]},
        ),
        (
            {"to": "+33612345601", "template": "nope"},
            {"template": ["This account has no template named “nope”."]},
        ),
        (
            {"to": "+33612345602", "text": "{first_name}"},
            {"values": ["The text is empty for this recipient: give {first_name}."]},
        ),
    ],
)
def test_what_cannot_be_sent_is_a_422_naming_the_field(api, people, body, fields):
    response = api.post("/messages", body)
    assert response.status_code == 422, response.content
    assert error_of(response)["fields"] == fields
    assert not Message.objects.exists()


def test_another_accounts_list_or_segment_is_unknown(api, people):
    other = AccountFactory()
    theirs = ContactList.objects.create(account=other, name="Theirs")
    segment = Segment.objects.create(account=other, name="Theirs")
    response = api.post(
        "/messages",
        {"lists": [people["vip"].pk, theirs.pk], "segments": [segment.pk], "text": "Hi"},
    )
    assert response.status_code == 422
    assert error_of(response)["fields"] == {
        "lists.1": [f"This account has no list {theirs.pk}."],
        "segments.0": [f"This account has no segment {segment.pk}."],
    }
    assert not Campaign.objects.exists()


def test_values_are_checked_by_the_schema(api, people):
    for values in ({"Bad Key": "x"}, {"x": "\u0000"}, {"x": [1]}, {"x": "y" * 501}):
        response = api.post("/messages", {"to": "+33612345601", "text": "{x}", "values": values})
        assert response.status_code == 422, values
