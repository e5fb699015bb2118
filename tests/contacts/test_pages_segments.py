"""Segments: the list with live counts, the editor's condition rows (saved through
`segments.clean`, its errors on their rows), its live count, and a segment's page."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import ContactField, ContactList, Segment

from .test_pages import (  # noqa: F401 (fixtures)
    acme,
    as_operator,
    as_viewer,
    contact,
    fields,
    page,
    people,
)

pytestmark = pytest.mark.django_db

ADD = reverse("contacts:segment_add")
COUNT = reverse("contacts:segment_count")


def rows(*conditions: dict) -> dict:
    """The editor's post for these rows: `{"what": ..., "op": ..., ...}` each."""
    data = {}
    for index, condition in enumerate(conditions):
        data.update({f"rule-{index}-{name}": value for name, value in condition.items()})
    return data


LYON_REACHABLE = [
    {"what": "field:city", "op": "eq", "value": "lyon"},
    {"what": "not_opted_out"},
    {"what": "replied", "days": "30"},
]


def test_create_a_segment_from_rows(as_operator, acme, people):  # noqa: F811
    form = page(as_operator.get(ADD))
    assert 'name="rule-0-what"' in form
    assert '<optgroup label="Contact field">' in form and ">City</option>" in form
    assert 'hx-post="/contacts/segments/count/"' in form
    assert "<strong>3</strong> contacts meet these conditions now." in form  # none yet: all
    response = as_operator.post(ADD, {"name": "Lyon, reachable", **rows(*LYON_REACHABLE)})
    segment = Segment.objects.get()
    assert response["Location"] == reverse("contacts:segment_detail", args=[segment.pk])
    assert segment.rules == [
        {"field": "city", "op": "eq", "value": "lyon"},
        {"opted_out": False},
        {"replied_within_days": 30},
    ]
    html = page(as_operator.get(response["Location"]))
    assert "City is lyon" in html and "and not opted out" in html
    assert "and replied in the last 30 days" in html
    assert "1 contact now" in html and "Ann" in html and "Bob" not in html


def test_adding_and_removing_rows_saves_nothing(as_operator, acme, people):  # noqa: F811
    data = {"name": "Draft", **rows(*LYON_REACHABLE)}
    response = as_operator.post(ADD, {**data, "action": "add"})
    html = page(response)
    assert 'name="rule-3-what"' in html and 'class="error"' not in html
    assert "<strong>1</strong> contact meets these conditions now." in html
    assert 'value="Draft"' in html
    response = as_operator.post(
        ADD, {"name": "Draft", **rows(*LYON_REACHABLE[:2]), "action": "remove-1"}
    )
    html = page(response)
    assert 'name="rule-1-what"' not in html
    assert "<strong>2</strong> contacts meet" in html  # in Lyon: Ann, and Bob who opted out
    assert not Segment.objects.exists()


def test_each_rows_error_is_next_to_it(as_operator, acme, people):  # noqa: F811
    data = rows(
        {"what": "field:age", "op": "gt", "value": "old"},
        {"what": "in_list", "list": ""},
        {"what": "no_reply", "days": "0"},
        {"what": "field:city", "op": "gt", "value": "Lyon"},
        {"what": ""},  # an empty row is left out
    )
    response = as_operator.post(ADD, {"name": "", **data})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html
    assert 'id="id_rule-1-list_error"' in html and "Choose a list." in html
    assert 'id="id_rule-2-days_error"' in html and "A whole number of days, 1 to 3650." in html
    assert not Segment.objects.exists()
    # The segments' own checks, once each row is complete: on the row they are about.
    data = rows(
        {"what": "field:age", "op": "gt", "value": "old"},
        {"what": "field:city", "op": "gt", "value": "Lyon"},
    )
    response = as_operator.post(ADD, {"name": "Odd", **data})
    html = response.content.decode()
    first, second = html.split('id="rule-2"')
    assert "“old” is not a number." in first.split('id="rule-1"')[1]
    assert "does not apply to this field" in second


def test_the_live_count_follows_the_rows(as_operator, acme, people):  # noqa: F811
    html = page(as_operator.post(COUNT, rows(*LYON_REACHABLE[:2])))
    assert "<strong>1</strong> contact meets these conditions now." in html
    assert "<html" not in html  # a fragment
    html = page(as_operator.post(COUNT, rows({"what": "field:age", "op": "gt", "value": "x"})))
    assert "Complete the conditions" in html and "Condition 1: “x” is not a number." in html
    html = page(as_operator.post(COUNT, rows({"what": "field:nope", "op": "eq", "value": "x"})))
    assert "Condition 1: No contact field “nope” in this account." in html


def test_edit_shows_the_rows_as_saved(as_operator, acme, people):  # noqa: F811
    segment = Segment.objects.create(
        account=acme,
        name="VIPs over 30",
        rules=[
            {"list": people["vip"].pk, "op": "in"},
            {"field": "age", "op": "gt", "value": 30},
            {"no_reply_within_days": 7},
        ],
    )
    url = reverse("contacts:segment_edit", args=[segment.pk])
    html = page(as_operator.get(url))
    assert '<option value="in_list" selected>' in html
    assert f'<option value="{people["vip"].pk}" selected>VIP</option>' in html
    assert 'name="rule-1-value" value="30"' in html and 'name="rule-2-days" value="7"' in html
    assert "<strong>0</strong> contacts meet" in html  # Ann replied lately
    data = rows({"what": "in_list", "list": str(people["vip"].pk)})
    assert as_operator.post(url, {"name": "VIPs", **data}).status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("VIPs", [{"list": people["vip"].pk, "op": "in"}])


def test_the_list_counts_each_segment_now(as_viewer, acme, people):  # noqa: F811
    Segment.objects.create(account=acme, name="Everyone", rules=[])
    Segment.objects.create(
        account=acme, name="In Lyon", rules=[{"field": "city", "op": "eq", "value": "Lyon"}]
    )
    response = as_viewer.get(reverse("contacts:segment_list"))
    html = page(response)
    assert [(r["segment"].name, r["count"]) for r in response.context["rows"]] == [
        ("Everyone", 3),
        ("In Lyon", 2),
    ]
    assert "City is Lyon" in html and "Every contact" in html
    assert "New segment" not in html  # a viewer reads


def test_a_deleted_list_or_field_or_rules_changed_by_hand_never_break_a_page(
    as_operator,  # noqa: F811
    acme,  # noqa: F811
    people,  # noqa: F811
):
    gone = ContactList.objects.create(account=acme, name="Gone")
    segment = Segment.objects.create(
        account=acme,
        name="Old",
        rules=[{"list": gone.pk, "op": "not_in"}, {"field": "city", "op": "eq", "value": "Lyon"}],
    )
    gone.delete()
    ContactField.objects.filter(key="city").delete()
    html = page(as_operator.get(reverse("contacts:segment_detail", args=[segment.pk])))
    assert "not in list “a deleted list”" in html and "city is Lyon" in html
    html = page(as_operator.get(reverse("contacts:segment_edit", args=[segment.pk])))
    assert "city (deleted field)" in html
    broken = Segment.objects.create(account=acme, name="Broken", rules=[{"field": "x"}])
    Segment.objects.create(
        account=acme, name="Odd op", rules=[{"field": "city", "op": "near", "value": "x"}]
    )
    html = page(as_operator.get(reverse("contacts:segment_detail", args=[broken.pk])))
    assert "Its conditions cannot be read" in html
    assert "Cannot be read" in page(as_operator.get(reverse("contacts:segment_list")))
    html = page(as_operator.get(reverse("contacts:contact_list"), {"segment": broken.pk}))
    assert "This segment's conditions cannot be read" in html


def test_names_are_unique_in_an_account(as_operator, acme):  # noqa: F811
    Segment.objects.create(account=acme, name="Lyon", rules=[])
    response = as_operator.post(ADD, {"name": "lyon"})
    assert response.status_code == 400
    assert "This account already has a segment with this name." in response.content.decode()


def test_too_many_posted_rows_are_refused_in_words(as_operator, acme, fields):  # noqa: F811
    data = rows(*[{"what": "not_opted_out"}] * 25)
    response = as_operator.post(ADD, {"name": "Many", **data})
    assert response.status_code == 400
    assert "At most 20 conditions." in response.content.decode()


def test_delete_a_segment_keeps_its_contacts(as_operator, acme, people):  # noqa: F811
    segment = Segment.objects.create(account=acme, name="All", rules=[])
    url = reverse("contacts:segment_delete", args=[segment.pk])
    assert "no contact is deleted" in page(as_operator.get(url))
    assert as_operator.post(url)["Location"] == reverse("contacts:segment_list")
    assert not Segment.objects.exists() and acme.contacts.count() == 3
