"""In Debian's Chromium, driven by Playwright: the compose page of a user who chose French, then
Romanian, a French user's campaign page and a Romanian user's dashboard, at desktop and phone
width; the live counter answers in the same language and nothing overflows sideways."""

import os

import pytest
from django.db import connections
from django.urls import reverse

from campaigns.models import Membership, Message, UserPreference

from ..conftest import OUTPUT
from ..factories import (
    CampaignFactory,
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    SenderNameFactory,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]

# What each language shows: the heading, the live counter's words for "3 characters".
SHOWN = {
    "fr": {"title": "Nouveau SMS", "counter": "3 caractères", "button": "Aperçu"},
    "ro": {"title": "SMS nou", "counter": "3 caractere", "button": "Previzualizare"},
}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.mark.parametrize("language", ["fr", "ro"])
def test_compose_in_the_language_chosen(browser, live_server, account, language):
    SenderNameFactory(account=account, name="Dupont")
    CategoryFactory(account=account, name="Rappels", tag="rappels")
    MessageFactory(account=account, recipient="+33612345678", text="Votre pain est prêt.")
    user = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    UserPreference.objects.create(user=user, language=language)
    shown = SHOWN[language]
    OUTPUT.mkdir(exist_ok=True)

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page.goto(live_server.url + reverse("login") + "?next=" + reverse("campaigns:compose"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", "a-long-test-password")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**" + reverse("campaigns:compose"))

    heading = page.locator("#compose-title")
    assert heading.inner_text() == shown["title"]
    page.locator("#id_text").fill("Hé!")
    page.locator("#text-counter", has_text=shown["counter"]).wait_for()
    assert page.locator(".actions button.primary").inner_text() == shown["button"]
    page.screenshot(path=OUTPUT / f"compose-{language}-1280.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator("#compose-title").wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
        ".map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40))"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than the phone: {wide}"
    page.screenshot(path=OUTPUT / f"compose-{language}-390.png", full_page=True)
    page.close()


def log_in_as(browser, live_server, user, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page.goto(live_server.url + reverse("login") + "?next=" + url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", "a-long-test-password")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**" + url)
    return page


def at_both_widths(page, name: str, heading: str) -> None:
    """Screenshots at 1280 and 390 px; at 390 nothing is wider than the phone."""
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=OUTPUT / f"{name}-1280.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator(heading).wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
        ".map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40))"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than the phone: {wide}"
    page.screenshot(path=OUTPUT / f"{name}-390.png", full_page=True)


def member_speaking(account, language: str):
    user = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    UserPreference.objects.create(user=user, language=language)
    return user


def test_a_french_users_campaign_page(browser, live_server, account):
    campaign = CampaignFactory(account=account, name="Soldes d'hiver", text="Bonjour, -20 %.")
    for n, status in enumerate(["delivered", "delivered", "sent", "failed", "queued"]):
        MessageFactory(
            account=account,
            campaign=campaign,
            recipient=f"+3361234567{n}",
            text=campaign.text,
            status=status,
        )
    user = member_speaking(account, "fr")
    page = log_in_as(
        browser, live_server, user, reverse("campaigns:campaign_detail", args=[campaign.pk])
    )
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#campaign-title").inner_text() == "Soldes d'hiver"
    navigation = page.locator("nav.mainnav").inner_text()
    assert "Campagnes" in navigation and "Campaigns" not in navigation
    body = page.locator("main").inner_text()
    assert "Delivered" not in body and "Failed" not in body
    at_both_widths(page, "campaign-fr", "#campaign-title")
    page.close()


def test_a_romanian_users_dashboard(browser, live_server, account):
    CategoryFactory(account=account, name="Rappels", tag="rappels")
    for n, status in enumerate(["delivered", "delivered", "delivered", "failed", "sent"]):
        MessageFactory(account=account, recipient=f"+4072123456{n}", text="Salut", status=status)
    Message.objects.update(sent_at=Message.objects.first().created_at)
    user = member_speaking(account, "ro")
    page = log_in_as(browser, live_server, user, reverse("campaigns:dashboard"))
    assert page.locator("html").get_attribute("lang") == "ro"
    assert page.locator("main h1").inner_text().startswith("Tablou de bord")
    assert page.locator("#queue-title").inner_text() == "Coadă"
    assert page.locator("#replies-title").inner_text() == "Răspunsuri recente"
    body = page.locator("main").inner_text()
    for english in ("Today", "Delivered", "Failed", "Recent replies", "Last 7 days"):
        assert english not in body, english
    # Custom dates: the period picked is shown in Romanian too.
    page.locator("#id_date_from").fill("2026-11-01")
    page.locator("#id_date_to").fill("2026-11-30")
    page.locator(".range-custom button[type=submit]").click()
    page.wait_for_url("**range=custom**")
    picker = page.locator(".range-picker").inner_text()
    assert "Perioadă: 2026-11-01 \u2013 2026-11-30" in picker and "Noi 2026" in picker
    at_both_widths(page, "dashboard-ro", "main h1")
    page.close()
