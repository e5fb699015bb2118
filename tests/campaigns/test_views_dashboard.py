"""The dashboard (`/`): today's and the week's figures, the queue, recent replies, the chart."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Membership, Message
from campaigns.services import stats

from ..factories import (
    AccountFactory,
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    ProviderAccountFactory,
    ReplyFactory,
)

pytestmark = pytest.mark.django_db

Status = Message.Status
DASHBOARD = reverse("campaigns:dashboard")


def make(account, status, *, ago=timedelta(0), sent=True, **fields):
    created = timezone.now() - ago
    return MessageFactory(
        account=account,
        status=status,
        created_at=created,
        sent_at=created if sent else None,
        **fields,
    )


@pytest.fixture
def traffic(account, provider_account):
    """Today: 3 delivered, 1 undelivered, 1 failed before sending, 1 sent; yesterday: 2
    delivered through a second provider; 8 days ago: 5 delivered (outside the week)."""
    second = ProviderAccountFactory(name="Backup")
    reminders = CategoryFactory(account=account, name="Reminders")
    for _ in range(3):
        make(account, Status.DELIVERED, provider_account=provider_account, category=reminders)
    make(account, Status.UNDELIVERED, provider_account=provider_account, category=reminders)
    make(account, Status.FAILED, provider_account=provider_account, sent=False)
    make(account, Status.SENT, provider_account=provider_account)
    for _ in range(2):
        make(account, Status.DELIVERED, ago=timedelta(days=1), provider_account=second)
    for _ in range(5):
        make(account, Status.DELIVERED, ago=timedelta(days=8), provider_account=provider_account)
    # Another account's traffic never counts.
    other = AccountFactory(name="Elsewhere")
    for _ in range(4):
        make(other, Status.DELIVERED, provider_account=provider_account)
    return {"second": second, "reminders": reminders}


def test_login_is_required(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_summary_counts_today_and_the_week_by_provider_and_category(account, traffic):
    summary = stats.summary(account)
    today, week = summary.today.total, summary.week.total
    assert (today.sent, today.delivered, today.failed) == (5, 3, 2)
    assert (week.sent, week.delivered, week.failed) == (7, 5, 2)
    assert week.percent == "71.4 %"  # 5 delivered of 7 handed to a provider
    assert summary.week.by_provider["Backup"].delivered == 2
    assert "Backup" not in summary.today.by_provider
    assert summary.week.by_category["Reminders"].sent == 4
    assert summary.week.by_category["No category"].failed == 1
    assert len(summary.days) == 7
    assert summary.days[-1][1].sent == 5
    assert summary.days[-2][1].delivered == 2
    assert sum(tally.delivered for _, tally in summary.days) == 5


def test_queue_depth_counts_what_waits(account):
    for status in (Status.QUEUED, Status.QUEUED, Status.RETRYING, Status.SENDING, Status.SCHEDULED):
        MessageFactory(account=account, status=status)
    MessageFactory(account=account, status=Status.DELIVERED)
    MessageFactory(status=Status.QUEUED)  # another account
    depth = stats.queue_depth(account)
    assert depth == {"queued": 2, "retrying": 1, "sending": 1, "scheduled": 1, "total": 5}


def test_the_page_shows_figures_tables_and_a_server_side_chart(operator_client, account, traffic):
    page = operator_client.get(DASHBOARD).content.decode()
    assert "Today" in page and "Last 7 days" in page
    assert "71.4 %" in page
    assert "Backup" in page and "Reminders" in page and "Simulator" in page
    # The chart is an inline SVG drawn on the server: no script, nothing fetched from elsewhere.
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert '<script src="http' not in page
    assert "kozea.github.io" not in page
    assert "<caption" in page  # the chart's figures as a table, for screen readers
    assert 'aria-current="page"' in page


def test_live_parts_poll_every_ten_seconds_and_come_alone(operator_client, account, traffic):
    page = operator_client.get(DASHBOARD).content.decode()
    assert page.count('hx-trigger="every 10s"') == 2
    for part in ("figures", "replies"):
        fragment = operator_client.get(
            DASHBOARD, {"part": part}, headers={"HX-Request": "true"}
        ).content.decode()
        assert "<html" not in fragment
        assert f'id="{part}"' in fragment
        assert 'hx-trigger="every 10s"' in fragment
    figures = operator_client.get(
        DASHBOARD, {"part": "figures"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "71.4 %" in figures


def test_recent_replies_are_this_accounts_own(operator_client, account):
    ReplyFactory(account=account, from_number="+33612345001", text="Running late, sorry")
    ReplyFactory(from_number="+33612345002", text="Someone else's reply")
    page = operator_client.get(DASHBOARD).content.decode()
    assert "Running late, sorry" in page
    assert reverse("campaigns:thread", args=["+33612345001"]) in page
    assert "Someone else&#x27;s reply" not in page and "Someone else's reply" not in page


def test_every_role_reads_the_dashboard(client, account):
    for role in Membership.Role:
        client.force_login(MembershipFactory(account=account, role=role).user)
        assert client.get(DASHBOARD).status_code == 200


def test_a_user_in_no_account_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("lonely", password="x" * 12))
    response = client.get(DASHBOARD)
    assert response.status_code == 403
    assert "not a member of any account" in response.content.decode()


def test_a_picked_range_changes_the_figures(operator_client, account, traffic):
    week = operator_client.get(DASHBOARD).content.decode()
    month = operator_client.get(DASHBOARD, {"range": "30d"}).content.decode()
    today = operator_client.get(DASHBOARD, {"range": "today"}).content.decode()
    assert "Last 7 days" in week and "71.4 %" in week
    assert "Last 30 days" in month and "83.3 %" in month  # 10 delivered of 12
    assert "Messages per day, last 30 days" in month
    assert month.count('<th scope="row"><time datetime=') == 30
    assert "60.0 %" in today  # 3 of 5
    # The live figures keep polling for the range picked.
    assert "?range=30d&amp;part=figures" in month
    figures = operator_client.get(
        DASHBOARD, {"range": "30d", "part": "figures"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "83.3 %" in figures


def test_a_custom_range_on_the_dashboard(operator_client, account, traffic):
    day = (timezone.now() - timedelta(days=8)).astimezone(stats.zoneinfo.ZoneInfo("Europe/Paris"))
    page = operator_client.get(
        DASHBOARD, {"range": "custom", "date_from": day.date(), "date_to": day.date()}
    ).content.decode()
    assert "100.0 %" in page  # the 5 delivered eight days ago, alone
    summary = stats.summary(account, first_day=day.date(), last_day=day.date())
    assert summary.period.total.delivered == 5
    assert summary.today.total.sent == 5  # today is still today's


def test_dashboard_headers_never_hyphenate(operator_client, account, traffic):
    page = operator_client.get(DASHBOARD).content.decode()
    assert "&shy;" not in page and "\u00ad" not in page
    assert '<th scope="col">Delivered</th>' in page


def test_bad_range_on_the_dashboard_is_a_message(operator_client, account, traffic):
    response = operator_client.get(DASHBOARD, {"range": "custom", "date_from": "2026-02-31"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The period could not be read: showing the last 7 days instead." in page
    assert "71.4 %" in page
