"""In Debian's Chromium, driven by Playwright: a staff user picks date ranges on the dashboard
and on the reports page and sees the figures change, downloads a table as CSV, and both pages
fit a phone's width."""

import csv
import io
import zoneinfo
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message

from ..browser_support import (
    BROWSER_TEST,
    DESKTOP,
    PHONE,
    assert_no_sideways_scroll,
    log_in,
    screenshot,
)
from ..factories import CampaignFactory, MessageFactory

Status = Message.Status

pytestmark = BROWSER_TEST


@pytest.fixture
def traffic(account, provider_account):
    """Today: 1,200 delivered to French numbers (Orange), 40 undelivered to Romanian ones
    (Vodafone); 12 days ago: 600 delivered through campaign Autumn. A message is sent 2 s after
    it is written and delivered 8 s later."""
    autumn = CampaignFactory(account=account, name="Autumn")
    now = timezone.now()
    # Today's messages stay today in the account's time zone in the minutes after its midnight.
    midnight = timezone.localtime(now, zoneinfo.ZoneInfo(account.timezone)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )

    def batch(count, status, ago, prefix, **fields):
        created = now - ago if ago > timedelta(days=1) else max(now - ago, midnight)
        Message.objects.bulk_create(
            Message(
                account=account,
                recipient=f"{prefix}{i:06d}",
                text="Hello",
                status=status,
                provider_account=provider_account,
                created_at=created,
                sent_at=created + timedelta(seconds=2),
                delivered_at=created + timedelta(seconds=10)
                if status == Status.DELIVERED
                else None,
                **fields,
            )
            for i in range(count)
        )

    batch(1200, Status.DELIVERED, timedelta(minutes=5), "+33607")
    batch(40, Status.UNDELIVERED, timedelta(minutes=5), "+40722")
    batch(600, Status.DELIVERED, timedelta(days=12), "+33608", campaign=autumn)
    MessageFactory(account=account, status=Status.QUEUED)


def test_pick_ranges_and_export(browser, live_server, account, operator, traffic):
    page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
    log_in(page, live_server, operator, reverse("campaigns:dashboard"))
    period = page.locator("#week-title")
    period.filter(has_text="Last 7 days").wait_for()
    tile = page.get_by_role("region", name="Last 7 days")
    assert tile.locator("dt:text-is('Sent') + dd").inner_text() == "1,240"

    page.get_by_role("link", name="Last 30 days").click()
    page.locator("#week-title").filter(has_text="Last 30 days").wait_for()
    tile = page.get_by_role("region", name="Last 30 days")
    assert tile.locator("dt:text-is('Sent') + dd").inner_text() == "1,840"
    assert "range=30d" in page.url
    # The chart's ticks are round and written in the one number format.
    ticks = page.locator("svg.bar-chart-wide .grid text").all_text_contents()
    assert ticks == ["0", "250", "500", "750", "1,000", "1,250"]
    chart = page.locator("svg.bar-chart-wide").bounding_box()
    card = page.locator("figure.report-chart").bounding_box()
    assert chart["width"] >= card["width"] - 1  # it fills its card
    screenshot(page, "dashboard-range-30d", full_page=True)

    # Custom days: only the day twelve days ago.
    zone = zoneinfo.ZoneInfo(account.timezone)
    day = (timezone.now() - timedelta(days=12)).astimezone(zone).date().isoformat()
    page.get_by_label("From", exact=True).fill(day)
    page.get_by_label("To", exact=True).fill(day)
    page.get_by_role("button", name="Show these dates").click()
    page.locator("#week-title").filter(has_text=day).wait_for()
    tile = page.get_by_role("region", name=day)
    assert tile.locator("dt:text-is('Delivered') + dd").inner_text() == "600"

    # Reports: the same picker, more tables.
    page.goto(live_server.url + reverse("campaigns:reports"))
    totals = page.get_by_role("region", name="In total")
    assert totals.locator("dt:text-is('Sent') + dd").inner_text() == "1,240"
    assert totals.locator("dt:text-is('Latency, median') + dd").inner_text() == "8.0 s"
    page.get_by_role("link", name="Last 30 days").click()
    page.get_by_role("link", name="Last 30 days").and_(page.locator("[aria-current]")).wait_for()
    totals = page.get_by_role("region", name="In total")
    assert totals.locator("dt:text-is('Sent') + dd").inner_text() == "1,840"
    operators = page.get_by_role("region", name="Messages by operator")
    assert operators.get_by_role("row", name="Orange").count() == 1
    assert "1,800" in operators.get_by_role("row", name="Orange").inner_text()
    assert "Vodafone" in operators.inner_text()
    campaigns = page.get_by_role("region", name="Messages by campaign")
    assert "Autumn" in campaigns.inner_text()
    # Headers are whole words on one line each.
    heights = page.locator("table.report-table thead tr:last-child th").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().height)"
    )
    assert max(heights) < 40
    screenshot(page, "reports-30d", full_page=True)

    with page.expect_download() as download_info:
        page.locator("#operator-title ~ p.csv-link a").click()
    download = download_info.value
    assert download.suggested_filename.startswith("sms-report-operator-")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["Operator", "Country", "Sent"]
    assert rows[1][:4] == ["Orange", "France (+33)", "1800", "1800"]
    page.close()


def test_reports_and_dashboard_at_phone_width(browser, live_server, account, operator, traffic):
    page = browser.new_page(viewport=PHONE)
    log_in(page, live_server, operator, reverse("campaigns:dashboard"))
    page.get_by_role("heading", name="Recent replies").wait_for()
    for name, path in (
        ("dashboard", reverse("campaigns:dashboard") + "?range=30d"),
        ("reports", reverse("campaigns:reports") + "?range=30d"),
    ):
        page.goto(live_server.url + path)
        page.locator("main h1").first.wait_for()
        screenshot(page, f"phone-{name}-30d", full_page=True)
        screenshot(page, f"phone-{name}-30d-top")
        screenshot(page.locator("figure.report-chart"), f"phone-{name}-chart")
        assert_no_sideways_scroll(page, name)
        # The phone's own chart, as wide as its card, four days named under it.
        assert page.locator("svg.bar-chart-wide").is_hidden()
        narrow = page.locator("svg.bar-chart-narrow")
        assert (
            narrow.bounding_box()["width"]
            >= page.locator("figure.report-chart").bounding_box()["width"] - 1
        )
        assert narrow.locator(".days text").count() <= 5
    page.get_by_role("link", name="Today").click()
    page.get_by_role("link", name="Today").and_(page.locator("[aria-current]")).wait_for()
    totals = page.get_by_role("region", name="In total")
    assert totals.locator("dt:text-is('Sent') + dd").inner_text() == "1,240"
    screenshot(page, "phone-reports-today", full_page=True)
    assert_no_sideways_scroll(page, "reports today")
    page.close()
