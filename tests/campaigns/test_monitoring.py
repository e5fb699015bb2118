"""What a campaign page says the campaign is doing and why: real campaigns, real dispatch
through the simulator, the dispatcher's own limits."""

import zoneinfo
from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services import bulk, dispatch, monitoring
from providers import circuit

from ..conftest import dispatch_batch
from ..factories import CampaignFactory, MessageFactory

S = Message.Status
CS = Campaign.Status
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def numbers(n: int) -> list[tuple[int, str]]:
    return [(i + 1, f"+3361234{i:04d}") for i in range(n)]


def a_campaign(account, n=20, **kwargs) -> Campaign:
    return bulk.create_campaign(
        account, name="Flu jabs", text="Your flu jab is due.", recipients=numbers(n), **kwargs
    ).campaign


def parts(monitor) -> dict[str, int]:
    return {part.key: part.count for part in monitor.parts}


def paris_time(moment) -> str:
    """A moment as the monitor writes it: the time alone on today's date in Paris, the date
    and time on another day (from 23:30 Paris time, half an hour ahead is tomorrow)."""
    local = moment.astimezone(PARIS)
    if local.date() == timezone.now().astimezone(PARIS).date():
        return f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M}"


@pytest.fixture
def limited(account):
    account.flood_limit_per_minute = 5
    account.timezone = "Europe/Paris"
    account.price_per_segment = Decimal("0.05")
    account.save()
    return account


def test_a_flood_limited_campaign_says_so_with_the_next_batch_and_its_finish(limited):
    campaign = a_campaign(limited)
    assert dispatch_batch() == 5  # the account's 5 a minute
    assert dispatch_batch() == 0  # held: the rest waits
    campaign.refresh_from_db()
    monitor = monitoring.monitor(campaign)

    first_claim = campaign.messages.aggregate(first=Min("claimed_at"))["first"]
    next_batch = first_claim + dispatch.limits.MINUTE  # the dispatcher's own window
    assert monitor.state == "flood_limited"
    assert monitor.next_batch_at == next_batch
    assert monitor.headline == (
        "Held by the account's flood limit (5 SMS a minute): next batch at "
        f"{paris_time(next_batch)}."
    )
    assert monitor.rate_per_minute == 5
    # 15 left at 5 a minute: a batch at the next freeing, then two more a minute apart.
    assert monitor.eta == next_batch + timedelta(minutes=2)
    assert parts(monitor)["remaining"] == 15
    assert parts(monitor)["awaiting"] + parts(monitor)["delivered"] == 5
    assert monitor.started_at == first_claim
    assert monitor.cost_so_far == Decimal("0.25")  # 5 sent at 0.05
    assert monitor.cost_estimate == Decimal("1.00")  # and 15 to go
    assert monitor.poll == 1  # it just sent: the page looks every second

    # The minute has passed: the next batch goes, as the page said.
    Message.objects.filter(claimed_at__isnull=False).update(
        claimed_at=timezone.now() - timedelta(seconds=63)
    )
    dispatch.forget_state()
    assert dispatch_batch() == 5


def test_the_hour_limit_is_named_when_it_is_the_one_that_holds(account):
    account.flood_limit_per_minute, account.flood_limit_per_hour = 100, 3
    account.save()
    campaign = a_campaign(account, n=6)
    assert dispatch_batch() == 3
    monitor = monitoring.monitor(Campaign.objects.get(pk=campaign.pk))
    assert monitor.state == "flood_limited"
    assert "(3 SMS an hour)" in monitor.headline
    first = campaign.messages.aggregate(first=Min("claimed_at"))["first"]
    assert monitor.next_batch_at == first + dispatch.limits.HOUR


def test_a_canceled_campaign_counts_what_was_sent_and_what_was_canceled(
    limited, operator_client, operator
):
    campaign = a_campaign(limited)
    dispatch_batch()
    operator_client.post(reverse("campaigns:campaign_cancel", args=[campaign.pk]))
    campaign.refresh_from_db()
    monitor = monitoring.monitor(campaign)
    assert campaign.status == CS.CANCELED
    assert parts(monitor)["canceled"] == 15 and parts(monitor)["remaining"] == 0
    assert parts(monitor)["awaiting"] + parts(monitor)["delivered"] == 5
    assert monitor.headline == "Canceled: 15 messages were never sent."
    assert monitor.canceled_by == operator.get_username()
    assert timezone.now() - monitor.canceled_at < timedelta(seconds=30)
    assert monitor.eta is None
    # Its bar is not "all handled": 75 % of it is the canceled part.
    assert {p.key: p.percent for p in monitor.parts}["canceled"] == 75.0


def test_the_page_of_a_campaign_whose_messages_are_still_being_canceled_keeps_looking(
    limited, monkeypatch
):
    """A large campaign's cancel leaves its last messages to a worker: its page goes on
    refreshing every second until none waits, then stops."""
    from campaigns.services import campaign_control

    monkeypatch.setattr(campaign_control, "CANCEL_CHUNK", 2)
    monkeypatch.setattr(campaign_control, "CANCEL_IN_REQUEST", 2)
    campaign = a_campaign(limited, n=5)
    assert campaign_control.cancel(campaign) == 5
    monitor = monitoring.monitor(Campaign.objects.get(pk=campaign.pk))
    assert parts(monitor)["canceled"] == 2 and parts(monitor)["remaining"] == 3
    assert monitor.poll == 1
    campaign_control.finish_cancel(campaign.pk)
    monitor = monitoring.monitor(Campaign.objects.get(pk=campaign.pk))
    assert parts(monitor)["canceled"] == 5 and parts(monitor)["remaining"] == 0
    assert monitor.headline == "Canceled: 5 messages were never sent."
    assert monitor.poll is None


def test_paused_says_by_whom(limited, operator_client, operator):
    campaign = a_campaign(limited, n=3)
    operator_client.post(reverse("campaigns:campaign_pause", args=[campaign.pk]))
    monitor = monitoring.monitor(Campaign.objects.get(pk=campaign.pk))
    assert monitor.state == "paused"
    assert monitor.headline.startswith(f"Paused by {operator.get_username()} at ")
    assert monitor.headline.endswith(": 3 messages wait.")
    assert monitor.poll is None  # nothing moves until someone resumes it


def test_scheduled_says_when_in_the_accounts_time_zone(limited):
    send_at = timezone.now() + timedelta(days=2)
    campaign = a_campaign(limited, n=2, send_at=send_at)
    monitor = monitoring.monitor(campaign)
    assert campaign.status == CS.SCHEDULED
    assert monitor.headline == (
        f"Scheduled for {send_at.astimezone(PARIS):%Y-%m-%d %H:%M} (Europe/Paris)."
    )
    # 2 messages at 5 a minute: from the send time, within the minute.
    assert send_at < monitor.eta < send_at + timedelta(minutes=1)
    assert monitor.poll == 30


def test_quiet_hours_say_when_they_end(limited):
    now = timezone.now().astimezone(PARIS)
    limited.quiet_hours_start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    limited.quiet_hours_end = time((now + timedelta(hours=2)).hour, 0)
    limited.save()
    campaign = a_campaign(limited, n=2)
    assert dispatch_batch() == 0  # the dispatcher agrees: nothing goes
    monitor = monitoring.monitor(campaign)
    assert monitor.state == "quiet_hours"
    # The end is today's time alone, or tomorrow's date and time (quiet hours over midnight).
    end = now.replace(hour=limited.quiet_hours_end.hour, minute=0, second=0, microsecond=0)
    when = f"{end:%H:%M}" if end > now else f"{end + timedelta(days=1):%Y-%m-%d %H:%M}"
    assert monitor.headline.startswith(f"Waiting for quiet hours to end at {when}")


def test_a_sending_window_not_open_yet(limited):
    opens = timezone.now() + timedelta(minutes=30)
    campaign = CampaignFactory(account=limited, status=CS.RUNNING)
    MessageFactory(account=limited, campaign=campaign, status=S.QUEUED, window_start=opens)
    assert dispatch_batch() == 0
    monitor = monitoring.monitor(campaign)
    assert monitor.state == "window"
    assert f"open at {paris_time(opens)}." in monitor.headline


def test_a_provider_account_on_hold_or_failing_is_named(limited, provider_account):
    campaign = a_campaign(limited, n=2)
    provider_account.held_since = timezone.now()
    provider_account.hold_reason = "HTTP 401: bad API key"
    provider_account.save()
    monitor = monitoring.monitor(campaign)
    assert monitor.state == "provider_blocked"
    assert monitor.headline == (
        "Waiting: provider account Simulator is on hold (HTTP 401: bad API key)."
    )
    provider_account.held_since = None
    provider_account.save()
    circuit.record_batch(provider_account.pk, [False] * 50)
    try:
        monitor = monitoring.monitor(campaign)
        assert monitor.headline == (
            "Waiting: provider account Simulator is failing: its circuit is open."
        )
    finally:
        cache.delete_many(list(circuit._keys(provider_account.pk)))


def test_finished_and_awaiting_reports(account):
    campaign = CampaignFactory(account=account, status=CS.COMPLETED)
    at = timezone.now() - timedelta(minutes=5)
    MessageFactory(
        account=account, campaign=campaign, status=S.SENT, claimed_at=at, recipient="+33612340001"
    )
    MessageFactory(
        account=account,
        campaign=campaign,
        status=S.DELIVERED,
        claimed_at=at - timedelta(minutes=1),
        recipient="+33612340002",
    )
    monitor = monitoring.monitor(campaign)
    assert monitor.headline == "Finished: 1 message awaits its delivery report."
    assert monitor.finished_at == at
    assert parts(monitor) == {
        "delivered": 1,
        "awaiting": 1,
        "failed": 0,
        "canceled": 0,
        "remaining": 0,
    }


def test_every_status_is_in_exactly_one_part_of_the_bar():
    seen = [status for _, group in monitoring.PARTS for status in group]
    assert sorted(seen) == sorted(S.values)


def test_the_list_monitors_a_page_in_a_fixed_number_of_queries(
    limited, django_assert_max_num_queries
):
    campaigns = [a_campaign(limited, n=2) for _ in range(3)]
    with django_assert_max_num_queries(8):
        few = monitoring.monitor_many(campaigns, limited)
    more = campaigns + [a_campaign(limited, n=2) for _ in range(27)]
    with django_assert_max_num_queries(8):
        many = monitoring.monitor_many(more, limited)
    assert len(few) == 3 and len(many) == 30
