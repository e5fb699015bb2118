"""In Debian's Chromium, driven by Playwright: an operator builds a segment from condition rows
and watches its count follow the rows without a page load (htmx), saves it, then ticks contacts
on the contacts page into a list. Then the contacts pages at desktop and phone width."""

import os

import pytest
from django.db import connections
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment
from campaigns.models import Membership, OptOut, Reply

from ..conftest import OUTPUT
from ..factories import AccountFactory, MembershipFactory, MessageFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
            browser.close()
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


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


def log_in(page, live_server, user, path):
    page.goto(live_server.url + path)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name="Log in").click()


def test_build_a_segment_with_a_live_count_then_tick_contacts_into_a_list(
    page, live_server, people
):
    OUTPUT.mkdir(exist_ok=True)
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
    page.screenshot(path=str(OUTPUT / "contacts-segment-editor.png"), full_page=True)

    page.keyboard.press("Enter")  # in no text field: nothing happens
    page.locator("#id_name").press("Enter")  # Enter saves, never removes a condition
    page.get_by_role("heading", name="Lyon, reachable").wait_for()
    segment = Segment.objects.get()
    assert segment.rules == [{"field": "city", "op": "eq", "value": "lyon"}, {"opted_out": False}]
    assert page.get_by_text("City is lyon").is_visible()
    page.screenshot(path=str(OUTPUT / "contacts-segment.png"), full_page=True)

    # Tick the segment's contacts on the contacts page, into the list.
    page.goto(f"{live_server.url}{reverse('contacts:contact_list')}?segment={segment.pk}")
    page.get_by_label("Tick Ann").check()
    page.get_by_label("Tick Dan").check()
    page.get_by_label("Add the ticked contacts to").select_option(label="Newsletter")
    page.get_by_role("button", name="Add to list").click()
    page.get_by_text("2 contacts added to “Newsletter”.").wait_for()
    newsletter = ContactList.objects.get()
    assert set(newsletter.contacts.all()) == {made["Ann"], made["Dan"]}
    page.screenshot(path=str(OUTPUT / "contacts-list.png"), full_page=True)

    page.get_by_role("link", name="Ann").first.click()
    page.get_by_role("heading", name="Ann").wait_for()
    assert page.get_by_text("Hi Ann").is_visible() and page.get_by_text("Thanks!").is_visible()
    page.screenshot(path=str(OUTPUT / "contacts-contact.png"), full_page=True)


def test_contacts_pages_at_phone_width(page, live_server, people):
    OUTPUT.mkdir(exist_ok=True)
    account, operator, made = people
    segment = Segment.objects.create(account=account, name="Lyon", rules=[{"opted_out": False}])
    newsletter = ContactList.objects.get()
    newsletter.contacts.add(made["Ann"])
    page.set_viewport_size({"width": 390, "height": 844})
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
        page.screenshot(path=str(OUTPUT / f"phone-contacts-{name}.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width}px wide"
    nav = page.locator('nav[aria-label="Main"]')
    assert nav.get_by_role("link", name="Contacts").is_visible()
    # The main navigation stays compact at phone width: three lines under the brand.
    assert nav.bounding_box()["height"] < 4 * 26
