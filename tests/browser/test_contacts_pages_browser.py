"""In Debian's Chromium, driven by Playwright: an operator builds a segment from condition rows
and watches its count follow the rows without a page load (htmx), saves it, then ticks contacts
on the contacts page into a list. Then the contacts pages at desktop and phone width."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment
from campaigns.models import Membership, OptOut, Reply

from ..browser_support import (
    BROWSER_TEST,
    assert_no_sideways_scroll,
    at_phone_width,
    log_in,
    screenshot,
)
from ..factories import AccountFactory, MembershipFactory, MessageFactory

pytestmark = BROWSER_TEST


@pytest.fixture
def people(db):
    account = AccountFactory(name="Acme", country="FR")
    ContactField.objects.create(account=account, key="city", label="City")
    ContactField.objects.create(account=account, key="age", label="Age", type="number")
    made = {}
    for n, (name, city, age) in enumerate(
        [("Ann", "Lyon", 34), ("Bob", "Lyon", 19), ("Cat", "Paris", 52), ("Dan", "Lyon", 41)]
    ):
        made[name] = Contact.objects.create(
            account=account, number=f"+3361234560{n}", name=name, values={"city": city, "age": age}
        )
    OptOut.objects.create(
        account=account, number=made["Bob"].number, source="reply", keyword="STOP"
    )
    MessageFactory(account=account, recipient=made["Ann"].number, text="Hi Ann", status="delivered")
    Reply.objects.create(account=account, from_number=made["Ann"].number, text="Thanks!")
    ContactList.objects.create(account=account, name="Newsletter")
    operator = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    return account, operator, made


def test_build_a_segment_with_a_live_count_then_tick_contacts_into_a_list(
    page, live_server, people
):
    _, operator, made = people
    log_in(page, live_server, operator, reverse("contacts:segment_add"))
    count = page.locator("#segment-count")
    count.filter(has_text="4 contacts meet").wait_for()

    page.get_by_label("Name", exact=True).fill("Lyon, reachable")
    page.get_by_label("Condition 1").select_option("field:city")
    # Only the inputs this condition needs show.
    assert page.get_by_label("Value").is_visible() and not page.get_by_label("List").is_visible()
    url_before = page.url
    page.get_by_label("Value").fill("lyon")
    count.filter(has_text="3 contacts meet").wait_for()
    assert page.url == url_before  # counted in place

    page.get_by_role("button", name="Add a condition").click()
    page.get_by_label("Condition 2").select_option("not_opted_out")
    count.filter(has_text="2 contacts meet").wait_for()
    screenshot(page, "contacts-segment-editor", full_page=True)

    page.keyboard.press("Enter")  # in no text field: nothing happens
    page.locator("#id_name").press("Enter")  # Enter saves, never removes a condition
    page.get_by_role("heading", name="Lyon, reachable").wait_for()
    segment = Segment.objects.get()
    assert segment.rules == [{"field": "city", "op": "eq", "value": "lyon"}, {"opted_out": False}]
    assert page.get_by_text("City is lyon").is_visible()
    screenshot(page, "contacts-segment", full_page=True)

    # Tick the segment's contacts on the contacts page, into the list.
    page.goto(f"{live_server.url}{reverse('contacts:contact_list')}?segment={segment.pk}")
    page.get_by_label("Tick Ann").check()
    page.get_by_label("Tick Dan").check()
    page.get_by_label("Add the ticked contacts to").select_option(label="Newsletter")
    page.get_by_role("button", name="Add to list").click()
    page.get_by_text("2 contacts added to “Newsletter”.").wait_for()
    newsletter = ContactList.objects.get()
    assert set(newsletter.contacts.all()) == {made["Ann"], made["Dan"]}
    screenshot(page, "contacts-list", full_page=True)

    page.get_by_role("link", name="Ann").first.click()
    page.get_by_role("heading", name="Ann").wait_for()
    assert page.get_by_text("Hi Ann").is_visible() and page.get_by_text("Thanks!").is_visible()
    screenshot(page, "contacts-contact", full_page=True)


def test_contacts_pages_at_phone_width(page, live_server, people):
    account, operator, made = people
    segment = Segment.objects.create(account=account, name="Lyon", rules=[{"opted_out": False}])
    newsletter = ContactList.objects.get()
    newsletter.contacts.add(made["Ann"])
    at_phone_width(page)
    log_in(page, live_server, operator, reverse("contacts:contact_list"))
    page.locator("main h1").first.wait_for()
    paths = {
        "contacts": reverse("contacts:contact_list"),
        "contact": reverse("contacts:contact_detail", args=[made["Ann"].pk]),
        "contact-edit": reverse("contacts:contact_edit", args=[made["Ann"].pk]),
        "contact-delete": reverse("contacts:contact_delete", args=[made["Ann"].pk]),
        "lists": reverse("contacts:list_index"),
        "list": reverse("contacts:list_detail", args=[newsletter.pk]),
        "segments": reverse("contacts:segment_list"),
        "segment-edit": reverse("contacts:segment_edit", args=[segment.pk]),
        "fields": reverse("contacts:field_list"),
        "templates": reverse("contacts:template_list"),
    }
    for name, path in paths.items():
        page.goto(live_server.url + path)
        page.locator("main h1").first.wait_for()
        screenshot(page, f"phone-contacts-{name}", full_page=True)
        assert_no_sideways_scroll(page, name)
    nav = page.locator('nav[aria-label="Main"]')
    # At phone width the main navigation folds behind the Menu button: a compact top bar.
    assert not nav.is_visible()
    assert page.locator("header.topbar").bounding_box()["height"] < 70
    page.get_by_role("button", name="Menu").click()
    assert nav.get_by_role("link", name="Contacts").is_visible()
