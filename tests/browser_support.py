"""What the browser tests share: Debian's Chromium driven by Playwright, logging in, viewports,
screenshots in test-output/ and the check that nothing overflows sideways.

The fixtures (`browser`, `page`, `viewport`) reach the tests through tests/browser/conftest.py
and tests/contacts/conftest.py. A test module that needs more around its page (settings, the
simulator's hub URLs...) overrides `page` with a small fixture that asks for the shared one; one
that wants another first size overrides `viewport`."""

import os
from contextlib import contextmanager

import pytest
from django.db import connections

from .conftest import OUTPUT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "a-long-test-password"  # every test user's (see tests/factories.py)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# A browser test's module says `pytestmark = BROWSER_TEST`.
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # Skipped only on a developer's machine without Chromium; in CI a missing browser fails.
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


@contextmanager
def chromium():
    """Debian's Chromium, launched by Playwright, closed on the way out."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
    # thread with a running loop unless told that this is deliberate.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
            # The ORM calls made while Playwright's loop runs got their own connection: close
            # it, or PostgreSQL refuses to drop the test database at the end of the run.
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def browser():
    """Debian's Chromium, for a test that opens its own pages."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def viewport():
    """The size the `page` fixture opens at; a module overrides it for another."""
    return DESKTOP


@pytest.fixture
def page(live_server, viewport, browser):
    """A page in Debian's Chromium, `viewport` wide, with the live server running."""
    return browser.new_page(viewport=viewport)


def fill_log_in(page, live_server, user, path) -> None:
    """Open `path`, which asks to log in first, and fill in `user`'s name and password."""
    page.goto(live_server.url + path)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)


def log_in(page, live_server, user, path) -> None:
    """Open `path` as `user`, through the log-in page."""
    fill_log_in(page, live_server, user, path)
    page.get_by_role("button", name="Log in").click()


def at_phone_width(page) -> None:
    page.set_viewport_size(PHONE)


def screenshot(target, name: str, **options) -> None:
    """Save a page's or an element's screenshot as test-output/<name>.png."""
    OUTPUT.mkdir(exist_ok=True)
    target.screenshot(path=str(OUTPUT / f"{name}.png"), **options)


def scroll_width(page) -> int:
    """How wide the page is, what scrolls sideways included."""
    return page.evaluate("document.documentElement.scrollWidth")


def no_horizontal_overflow(page) -> bool:
    """Nothing is wider than the page's visible width (a vertical scrollbar left out)."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def assert_no_sideways_scroll(page, name: str, width: int | None = None) -> None:
    """The page called `name` is no wider than `width`, the viewport's width unless given."""
    width = page.viewport_size["width"] if width is None else width
    scroll = scroll_width(page)
    assert scroll <= width, f"{name} is {scroll}px wide at {width}px"
