"""In Debian's Chromium, driven by Playwright: a reply arrives through the simulator (numbers
ending in 9999 answer), a staff user finds the conversation in the inbox and answers inline; the
answer shows queued in the conversation without a page load. Then every page at phone width."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from campaigns.models import Membership, Message, Reply
from campaigns.services.compose import enqueue_message

from ..browser_support import (
    BROWSER_TEST,
    PHONE,
    assert_no_sideways_scroll,
    at_phone_width,
    log_in,
    screenshot,
    scroll_width,
)
from ..conftest import apply_webhooks, dispatch_batch, wait_for
from ..factories import MembershipFactory, OptOutFactory, ReplyFactory, SenderNameFactory

NUMBER = "+33612349999"

pytestmark = BROWSER_TEST


@pytest.fixture
def viewport():
    return {"width": 1200, "height": 800}


@pytest.fixture
def page(settings, live_server, simulator, provider_account, page):
    """The simulator answers a message to NUMBER through the hub's inbound webhook."""
    settings.PUBLIC_BASE_URL = live_server.url
    simulator.configure(
        hub_urls={"simulator": {"inbound": provider_account.webhook_url("inbound")}}
    )
    yield page
    simulator.configure(hub_urls={"simulator": None})


def a_reply_through_the_simulator(account) -> Reply:
    """Send to a number the simulator answers, then do a worker's part until the reply is in."""
    message = enqueue_message(account, recipient=NUMBER, text="Your parcel arrives today")
    dispatch_batch()

    def arrived():
        apply_webhooks()
        return Reply.objects.filter(account=account, message=message).first()

    return wait_for(arrived, timeout=20)


def test_answer_a_reply_inline(page, live_server, account, operator):
    reply = a_reply_through_the_simulator(account)
    log_in(page, live_server, operator, reverse("campaigns:inbox"))

    conversations = page.get_by_role("region", name="Conversations")
    conversations.get_by_role("link", name=NUMBER).click()
    thread = page.locator("#thread")
    thread.get_by_text(reply.text).wait_for()
    thread.locator(".bubble.ours .said").filter(has_text="Your parcel arrives today").wait_for()
    assert thread.get_by_role("link", name="“Your parcel arrives today”").count() == 1

    url_before = page.url
    page.get_by_label(f"Answer {NUMBER}").fill("Thank you! Leave it with the neighbour, please.")
    page.get_by_role("button", name="Send answer").click()
    page.get_by_role("status").filter(has_text=f"Answer to {NUMBER} queued.").wait_for()
    answer = thread.locator(".bubble.ours").filter(has_text="Leave it with the neighbour")
    answer.wait_for()
    assert answer.locator(".badge").inner_text() in {"Queued", "Sending", "Sent", "Delivered"}
    assert page.url == url_before  # answered in place: htmx swapped the conversation
    # The answer went through compose's enqueue_message, as the operator.
    sent = Message.objects.get(text__startswith="Thank you! Leave it")
    assert (sent.recipient, sent.created_by) == (NUMBER, operator)
    # Keyboard: the answer box has the focus again, ready for the next one.
    assert page.evaluate("document.activeElement.id") == "id_text"
    screenshot(page, "inbox-answered", full_page=True)

    # An empty answer is refused next to the field.
    page.get_by_role("button", name="Send answer").click()
    page.get_by_role("alert").filter(has_text="Write the answer to send.").wait_for()
    assert page.get_by_label(f"Answer {NUMBER}").get_attribute("aria-invalid") == "true"


def test_every_page_at_phone_width(page, live_server, account):
    admin = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    SenderNameFactory(account=account, name="Clinic")
    OptOutFactory(account=account, number="+33612340000")
    reply = a_reply_through_the_simulator(account)
    at_phone_width(page)
    log_in(page, live_server, admin, reverse("campaigns:dashboard"))
    page.get_by_role("heading", name="Recent replies").wait_for()
    pages = {
        name: reverse(f"campaigns:{name}")
        for name in ("dashboard", "message_list", "inbox", "optout_list", "sender_list")
    }
    pages["message_detail"] = reverse("campaigns:message_detail", args=[reply.message_id])
    for name, path in pages.items():
        page.goto(live_server.url + path)
        page.locator("main h1").first.wait_for()
        screenshot(page, f"phone-{name}", full_page=True)
        # Nothing wider than the phone: no sideways scrolling of the page itself.
        assert_no_sideways_scroll(page, name)
    page.goto(live_server.url + pages["sender_list"])
    # The keyboard reaches the skip link first, and the current page is marked in the nav.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert (
        page.locator('nav[aria-label="Main"] [aria-current="page"]').inner_text() == "Sender names"
    )


OTHER = "+33612340002"


def test_the_navigation_folds_behind_a_menu_button_on_a_phone(page, live_server, account):
    ReplyFactory(account=account, from_number=OTHER, text="Is it still on?")
    at_phone_width(page)
    log_in(page, live_server, MembershipFactory(account=account).user, reverse("campaigns:compose"))
    page.locator("main h1").first.wait_for()
    nav = page.locator('nav[aria-label="Main"]')
    menu = page.get_by_role("button", name="Menu")
    assert menu.is_visible() and not nav.is_visible()
    assert menu.get_attribute("aria-expanded") == "false"
    assert menu.get_attribute("aria-controls") == "topnav"
    assert "1" in menu.inner_text()  # the inbox's unread count shows on the folded menu
    height = page.locator("header.topbar").bounding_box()["height"]
    assert height < 70, f"the folded top bar is {height}px high"
    assert scroll_width(page) <= 390
    screenshot(page, "phone-nav-folded")

    # The keyboard opens it, walks into it, and Escape folds it back onto the button.
    menu.focus()
    page.keyboard.press("Enter")
    assert menu.get_attribute("aria-expanded") == "true" and nav.is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Dashboard"
    screenshot(page, "phone-nav-open")
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false" and not nav.is_visible()
    assert page.evaluate("document.activeElement.getAttribute('aria-controls')") == "topnav"

    # A tap opens it; the Inbox link carries the unread badge.
    menu.click()
    inbox = nav.get_by_role("link", name="Inbox")
    assert inbox.locator(".nav-badge").inner_text().startswith("1")
    inbox.click()
    page.get_by_role("heading", name="Inbox").wait_for()
    assert page.get_by_role("button", name="Menu").get_attribute("aria-expanded") == "false"

    # Wide screens show the navigation itself, no button.
    page.set_viewport_size({"width": 1280, "height": 800})
    assert nav.is_visible() and not page.get_by_role("button", name="Menu").is_visible()
    screenshot(page, "desktop-nav")


def test_without_scripting_the_navigation_stays_shown_on_a_phone(browser, live_server, account):
    user = MembershipFactory(account=account).user
    page = browser.new_page(viewport=PHONE, java_script_enabled=False)
    log_in(page, live_server, user, reverse("campaigns:inbox"))
    page.locator("main h1").first.wait_for()
    nav = page.locator('nav[aria-label="Main"]')
    assert nav.get_by_role("link", name="Contacts").is_visible()
    assert not page.get_by_role("button", name="Menu").is_visible()
    assert scroll_width(page) <= 390
    screenshot(page, "phone-nav-no-script")


def test_a_new_reply_is_unread_until_its_conversation_is_opened(
    page, live_server, account, operator
):
    reply = a_reply_through_the_simulator(account)  # through the webhook: unread
    assert reply.read_at is None
    # A later conversation: the inbox opens it beside the list, so NUMBER's stays unread.
    ReplyFactory(account=account, from_number=OTHER, text="Is it still on?")
    log_in(page, live_server, operator, reverse("campaigns:inbox"))
    heading = page.get_by_role("heading", level=1)
    heading.filter(has_text="1 unread").wait_for()
    nav_inbox = page.locator('nav[aria-label="Main"]').get_by_role("link", name="Inbox")
    assert nav_inbox.locator(".nav-badge").inner_text().startswith("1")
    conversations = page.get_by_role("region", name="Conversations")
    link = conversations.get_by_role("link", name=NUMBER)
    assert "unread" in link.get_attribute("class")
    assert link.evaluate("a => getComputedStyle(a.querySelector('.text')).fontWeight") == "600"
    assert link.locator(".badge-unread").inner_text() == "1 unread"
    screenshot(page, "inbox-unread", full_page=True)

    link.click()
    thread = page.locator("#thread")
    thread.get_by_text(reply.text).wait_for()
    assert thread.locator(".bubble.theirs.unread .badge-unread").inner_text() == "New"
    link = page.get_by_role("region", name="Conversations").get_by_role("link", name=NUMBER)
    assert "unread" not in (link.get_attribute("class") or "")
    assert "unread" not in page.get_by_role("heading", level=1).inner_text()
    assert nav_inbox.locator(".nav-badge").count() == 0
    reply.refresh_from_db()
    assert reply.read_at is not None
    screenshot(page, "inbox-read", full_page=True)


def test_search_the_inbox_by_a_national_number(page, live_server, account, operator):
    account.country = "FR"
    account.save(update_fields=["country"])
    ReplyFactory(account=account, from_number=NUMBER, text="Can we make it 11?")
    ReplyFactory(account=account, from_number=OTHER, text="Is it still on?")
    at_phone_width(page)
    log_in(page, live_server, operator, reverse("campaigns:inbox"))
    results = page.locator("#thread-results")
    results.get_by_role("link", name=OTHER).wait_for()
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Search by number or text").fill("06 12 34 99 99")
    page.get_by_role("status").filter(has_text=f"Conversation with {NUMBER}:").wait_for()
    assert results.get_by_role("link", name=NUMBER).is_visible()
    assert results.get_by_role("link", name=OTHER).count() == 0
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the list in place
    # The search is in the address, to share or reload.
    assert parse_qs(urlsplit(page.url).query) == {"q": ["06 12 34 99 99"]}
    assert scroll_width(page) <= 390
    screenshot(page.locator("#threads"), "phone-inbox-search")

    page.get_by_label("Search by number or text").fill("zebra")
    page.get_by_role("status").filter(has_text="No conversation matches “zebra”.").wait_for()
    screenshot(page.locator("#threads"), "phone-inbox-search-none")
    page.get_by_role("link", name="Show all conversations").click()
    results.get_by_role("link", name=OTHER).wait_for()

    # The same search works as a plain page load (no script needed, e.g. a shared link).
    page.goto(live_server.url + reverse("campaigns:inbox") + "?q=0612349999")
    assert page.locator("#thread-results").get_by_role("link", name=NUMBER).is_visible()
    assert page.get_by_label("Search by number or text").input_value() == "0612349999"


def test_the_answer_counter_moves_from_one_sms_to_two(page, live_server, account, operator):
    ReplyFactory(account=account, from_number=NUMBER, text="Can we make it 11?")
    at_phone_width(page)
    log_in(page, live_server, operator, reverse("campaigns:thread", args=[NUMBER]))
    answer = page.get_by_label(f"Answer {NUMBER}")
    counter = page.locator("#text-counter")
    counter.filter(has_text="0 characters").wait_for()
    answer.fill("a" * 160)
    counter.filter(has_text="160 characters").wait_for()
    assert "1 SMS" in counter.inner_text() and "GSM-7" in counter.inner_text()
    screenshot(page.locator(".reply-form"), "phone-answer-1-sms")
    answer.press("End")
    answer.press("a")
    counter.filter(has_text="161 characters").wait_for()
    assert "2 SMS" in counter.inner_text()
    screenshot(page.locator(".reply-form"), "phone-answer-2-sms")
    # A character outside GSM-7 makes it UCS-2: 70 a part.
    answer.fill("Merci ✓")
    counter.filter(has_text="UCS-2").wait_for()
    assert "1 SMS" in counter.inner_text()
    assert scroll_width(page) <= 390
