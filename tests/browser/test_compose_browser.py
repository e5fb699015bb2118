"""In Debian's Chromium, driven by Playwright: staff compose to one number, to three numbers
and to a CSV file, preview, confirm, and watch the statuses reach delivered without reloading."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Message

from ..browser_support import BROWSER_TEST, at_phone_width, log_in, screenshot

WIDE = {"width": 1200, "height": 800}

pytestmark = BROWSER_TEST


@pytest.fixture
def viewport():
    return WIDE


@pytest.fixture
def page(settings, live_server, celery_worker, tmp_path, page):
    """The page, with a real worker sending; no script error or failed request is allowed."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    yield page
    # Failed loads are listed with their URL (from the responses), except /favicon.ico, which
    # browsers ask for on their own.
    errors = [e for e in errors if not e.startswith("Failed to load resource")]
    assert errors == [], "the page logged errors or had failed requests"


def log_in_to_compose(page, live_server, user) -> None:
    """Open the compose page as `user`."""
    log_in(page, live_server, user, reverse("campaigns:compose"))
    page.get_by_role("heading", name="New SMS").wait_for()


def fact(page, name: str):
    """The value shown beside `name` in the preview."""
    return page.locator(".preview dl.facts dt", has_text=name).locator(
        "xpath=following-sibling::dd[1]"
    )


def test_compose_send_and_watch_it_delivered(page, live_server, operator):
    log_in_to_compose(page, live_server, operator)
    page.get_by_label("To", exact=True).fill("+33 6 12 34 56 78")
    page.get_by_label("Message", exact=True).fill("Bună ziua! Your parcel arrives today.")
    counter = page.locator("#text-counter")
    counter.filter(has_text="UCS-2").wait_for()
    # The character that forces UCS-2 is highlighted where it stands in the text.
    assert counter.locator(".highlighted mark").all_inner_texts() == ["ă"]
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.get_by_role("heading", name="Check before sending")
    preview.wait_for()
    assert preview.evaluate("element => element === document.activeElement")
    page.get_by_role("button", name="Confirm and send").click()
    page.get_by_text("Message to +33612345678 queued.").wait_for()

    message = Message.objects.get()
    badge = page.locator(f"#status-{message.pk}")
    url_before = page.url
    badge.filter(has_text="Delivered").wait_for(timeout=30_000)
    assert page.url == url_before  # no reload: htmx swapped the badge in place
    screenshot(page, "compose-delivered", full_page=True)

    page.get_by_role("link", name="+33612345678").click()
    page.get_by_role("heading", name="Timeline").wait_for()
    timeline = page.locator("ol.timeline").inner_text()
    for step in ("new → queued", "queued → sending", "sending → sent", "sent → delivered"):
        assert step in timeline
    screenshot(page, "message-detail", full_page=True)


def test_compose_to_three_numbers_and_watch_the_campaign_delivered(page, live_server, operator):
    from playwright.sync_api import expect

    log_in_to_compose(page, live_server, operator)
    page.get_by_label("To", exact=True).fill(
        "+33 6 12 34 56 78\n+33 6 12 34 56 79; +40 722 123 456\n+33 6 12 34 56 78"
    )
    page.get_by_label("Campaign name").fill("Parcel notices")
    page.get_by_label("Message", exact=True).fill("Your parcel arrives today.")
    page.get_by_role("button", name="Preview", exact=True).click()
    page.locator(".preview").wait_for()
    expect(fact(page, "Recipients")).to_contain_text("3")
    expect(fact(page, "Duplicates left out")).to_have_text("1")
    screenshot(page, "campaign-preview", full_page=True)
    page.get_by_role("button", name="Confirm: send to 3").click()

    page.get_by_role("heading", name="Parcel notices").wait_for()
    campaign = Campaign.objects.get()
    assert page.url.endswith(reverse("campaigns:campaign_detail", args=[campaign.pk]))
    page.get_by_text(
        "Campaign “Parcel notices”: 3 messages queued; left out: 1 duplicate."
    ).wait_for()
    url_before = page.url
    delivered = page.locator("#campaign-live [id^='status-'][data-status='delivered']")
    expect(delivered).to_have_count(3, timeout=30_000)
    expect(page.locator("#campaign-live .badge-campaign")).to_have_text("Completed")
    expect(page.locator("#campaign-live .progress-figures")).to_have_text("3 of 3 handled (100%)")
    assert page.url == url_before  # the live part refreshed itself, no reload
    screenshot(page, "campaign-delivered", full_page=True)
    assert set(campaign.messages.values_list("status", flat=True)) == {Message.Status.DELIVERED}

    at_phone_width(page)
    screenshot(page, "campaign-delivered-phone", full_page=True)

    page.set_viewport_size(WIDE)
    page.goto(live_server.url + reverse("campaigns:campaign_list"))
    row = page.get_by_role("row", name="Parcel notices")
    expect(row).to_contain_text("Completed")
    expect(row).to_contain_text("3 of 3 handled (100%)")
    screenshot(page, "campaign-list", full_page=True)


CSV = (
    "Name;Mobile;City\n"
    "Ana;+40 722 123 456;Cluj\n"
    "Bob;0612;Lyon\n"
    "Cem;+33 6 12 34 56 78;Paris\n"
    "Dan;;Izmir\n"
    "Eva;+33 6 12;Nice\n"
    "Fay;+40722123456;Iasi\n"
)


def test_upload_a_csv_and_see_bad_rows_with_their_line_numbers(
    page, live_server, operator, tmp_path
):
    from playwright.sync_api import expect

    path = tmp_path / "patients.csv"
    path.write_text(CSV)
    log_in_to_compose(page, live_server, operator)
    page.evaluate(
        "window.uploadEvents = 0;"
        "document.body.addEventListener('htmx:xhr:progress', () => window.uploadEvents++)"
    )
    page.get_by_label("Or a CSV file").set_input_files(str(path))
    page.get_by_label("Campaign name").fill("Patients")
    page.get_by_label("Message", exact=True).fill("Your appointment is tomorrow.")
    page.get_by_role("button", name="Preview", exact=True).click()

    page.locator(".preview").wait_for()
    assert page.evaluate("window.uploadEvents") > 0  # the upload reported its progress
    column = page.get_by_label("Column with the numbers")
    expect(column).to_have_value("1")
    assert "B: Mobile" in column.locator("option:checked").inner_text()
    rows = page.locator(".rejected-rows tbody tr")
    expect(rows).to_have_count(3)
    assert rows.all_inner_texts() == [
        "3\t0612\tNot a phone number. Start it with + and the country code.",
        "5\t(empty)\tNo number on this line.",
        "6\t+33 6 12\tNot a valid phone number for its country.",
    ]
    expect(fact(page, "Recipients")).to_contain_text("2")
    expect(fact(page, "Invalid, left out")).to_contain_text("3")
    screenshot(page, "compose-csv-preview", full_page=True)
    at_phone_width(page)
    screenshot(page, "compose-csv-preview-phone", full_page=True)

    page.get_by_role("button", name="Confirm: send to 2").click()
    page.get_by_role("heading", name="Patients").wait_for()
    page.get_by_text("left out: 1 duplicate, 3 invalid").wait_for()
    assert Campaign.objects.get().messages.count() == 2


def test_invalid_number_shows_an_error_next_to_the_field(page, live_server, operator):
    log_in_to_compose(page, live_server, operator)
    # The times to send show only for the choices that use them.
    assert not page.get_by_label("Not after").is_visible()
    page.get_by_label("Within a window").check()
    assert page.get_by_label("Not after").is_visible()
    assert page.get_by_label("Send at").is_visible()
    page.get_by_label("Now", exact=True).check()
    assert not page.get_by_label("Send at").is_visible()
    page.get_by_label("To", exact=True).fill("0612")
    page.get_by_label("Message", exact=True).fill("Hello")
    page.get_by_role("button", name="Preview", exact=True).click()
    error = page.locator("#id_recipients_error")
    error.filter(has_text="No number to send to (1 invalid)").wait_for()
    summary = page.locator(".error-summary")
    assert summary.evaluate("element => element === document.activeElement")
    assert page.get_by_label("To", exact=True).get_attribute("aria-invalid") == "true"
    assert "Not a phone number" in page.locator(".rejected-rows").inner_text()
    at_phone_width(page)
    screenshot(page, "compose-error-phone", full_page=True)
    assert not Message.objects.exists()
