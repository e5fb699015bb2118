"""The contacts models in the Django admin: every page opens; deleting a contact there masks
its number as the contact page does; segment rules typed there are checked."""

import pytest
from django.contrib import admin
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template
from campaigns.models import Message

from ..factories import MessageFactory
from .test_pages import acme, contact  # noqa: F401

pytestmark = pytest.mark.django_db

MODELS = [Contact, ContactField, ContactList, Segment, Template]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def objects(acme):  # noqa: F811
    person = contact(acme, "+33612345601", "Ann", city="Lyon")
    contact_list = ContactList.objects.create(account=acme, name="VIP")
    person.lists.add(contact_list)
    return {
        Contact: person,
        ContactField: ContactField.objects.create(account=acme, key="city", label="City"),
        ContactList: contact_list,
        Segment: Segment.objects.create(account=acme, name="All", rules=[{"opted_out": False}]),
        Template: Template.objects.create(account=acme, name="Hi", text="Hi {name}"),
    }


@pytest.mark.parametrize("model", MODELS)
def test_admin_pages_open(admin_client, objects, model):
    assert model in admin.site._registry
    assert admin_client.get(url(model, "changelist")).status_code == 200
    assert admin_client.get(url(model, "changelist"), {"q": "06 12 34 56 01"}).status_code == 200
    assert admin_client.get(url(model, "change", objects[model].pk)).status_code == 200
    assert admin_client.get(url(model, "add")).status_code == 200


def test_deleting_a_contact_in_the_admin_masks_its_number(admin_client, acme, objects):  # noqa: F811
    person = objects[Contact]
    message = MessageFactory(account=acme, recipient=person.number, status="delivered")
    response = admin_client.post(url(Contact, "delete", person.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Contact.objects.exists()
    assert Message.objects.get(pk=message.pk).recipient == "+33•••••5601"


def test_segment_rules_typed_in_the_admin_are_checked(admin_client, acme, objects):  # noqa: F811
    segment = objects[Segment]
    response = admin_client.post(
        url(Segment, "change", segment.pk),
        {"account": acme.pk, "name": "All", "rules": '[{"field": "shoe", "value": "42"}]'},
    )
    assert response.status_code == 200
    assert "Rule 1: No contact field “shoe” in this account." in response.content.decode()
    segment.refresh_from_db()
    assert segment.rules == [{"opted_out": False}]
