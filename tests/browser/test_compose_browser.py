"""In Debian's Chromium, driven by Playwright: a staff user sends one SMS and watches its status
change from queued to delivered without reloading the page."""

import os

import pytest
from django.db import connections
from django.urls import reverse

from campaigns.models import Message

from ..conftest import OUTPUT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # Skipped only on a developer's machine without Chromium; in CI a missing browser fails.
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def page(settings, live_server, celery_worker):
    from playwright.sync_api import sync_playwright

    settings.PUBLIC_BASE_URL = live_server.url
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
    # thread with a running loop unless told that this is deliberate.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        yield page
        browser.close()
        # The ORM calls made while Playwright's loop runs got their own connection: close it, or
        # PostgreSQL refuses to drop the test database at the end of the run.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_compose_send_and_watch_it_delivered(page, live_server, operator):
    OUTPUT.mkdir(exist_ok=True)
    page.goto(live_server.url + reverse("campaigns:compose"))
    page.get_by_label("Username").fill(operator.username)
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name="Log in").click()

    page.get_by_label("To", exact=True).fill("+33 6 12 34 56 78")
    page.get_by_label("Message", exact=True).fill("Bună ziua! Your parcel arrives today.")
    page.locator("#text-counter").filter(has_text="UCS-2").wait_for()
    page.get_by_role("button", name="Send").click()
    page.get_by_text("Message to +33612345678 queued.").wait_for()

    message = Message.objects.get()
    badge = page.locator(f"#status-{message.pk}")
    url_before = page.url
    badge.filter(has_text="Delivered").wait_for(timeout=30_000)
    assert page.url == url_before  # no reload: htmx swapped the badge in place
    page.screenshot(path=str(OUTPUT / "compose-delivered.png"), full_page=True)

    page.get_by_role("link", name="+33612345678").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    timeline = page.locator("ol.timeline").inner_text()
    for step in ("new → queued", "queued → sending", "sending → sent", "sent → delivered"):
        assert step in timeline
    page.screenshot(path=str(OUTPUT / "message-detail.png"), full_page=True)


def test_invalid_number_shows_an_error_next_to_the_field(page, live_server, operator):
    page.goto(live_server.url + reverse("campaigns:compose"))
    page.get_by_label("Username").fill(operator.username)
    page.get_by_label("Password").fill("a-long-test-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("To", exact=True).fill("0612")
    page.get_by_label("Message", exact=True).fill("Hello")
    page.get_by_role("button", name="Send").click()
    error = page.get_by_role("alert").filter(has_text="is not a phone number")
    error.wait_for()
    assert page.get_by_label("To", exact=True).get_attribute("aria-invalid") == "true"
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(OUTPUT / "compose-error-phone.png"), full_page=True)
    assert not Message.objects.exists()
