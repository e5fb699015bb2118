"""In Debian's Chromium, driven by Playwright, at phone width (390 px): an account admin walks
every page of the staff UI the navigation reaches, opening the folded Menu for each one, then
the pages one level down (a message, a campaign, a conversation, a contact and the contacts'
sub-pages...). No page is wider than the phone, the folded top bar stays compact, and each page
is saved as a screenshot in test-output/ (phone-walk-*.png)."""

import pytest
from django.urls import reverse

from campaigns.api import keys
from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template
from campaigns.models import Membership
from campaigns.services import bulk
from campaigns.services.compose import enqueue_message

from ..browser_support import (
    BROWSER_TEST,
    DESKTOP,
    PHONE,
    assert_no_sideways_scroll,
    fill_log_in,
    screenshot,
    scroll_width,
)
from ..factories import (
    AccountFactory,
    CategoryFactory,
    MembershipFactory,
    OptOutFactory,
    ReplyFactory,
    SenderNameFactory,
)

WIDTH = PHONE["width"]

pytestmark = BROWSER_TEST

# The main navigation's links, as the Menu shows them, and the screenshot of each.
NAV = {
    "Dashboard": "dashboard",
    "Compose": "compose",
    "Messages": "messages",
    "Campaigns": "campaigns",
    "Inbox": "inbox",
    "Contacts": "contacts",
    "Opt-outs": "opt-outs",
    "Categories": "categories",
    "Sender names": "sender-names",
    "API keys": "api-keys",
}


@pytest.fixture
def viewport():
    return PHONE


@pytest.fixture
def busy_account(db):
    """An account with something on every page: long names and numbers included."""
    account = AccountFactory(name="Acme Community Health Centre", country="FR")
    admin = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    # A second account: the account switcher shows in the top bar.
    MembershipFactory(account=AccountFactory(name="Other clinic"), user=admin)
    SenderNameFactory(account=account, name="Clinic")
    CategoryFactory(account=account, name="Appointment reminders")
    OptOutFactory(account=account, number="+33612340000")
    keys.issue(account, name="Booking system", created_by=admin)
    message = enqueue_message(
        account,
        recipient="+33612349999",
        text="Your appointment is on Monday at 10:00. Reply STOP to opt out.",
        created_by=admin,
    )
    ReplyFactory(
        account=account, from_number="+33612349999", message=message, text="Can we make it 11?"
    )
    campaign = bulk.create_campaign(
        account,
        name="Flu jabs, October — every patient over 65",
        text="Flu jabs are open: book at the front desk.",
        recipients=[(n, f"+3361234{n:04d}") for n in range(1, 6)],
        created_by=admin,
    ).campaign
    ContactField.objects.create(account=account, key="city", label="City")
    ann = Contact.objects.create(
        account=account,
        number="+33612345601",
        name="Ann Longname-Doublebarrelled",
        values={"city": "Lyon"},
    )
    newsletter = ContactList.objects.create(account=account, name="Newsletter")
    newsletter.contacts.add(ann)
    segment = Segment.objects.create(
        account=account, name="Lyon", rules=[{"field": "city", "op": "eq", "value": "Lyon"}]
    )
    Template.objects.create(
        account=account, name="Reminder", text="Hello {{ name }}, see you soon."
    )
    return {
        "admin": admin,
        "message": message,
        "campaign": campaign,
        "contact": ann,
        "list": newsletter,
        "segment": segment,
    }


def check(page, name: str) -> None:
    """The page fits the phone, its top bar is compact, and it is saved as a screenshot."""
    page.locator("main h1").first.wait_for()
    assert_no_sideways_scroll(page, name, WIDTH)
    height = page.locator("header.topbar").bounding_box()["height"]
    assert height < 70, f"the top bar of {name} is {height}px high"
    screenshot(page, f"phone-walk-{name}", full_page=True)


def test_every_staff_page_at_phone_width(page, live_server, busy_account):
    made = busy_account
    fill_log_in(page, live_server, made["admin"], reverse("campaigns:dashboard"))
    check(page, "log-in")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Recent replies").wait_for()

    nav = page.locator('nav[aria-label="Main"]')
    for label, name in NAV.items():
        menu = page.get_by_role("button", name="Menu")
        assert not nav.is_visible(), "the navigation is folded on a phone"
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
        nav.get_by_role("link", name=label, exact=label != "Inbox").click()
        page.wait_for_load_state()
        assert nav.locator("[aria-current=page]").inner_text().startswith(label)
        check(page, name)

    deeper = {
        "message": reverse("campaigns:message_detail", args=[made["message"].pk]),
        "campaign": reverse("campaigns:campaign_detail", args=[made["campaign"].pk]),
        "thread": reverse("campaigns:thread", args=["+33612349999"]),
        "inbox-search": reverse("campaigns:inbox") + "?q=06+12+34+99+99",
        "contact": reverse("contacts:contact_detail", args=[made["contact"].pk]),
        "contact-add": reverse("contacts:contact_add"),
        "contact-edit": reverse("contacts:contact_edit", args=[made["contact"].pk]),
        "contact-import": reverse("contacts:import"),
        "lists": reverse("contacts:list_index"),
        "list": reverse("contacts:list_detail", args=[made["list"].pk]),
        "segments": reverse("contacts:segment_list"),
        "segment": reverse("contacts:segment_detail", args=[made["segment"].pk]),
        "segment-add": reverse("contacts:segment_add"),
        "fields": reverse("contacts:field_list"),
        "templates": reverse("contacts:template_list"),
        "opt-out-import": reverse("campaigns:optout_import"),
    }
    for name, path in deeper.items():
        response = page.goto(live_server.url + path)
        assert response.ok, f"{name}: {response.status}"
        check(page, name)

    # The open menu holds who is logged in and the account switcher (two accounts).
    page.get_by_role("button", name="Menu").click()
    assert page.get_by_label("Account").is_visible()
    assert page.get_by_role("button", name="Log out").is_visible()
    assert scroll_width(page) <= WIDTH
    screenshot(page, "phone-walk-menu-open")

    # The same pages on a wide screen: the navigation in full, no Menu button.
    page.set_viewport_size(DESKTOP)
    for label, name in NAV.items():
        nav.get_by_role("link", name=label, exact=label != "Inbox").click()
        page.wait_for_load_state()
        page.locator("main h1").first.wait_for()
        assert not page.get_by_role("button", name="Menu").is_visible()
        assert scroll_width(page) <= 1280, name
        screenshot(page, f"desktop-walk-{name}", full_page=True)
