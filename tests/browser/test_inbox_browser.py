"""In Debian's Chromium, driven by Playwright: a reply arrives through the simulator (numbers
ending in 9999 answer), a staff user finds the conversation in the inbox and answers inline; the
answer shows queued in the conversation without a page load. Then every page at phone width."""

import os

import pytest
from django.db import connections
from django.urls import reverse

from campaigns.models import Membership, Message, Reply
from campaigns.services.compose import enqueue_message

from ..conftest import OUTPUT, apply_webhooks, dispatch_batch, wait_for
from ..factories import MembershipFactory, OptOutFactory, SenderNameFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NUMBER = "+33612349999"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def page(settings, live_server, simulator, provider_account):
    from playwright.sync_api import sync_playwright

    settings.PUBLIC_BASE_URL = live_server.url
    simulator.configure(
        hub_urls={"simulator": {"inbound": provider_account.webhook_url("inbound")}}
    )
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            yield page
            browser.close()
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        simulator.configure(hub_urls={"simulator": None})


def log_in(page, live_server, user, path):
    page.goto(live_server.url + path)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name="Log in").click()


def a_reply_through_the_simulator(account) -> Reply:
    """Send to a number the simulator answers, then do a worker's part until the reply is in."""
    message = enqueue_message(account, recipient=NUMBER, text="Your parcel arrives today")
    dispatch_batch()

    def arrived():
        apply_webhooks()
        return Reply.objects.filter(account=account, message=message).first()

    return wait_for(arrived, timeout=20)


def test_answer_a_reply_inline(page, live_server, account, operator):
    OUTPUT.mkdir(exist_ok=True)
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
    page.screenshot(path=str(OUTPUT / "inbox-answered.png"), full_page=True)

    # An empty answer is refused next to the field.
    page.get_by_role("button", name="Send answer").click()
    page.get_by_role("alert").filter(has_text="Write the answer to send.").wait_for()
    assert page.get_by_label(f"Answer {NUMBER}").get_attribute("aria-invalid") == "true"


def test_every_page_at_phone_width(page, live_server, account):
    OUTPUT.mkdir(exist_ok=True)
    admin = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    SenderNameFactory(account=account, name="Clinic")
    OptOutFactory(account=account, number="+33612340000")
    reply = a_reply_through_the_simulator(account)
    page.set_viewport_size({"width": 390, "height": 844})
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
        page.screenshot(path=str(OUTPUT / f"phone-{name}.png"), full_page=True)
        # Nothing wider than the phone: no sideways scrolling of the page itself.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} is {width}px wide"
    page.goto(live_server.url + pages["sender_list"])
    # The keyboard reaches the skip link first, and the current page is marked in the nav.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert (
        page.locator('nav[aria-label="Main"] [aria-current="page"]').inner_text() == "Sender names"
    )
