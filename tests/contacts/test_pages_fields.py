"""Custom fields: account admins add, rename and delete them (deleting removes the key from
every contact's values, as its confirmation says); others read."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, Segment, Template

from .test_pages import acme, as_admin, as_operator, contact, fields, page  # noqa: F401

pytestmark = pytest.mark.django_db

FIELDS = reverse("contacts:field_list")


def test_an_account_admin_adds_a_field(as_admin, acme):  # noqa: F811
    html = page(as_admin.get(FIELDS))
    assert "<code>{number}</code>" in html and 'name="key"' in html
    response = as_admin.post(FIELDS, {"key": "first_name", "label": "First name", "type": "text"})
    assert response["Location"] == FIELDS
    field = ContactField.objects.get()
    assert (field.account, field.key, field.label, field.type) == (
        acme,
        "first_name",
        "First name",
        "text",
    )
    html = page(as_admin.get(FIELDS))
    assert "Field “First name” added: write {first_name} in a text." in html
    assert "<code>{first_name}</code>" in html


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("First Name", "Use lowercase letters, digits and _"),
        ("name", "“name” is a field of every contact already."),
        ("city", "This account already has a field “city”."),
        ("", "This field is required."),
    ],
)
def test_a_bad_key_is_said_next_to_it(as_admin, fields, key, error):  # noqa: F811
    response = as_admin.post(FIELDS, {"key": key, "label": "X", "type": "text"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_key_error"' in html and error in html
    assert ContactField.objects.count() == 3


def test_a_bad_type_or_an_empty_label_is_said_next_to_it(as_admin, acme):  # noqa: F811
    html = as_admin.post(FIELDS, {"key": "shoe", "label": " ", "type": "colour"}).content.decode()
    assert 'id="id_label_error"' in html and 'id="id_type_error"' in html


def test_rename_changes_the_label_only(as_admin, fields):  # noqa: F811
    url = reverse("contacts:field_edit", args=[fields["city"].pk])
    assert "Only its label changes" in page(as_admin.get(url))
    assert as_admin.post(url, {"label": "Town", "key": "town"})["Location"] == FIELDS
    fields["city"].refresh_from_db()
    assert (fields["city"].key, fields["city"].label) == ("city", "Town")
    assert as_admin.post(url, {"label": ""}).status_code == 400


def test_delete_says_what_uses_the_field_then_removes_its_values(as_admin, acme, fields):  # noqa: F811
    ann = contact(acme, "+33612345601", "Ann", city="Lyon", age=34)
    bob = contact(acme, "+33612345602", "Bob", city="Paris")
    contact(acme, "+33612345603", "Cat", age=50)
    Segment.objects.create(
        account=acme, name="Lyon", rules=[{"field": "city", "op": "eq", "value": "Lyon"}]
    )
    Template.objects.create(account=acme, name="Shop", text="Visit us in {city|town}")
    url = reverse("contacts:field_delete", args=[fields["city"].pk])
    html = page(as_admin.get(url))
    assert "{city} is removed from the values of every contact: 2 contacts have one now." in html
    assert "Segments with a condition on it (Lyon)" in html
    assert "Templates using {city} (Shop)" in html
    response = as_admin.post(url)
    assert response["Location"] == FIELDS
    assert not ContactField.objects.filter(key="city").exists()
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert ann.values == {"age": 34} and bob.values == {}
    assert Contact.objects.get(name="Cat").values == {"age": 50}
    assert "its value removed from 2 contacts" in page(as_admin.get(FIELDS))


def test_an_operator_reads_the_fields_but_cannot_change_them(as_operator, fields):  # noqa: F811
    html = page(as_operator.get(FIELDS))
    assert "City" in html and 'name="key"' not in html and "Rename" not in html
    response = as_operator.post(FIELDS, {"key": "shoe", "label": "Shoe", "type": "text"})
    assert response.status_code == 403
    assert "Only account admins can change custom fields." in response.content.decode()
