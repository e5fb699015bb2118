"""In Debian's Chromium, driven by Playwright: a campaign of 20 numbers sent through the simulator
by a real dispatch, held by the account's flood limit of 5 a minute. Its page says why it waits,
when the next batch goes and when it should finish, and follows the next batch without a reload;
once canceled, its bar shows what was sent and what was canceled. At 1280 and 390 px."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services import bulk, dispatch

from ..browser_support import BROWSER_TEST, DESKTOP, assert_no_sideways_scroll, log_in, screenshot
from ..conftest import dispatch_batch

pytestmark = BROWSER_TEST


@pytest.fixture
def page(settings, live_server, simulator, dispatch_by_hand, page):
    settings.PUBLIC_BASE_URL = live_server.url
    return page


def shoot(page, name: str) -> None:
    """A full-page screenshot at 1280 and at 390 px; nothing wider than the phone."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        screenshot(page, f"monitoring-{name}-{width}", full_page=True)
        assert_no_sideways_scroll(page, name)
    page.set_viewport_size(DESKTOP)


def legend(page, part: str) -> str:
    return page.locator(f'#campaign-live .mbar-legend li[data-part="{part}"] strong').inner_text()


def test_a_flood_limited_campaign_says_why_and_when_then_cancel(
    page, live_server, account, operator
):
    account.flood_limit_per_minute = 5
    account.timezone = "Europe/Paris"
    account.save()
    campaign = bulk.create_campaign(
        account,
        name="Flu jabs",
        text="Your flu jab is due: book at the front desk.",
        recipients=[(i + 1, f"+3361234{i:04d}") for i in range(20)],
    ).campaign
    assert dispatch_batch() == 5  # through the simulator, as a worker does
    assert dispatch_batch() == 0  # the account's 5 a minute are spent: the rest waits

    log_in(page, live_server, operator, reverse("campaigns:campaign_detail", args=[campaign.pk]))
    live = page.locator("#campaign-live")
    headline = live.locator(".monitor-headline")
    headline.wait_for()
    text = headline.inner_text()
    assert re.search(
        r"Held by the account's flood limit \(5 SMS a minute\): next batch at "
        r"(\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d)\.",  # another day: its date
        text,
    ), text
    assert "Estimated finish:" in text
    assert legend(page, "remaining") == "15"
    # The bar is described in words for screen readers.
    label = live.locator(".mbar").get_attribute("aria-label")
    assert "Not sent yet: 15" in label
    assert page.get_by_text("5 messages in the last minute").count() == 1
    shoot(page, "flood-limited")

    # The list says the same on the campaign's row.
    page.goto(live_server.url + reverse("campaigns:campaign_list"))
    row = page.get_by_role("row").filter(has_text="Flu jabs")
    assert "Held by the account's flood limit" in row.inner_text()
    shoot(page, "list")

    # The minute passes: the next batch goes, and the open page follows without a reload.
    page.goto(live_server.url + reverse("campaigns:campaign_detail", args=[campaign.pk]))
    headline.wait_for()
    Message.objects.filter(claimed_at__isnull=False).update(
        claimed_at=timezone.now() - timedelta(seconds=63)
    )
    dispatch.forget_state()
    assert dispatch_batch() == 5
    remaining = live.locator('.mbar-legend li[data-part="remaining"] strong')
    remaining.filter(has_text=re.compile(r"^10$")).wait_for(timeout=10_000)

    # Canceled: what was sent stays, the rest is canceled, in their own colours.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel campaign").click()
    page.get_by_text("Canceled: 10 messages were never sent.").wait_for()
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELED
    assert legend(page, "canceled") == "10"
    assert legend(page, "remaining") == "0"
    # Handed to the provider: delivered, awaiting a report, or undelivered by its report (the
    # simulator's numbers decide, and a running worker may have applied the reports already).
    sent = sum(int(legend(page, part)) for part in ("delivered", "awaiting", "failed"))
    assert sent == 10
    canceled_part = live.locator(".mbar .mbar-canceled")
    assert canceled_part.get_attribute("style") == "width: 50.00%"
    stripes = canceled_part.evaluate("e => getComputedStyle(e).backgroundImage")
    assert "gradient" in stripes  # grey stripes, not the delivered green
    facts = page.locator(".monitor-facts").inner_text()
    assert f"by {operator.get_username()}" in facts
    shoot(page, "canceled")


def test_statuses_change_on_the_messages_list_and_page_without_a_reload(
    page, live_server, account, operator
):
    from campaigns.services.compose import enqueue_message

    message = enqueue_message(account, recipient="+33612340077", text="Your parcel is here")
    log_in(page, live_server, operator, reverse("campaigns:message_list"))
    badge = page.locator(f"#status-{message.pk}")
    assert badge.inner_text() == "Queued"
    dispatch_batch()  # sent through the simulator, as a worker would
    # Sent, or already delivered when a running worker applied the simulator's report first.
    page.locator(
        f'#status-{message.pk}[data-status="sent"], #status-{message.pk}[data-status="delivered"]'
    ).first.wait_for(timeout=10_000)
    shoot(page, "messages")

    second = enqueue_message(account, recipient="+33612340078", text="Your parcel is late")
    page.goto(live_server.url + reverse("campaigns:message_detail", args=[second.pk]))
    assert page.locator("#message-status").inner_text() == "Queued"
    dispatch_batch()
    page.locator(
        '#message-status[data-status="sent"], #message-status[data-status="delivered"]'
    ).first.wait_for(timeout=10_000)
    shoot(page, "message")
