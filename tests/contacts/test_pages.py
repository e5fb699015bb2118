"""The contacts pages: the list (search, filters, pages, ticking into a list), adding and editing
a contact, its page (fields, lists, opt-out, messages, replies) and deleting it.

The fixtures here are shared by the other `test_pages_*` files."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.contacts.models import Contact, ContactField, ContactList, Membership, Segment
from campaigns.contacts.views.common import PAGE_SIZE
from campaigns.models import Membership as Staff
from campaigns.models import Message, OptOut, Reply

from ..factories import AccountFactory, MembershipFactory, MessageFactory

pytestmark = pytest.mark.django_db

Role = Staff.Role
LIST = reverse("contacts:contact_list")
ADD = reverse("contacts:contact_add")


@pytest.fixture
def acme(db):
    """An account in France: national numbers are read as French ones."""
    return AccountFactory(name="Acme", country="FR")


def login(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    return client


@pytest.fixture
def as_admin(client, acme):
    return login(client, acme, Role.ADMIN)


@pytest.fixture
def as_operator(client, acme):
    return login(client, acme, Role.OPERATOR)


@pytest.fixture
def as_viewer(client, acme):
    return login(client, acme, Role.VIEWER)


@pytest.fixture
def fields(acme):
    return {
        "city": ContactField.objects.create(account=acme, key="city", label="City"),
        "age": ContactField.objects.create(account=acme, key="age", label="Age", type="number"),
        "joined": ContactField.objects.create(
            account=acme, key="joined", label="Joined", type="date"
        ),
    }


def contact(account, number, name="", **values):
    return Contact.objects.create(account=account, number=number, name=name, values=values)


@pytest.fixture
def people(acme, fields):
    """Ann in Lyon (in VIP, replied), Bob in Lyon (opted out), Cat in Paris."""
    made = {
        "ann": contact(acme, "+33612345601", "Ann", city="Lyon", age=34, joined="2025-01-10"),
        "bob": contact(acme, "+33612345602", "Bob", city="Lyon", age=19),
        "cat": contact(acme, "+33612345603", "Cat", city="Paris"),
    }
    vip = ContactList.objects.create(account=acme, name="VIP")
    Membership.objects.create(contact=made["ann"], contact_list=vip)
    OptOut.objects.create(account=acme, number=made["bob"].number, keyword="STOP", source="reply")
    Reply.objects.create(account=acme, from_number=made["ann"].number, text="Yes please")
    made["vip"] = vip
    return made


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def shown_names(response) -> list[str]:
    return [c.name for c in response.context["page"]["rows"]]


# The list ---------------------------------------------------------------------------------


def test_the_list_shows_each_contact_with_its_lists_and_opt_out_and_a_count(as_viewer, people):
    contact(AccountFactory(), "+33612345609", "Theirs")  # another account's: never shown
    response = as_viewer.get(LIST)
    html = page(response)
    assert shown_names(response) == ["Cat", "Bob", "Ann"]  # latest added first
    assert "3 in all" in html
    assert "+33612345601" in html and "Theirs" not in html
    ann = reverse("contacts:contact_detail", args=[people["ann"].pk])
    assert f'<a href="{ann}">Ann</a>' in html
    assert reverse("contacts:list_detail", args=[people["vip"].pk]) in html
    assert html.count("Opted out</span>") == 1
    # A viewer may not add or tick.
    assert ADD not in html and 'name="contact"' not in html


def test_search_by_name_or_by_number_written_as_the_account_writes_it(as_viewer, people):
    assert shown_names(as_viewer.get(LIST, {"q": "an"})) == ["Ann"]
    assert shown_names(as_viewer.get(LIST, {"q": "06 12 34 56 02"})) == ["Bob"]
    assert shown_names(as_viewer.get(LIST, {"q": "+33 6 12 34 56 03"})) == ["Cat"]
    assert shown_names(as_viewer.get(LIST, {"q": "5602"})) == ["Bob"]  # part of a number
    html = page(as_viewer.get(LIST, {"q": "Zed"}))
    assert "No contact matches." in html and "0 matches" in html


def test_filter_by_list_or_segment(as_viewer, acme, people):
    response = as_viewer.get(LIST, {"list": people["vip"].pk})
    assert shown_names(response) == ["Ann"]
    assert "1 matches" not in page(response) and "1 match" in page(response)
    lyon = Segment.objects.create(
        account=acme,
        name="Lyon, reachable",
        rules=[{"field": "city", "op": "eq", "value": "Lyon"}, {"opted_out": False}],
    )
    assert shown_names(as_viewer.get(LIST, {"segment": lyon.pk})) == ["Ann"]
    assert shown_names(as_viewer.get(LIST, {"segment": lyon.pk, "q": "Bob"})) == []


def test_keyset_pages_of_fifty(as_viewer, acme):
    Contact.objects.bulk_create(
        Contact(account=acme, number=f"+336123400{n:02d}", name=f"P{n:02d}")
        for n in range(PAGE_SIZE + 3)
    )
    first = as_viewer.get(LIST)
    assert len(first.context["page"]["rows"]) == PAGE_SIZE
    assert f"{PAGE_SIZE + 3} in all" in page(first)
    older = first.context["page"]["older"]
    assert f"?after={older}" in page(first)
    second = as_viewer.get(LIST, {"after": older})
    assert shown_names(second) == ["P02", "P01", "P00"]
    assert second.context["page"]["older"] is None
    assert 'href="?"' in page(second) or "Newest</a>" in page(second)


@pytest.mark.parametrize(
    "query",
    [
        {"after": "abc"},
        {"after": "99999999999999999999999"},
        {"after": "²"},
        {"list": "999999"},
        {"segment": "x"},
        {"q": "a" * 101},
        {"q": "nul\x00"},
    ],
)
def test_bad_addresses_are_answered_never_with_a_500(as_viewer, people, query):
    response = as_viewer.get(LIST, query)
    assert response.status_code == 200
    if "after" not in query:
        assert 'aria-invalid="true"' in response.content.decode()


def test_tick_contacts_into_a_list(as_operator, acme, people):
    theirs = contact(AccountFactory(), "+33612345609")
    vip = people["vip"]
    url = f"{LIST}?q=Lyon"
    ticked = [people["ann"].pk, people["bob"].pk, theirs.pk, "junk"]
    response = as_operator.post(url, {"contact": ticked, "contact_list": vip.pk})
    assert response.status_code == 302 and response["Location"] == url
    assert set(vip.contacts.all()) == {people["ann"], people["bob"]}  # never another account's
    html = page(as_operator.get(url))
    assert "1 contact added to “VIP” (1 was in it already)." in html


def test_ticking_nothing_or_no_list_is_said_next_to_the_list_choice(as_operator, people):
    html = as_operator.post(LIST, {"contact_list": people["vip"].pk}).content.decode()
    assert 'id="id_contact_error"' in html and "Tick the contacts to add first." in html
    response = as_operator.post(LIST, {"contact": [people["ann"].pk]})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_contact_list_error"' in html and "Choose a list." in html
    assert f'value="{people["ann"].pk}" form="bulk-form" aria-label="Tick Ann" checked' in html
    other_list = ContactList.objects.create(account=AccountFactory(), name="Theirs")
    response = as_operator.post(
        LIST, {"contact": [people["ann"].pk], "contact_list": other_list.pk}
    )
    assert response.status_code == 400 and not other_list.contacts.exists()


# Adding and editing -----------------------------------------------------------------------


def test_add_a_contact_with_a_national_number_and_typed_fields(as_operator, acme, fields):
    form = page(as_operator.get(ADD))
    assert 'type="number"' in form and 'type="date"' in form and "06 12 34 56 78" in form
    response = as_operator.post(
        ADD,
        {
            "number": "06 12 34 56 78",
            "name": "Ann",
            "language": "FR",
            "v_city": "Lyon",
            "v_age": "34",
            "v_joined": "2025-01-10",
        },
    )
    ann = Contact.objects.get()
    assert response["Location"] == reverse("contacts:contact_detail", args=[ann.pk])
    assert (ann.number, ann.language) == ("+33612345678", "fr")
    assert ann.values == {"city": "Lyon", "age": 34, "joined": "2025-01-10"}
    html = page(as_operator.get(response["Location"]))
    assert "Contact Ann added." in html
    assert "<dt>City</dt><dd>Lyon</dd>" in html and "<dt>Age</dt><dd>34</dd>" in html


def test_form_errors_are_next_to_their_fields(as_operator, acme, fields):
    contact(acme, "+33612345678", "Ann")
    response = as_operator.post(
        ADD, {"number": "0612", "v_age": "old", "v_joined": "31/02/2026", "language": "x" * 9}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_number_error"' in html and "is not a valid number of France" in html
    assert 'id="id_v_age_error"' in html and "“old” is not a number." in html
    assert 'id="id_v_joined_error"' in html and "is not a date" in html
    assert 'id="id_language_error"' in html
    html = as_operator.post(ADD, {"number": "+33 6 12 34 56 78"}).content.decode()
    assert 'id="id_number_error"' in html
    assert "+33612345678 is already a contact of this account." in html
    assert Contact.objects.count() == 1


def test_edit_a_contact_and_clear_a_field(as_operator, people):
    ann = people["ann"]
    url = reverse("contacts:contact_edit", args=[ann.pk])
    form = page(as_operator.get(url))
    assert 'value="Lyon"' in form and 'value="34"' in form and 'value="2025-01-10"' in form
    response = as_operator.post(
        url,
        {"number": ann.number, "name": "Ann B", "v_city": "", "v_age": "35", "v_joined": ""},
    )
    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.name == "Ann B" and ann.values == {"age": 35}


def test_another_contacts_number_is_refused_and_the_title_stays(as_operator, people):
    ann = people["ann"]
    url = reverse("contacts:contact_edit", args=[ann.pk])
    response = as_operator.post(url, {"number": people["bob"].number, "name": "Ann"})
    html = response.content.decode()
    assert response.status_code == 400
    assert '<h1 id="form-title">Edit Ann</h1>' in html
    assert f"{people['bob'].number} is already a contact of this account." in html


# A contact's page -------------------------------------------------------------------------


def test_a_contacts_page_shows_fields_lists_opt_out_messages_and_replies(as_viewer, acme, people):
    ann, bob = people["ann"], people["bob"]
    delivered = MessageFactory(
        account=acme, recipient=ann.number, text="Hello Ann", status="delivered"
    )
    MessageFactory(account=acme, recipient=bob.number, text="Hello Bob")
    html = page(as_viewer.get(reverse("contacts:contact_detail", args=[ann.pk])))
    assert "<dt>City</dt><dd>Lyon</dd>" in html and "<dt>Joined</dt><dd>2025-01-10</dd>" in html
    assert "Not opted out" in html
    assert reverse("contacts:list_detail", args=[people["vip"].pk]) in html
    assert "Hello Ann" in html and "Hello Bob" not in html
    assert reverse("campaigns:message_detail", args=[delivered.pk]) in html
    assert 'class="badge badge-delivered"' in html
    assert "Yes please" in html
    assert reverse("campaigns:thread", args=[ann.number]) in html
    assert "Edit</a>" not in html  # a viewer reads

    html = page(as_viewer.get(reverse("contacts:contact_detail", args=[bob.pk])))
    assert "Opted out</strong> since" in html and "by reply keyword (“STOP”)" in html


def test_a_contact_without_history_has_no_inbox_link(as_viewer, people):
    html = page(as_viewer.get(reverse("contacts:contact_detail", args=[people["cat"].pk])))
    assert "No message sent to this number yet." in html and "No reply" in html
    assert "Conversation in the inbox" not in html


def test_messages_on_a_contacts_page_come_by_pages(as_viewer, acme, people):
    ann = people["ann"]
    Message.objects.bulk_create(
        Message(account=acme, recipient=ann.number, text=f"Note {n}") for n in range(23)
    )
    url = reverse("contacts:contact_detail", args=[ann.pk])
    first = as_viewer.get(url)
    sent = first.context["sent"]
    assert [m.text for m in sent["rows"]][:2] == ["Note 22", "Note 21"]
    assert len(sent["rows"]) == 20 and sent["older"]
    second = as_viewer.get(url, {"sent_after": sent["older"]})
    assert [m.text for m in second.context["sent"]["rows"]] == ["Note 2", "Note 1", "Note 0"]


def test_add_to_and_remove_from_a_list_on_a_contacts_page(as_operator, acme, people):
    cat = people["cat"]
    url = reverse("contacts:contact_detail", args=[cat.pk])
    add = reverse("contacts:contact_add_to_list", args=[cat.pk])
    assert 'name="contact_list"' in page(as_operator.get(url))
    assert as_operator.post(add, {"contact_list": people["vip"].pk})["Location"] == url
    assert cat in people["vip"].contacts.all()
    assert "Cat added to “VIP”." in page(as_operator.get(url))
    response = as_operator.post(add, {"contact_list": ""})
    assert response.status_code == 400 and "Choose a list." in response.content.decode()
    remove = reverse("contacts:contact_remove_from_list", args=[cat.pk, people["vip"].pk])
    assert as_operator.post(remove).status_code == 302
    assert cat not in people["vip"].contacts.all()


# Deleting ---------------------------------------------------------------------------------


def test_deleting_says_what_happens_then_masks_the_number(as_operator, acme, people):
    bob = people["bob"]  # opted out
    sent = MessageFactory(account=acme, recipient=bob.number, status="delivered")
    waiting = MessageFactory(account=acme, recipient=bob.number, status="scheduled")
    Reply.objects.create(account=acme, from_number=bob.number, text="STOP")
    url = reverse("contacts:contact_delete", args=[bob.pk])
    html = page(as_operator.get(url))
    assert "Its number is masked (+33•••••5602) on the 2 messages sent to it" in html
    assert "the 1 reply it sent" in html
    assert "1 message still waiting to be sent to it is canceled." in html
    assert "Its opt-out stays" in html
    response = as_operator.post(url)
    assert response["Location"] == LIST
    assert not Contact.objects.filter(pk=bob.pk).exists()
    sent.refresh_from_db()
    waiting.refresh_from_db()
    assert sent.recipient == "+33•••••5602" and waiting.status == "canceled"
    assert OptOut.objects.filter(account=acme, number=bob.number).exists()
    html = page(as_operator.get(LIST))
    assert "Contact Bob deleted: its number is masked on 2 messages and 1 reply." in html
    assert "1 waiting message canceled." in html


def test_deleting_while_a_message_is_being_sent_says_to_try_again(as_operator, acme, people):
    ann = people["ann"]
    MessageFactory(account=acme, recipient=ann.number, status="sending")
    response = as_operator.post(reverse("contacts:contact_delete", args=[ann.pk]))
    assert response.status_code == 409
    assert "being handed to a provider right now" in response.content.decode()
    assert Contact.objects.filter(pk=ann.pk).exists()


def test_the_nav_leads_to_contacts_and_its_sub_pages(as_viewer):
    html = page(as_viewer.get(reverse("campaigns:dashboard")))
    assert f'<a href="{LIST}">Contacts</a>' in html
    html = page(as_viewer.get(LIST))
    assert f'<a href="{LIST}" aria-current="page">Contacts</a>' in html
    for name in ("list_index", "segment_list", "field_list", "template_list"):
        assert reverse(f"contacts:{name}") in html


def test_a_contacts_page_shows_its_own_replies_however_old(as_viewer, acme, people):
    old = Reply.objects.create(account=acme, from_number=people["cat"].number, text="Old one")
    Reply.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=40))
    html = page(as_viewer.get(reverse("contacts:contact_detail", args=[people["cat"].pk])))
    assert "Old one" in html and "Yes please" not in html
