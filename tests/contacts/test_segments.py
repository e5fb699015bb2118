"""Segments: saved filters over contacts' fields, lists, opt-outs and replies."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.contacts import segments
from campaigns.contacts.models import Contact, ContactField, ContactList
from campaigns.models import OptOut, Reply

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(account):
    ContactField.objects.create(account=account, key="city", label="City")
    ContactField.objects.create(account=account, key="age", label="Age", type="number")
    ContactField.objects.create(account=account, key="joined", label="Joined", type="date")

    def contact(number, name="", **values):
        return Contact.objects.create(account=account, number=number, name=name, values=values)

    made = {
        "ann": contact("+33612345601", "Ann", city="Lyon", age=34, joined="2025-01-10"),
        "bob": contact("+33612345602", "Bob", city="lyon", age=19),
        "cat": contact("+33612345603", "Cat", city="Paris", age=52, joined="2026-03-01"),
        "dan": contact("+33612345604", "Dan"),
    }
    # Another account's contact in Lyon: never in this account's segments.
    other = AccountFactory()
    Contact.objects.create(account=other, number="+33612345601", values={"city": "Lyon"})
    return made


def names(account, rules):
    return sorted(c.name for c in segments.contacts(account, segments.clean(account, rules)))


def test_field_conditions(account, people):
    assert names(account, [{"field": "city", "op": "eq", "value": "LYON"}]) == ["Ann", "Bob"]
    assert names(account, [{"field": "city", "op": "ne", "value": "Lyon"}]) == ["Cat", "Dan"]
    assert names(account, [{"field": "city", "op": "empty"}]) == ["Dan"]
    assert names(account, [{"field": "age", "op": "gt", "value": "30"}]) == ["Ann", "Cat"]
    assert names(account, [{"field": "joined", "op": "lt", "value": "01/01/2026"}]) == ["Ann"]
    assert names(account, [{"field": "name", "op": "starts", "value": "b"}]) == ["Bob"]


def test_city_in_lyon_not_opted_out_and_replied_lately(account, people):
    OptOut.objects.create(account=account, number=people["bob"].number)
    now = timezone.now()
    Reply.objects.create(account=account, from_number=people["ann"].number, text="Yes")
    old = Reply.objects.create(account=account, from_number=people["cat"].number, text="Hi")
    Reply.objects.filter(pk=old.pk).update(received_at=now - timedelta(days=40))
    rules = [
        {"field": "city", "op": "eq", "value": "Lyon"},
        {"opted_out": False},
        {"replied_within_days": 30},
    ]
    assert names(account, rules) == ["Ann"]
    assert names(account, [{"no_reply_within_days": 30}]) == ["Bob", "Cat", "Dan"]


def test_list_conditions(account, people):
    vip = ContactList.objects.create(account=account, name="VIP")
    vip.contacts.add(people["ann"], people["dan"])
    assert names(account, [{"list": vip.pk}]) == ["Ann", "Dan"]
    assert names(account, [{"list": vip.pk, "op": "not_in"}]) == ["Bob", "Cat"]


def test_rules_are_checked_against_the_account_with_reasons(account, people):
    theirs = ContactList.objects.create(account=AccountFactory(), name="Theirs")
    with pytest.raises(ValidationError) as error:
        segments.clean(
            account,
            [
                {"field": "shoe_size", "value": "42"},
                {"list": theirs.pk},
                {"field": "age", "op": "contains", "value": "3"},
                {"field": "age", "op": "gt", "value": "old"},
                {"replied_within_days": 0},
                {"colour": "red"},
            ],
        )
    assert error.value.messages == [
        "Rule 1: No contact field “shoe_size” in this account.",
        "Rule 2: No such list in this account.",
        "Rule 3: “contains” does not apply to this field: use empty, eq, gt, lt, ne, set.",
        "Rule 4: “old” is not a number.",
        "Rule 5: replied_within_days is a whole number of days, 1 to 3650.",
        "Rule 6: Unknown condition: use field, list, opted_out, replied_within_days or "
        "no_reply_within_days.",
    ]


def test_described_in_words(account, people):
    vip = ContactList.objects.create(account=account, name="VIP")
    rules = segments.clean(
        account, [{"field": "city", "value": "Lyon"}, {"list": vip.pk}, {"opted_out": False}]
    )
    assert segments.describe(account, rules) == ["City is Lyon", "in list “VIP”", "not opted out"]
