"""Reports (`/reports/`): the range picker, the figures by day, provider account, category,
campaign, country and operator, latency percentiles, spend, replies, opt-outs, charts and CSV."""

import csv
import io
import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Membership, Message
from campaigns.services import reports, stats

from ..factories import (
    AccountFactory,
    CampaignFactory,
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    OptOutFactory,
    ProviderAccountFactory,
    ReplyFactory,
)

pytestmark = pytest.mark.django_db

Status = Message.Status
REPORTS = reverse("campaigns:reports")
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def make(account, status, *, ago=timedelta(0), latency=None, **fields):
    """A message written `ago` before now; sent a second after; delivered `latency` later."""
    created = timezone.now() - ago
    sent = created + timedelta(seconds=1) if status != Status.QUEUED else None
    delivered = sent + latency if latency is not None else None
    return MessageFactory(
        account=account,
        status=status,
        created_at=created,
        sent_at=sent,
        delivered_at=delivered,
        **fields,
    )


# --- the range -------------------------------------------------------------------------------

NOW = datetime(2026, 3, 15, 22, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))  # 23:30 in Paris


def pick(account, **params):
    return reports.pick_range(params, account, now=NOW)


def test_presets_are_days_in_the_accounts_time_zone():
    account = AccountFactory(timezone="Europe/Paris")
    cases = {
        "today": (date(2026, 3, 15), date(2026, 3, 15)),
        "7d": (date(2026, 3, 9), date(2026, 3, 15)),
        "30d": (date(2026, 2, 14), date(2026, 3, 15)),
        "month": (date(2026, 3, 1), date(2026, 3, 15)),
    }
    for preset, days in cases.items():
        day_range, _form, notes = pick(account, range=preset)
        assert (day_range.first, day_range.last) == days, preset
        assert notes == []
    # In Tokyo it is already the 16th.
    tokyo = AccountFactory(timezone="Asia/Tokyo")
    day_range, _form, _notes = pick(tokyo, range="today")
    assert day_range.first == date(2026, 3, 16)
    assert day_range.since == datetime(2026, 3, 16, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))


def test_the_default_is_the_last_seven_days():
    day_range, _form, notes = pick(AccountFactory())
    assert (day_range.preset, day_range.first, day_range.last) == (
        "7d",
        date(2026, 3, 9),
        date(2026, 3, 15),
    )
    assert notes == []


def test_custom_days():
    day_range, _form, notes = pick(
        AccountFactory(), range="custom", date_from="2026-01-05", date_to="2026-01-09"
    )
    assert (day_range.first, day_range.last, notes) == (date(2026, 1, 5), date(2026, 1, 9), [])
    assert day_range.query() == {
        "range": "custom",
        "date_from": "2026-01-05",
        "date_to": "2026-01-09",
    }
    assert len(day_range.days) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"range": "custom", "date_from": "yesterday"},
        {"range": "custom", "date_from": "2026-02-30"},
        {"range": "custom", "date_from": "0001-01-01", "date_to": "0001-01-02"},
        {"range": "custom", "date_from": "9999-12-31"},
        {"range": "custom", "date_from": "2026-03-10", "date_to": "2026-03-01"},
        {"range": "forever"},
        {"date_to": "x" * 5000},
    ],
)
def test_bad_dates_fall_back_with_a_message(params):
    day_range, form, notes = pick(AccountFactory(), **params)
    assert day_range.preset == "7d"
    assert notes == ["The period could not be read: showing the last 7 days instead."]
    assert form.errors


def test_a_long_range_is_cut_with_a_message():
    day_range, _form, notes = pick(
        AccountFactory(), range="custom", date_from="2020-01-01", date_to="2026-03-15"
    )
    assert (day_range.last - day_range.first).days + 1 == reports.MAX_DAYS
    assert day_range.last == date(2026, 3, 15)
    assert notes == ["A report covers at most 366 days: showing 2025-03-15 to 2026-03-15."]


# --- figures ---------------------------------------------------------------------------------


@pytest.fixture
def traffic(account, provider_account):
    """Today: 4 delivered to Orange France (latency 10, 20, 30, 40 s) in category Reminders of
    campaign Spring, 1 undelivered to a Romanian Vodafone number, 1 still queued; 3 days ago: 2
    delivered through Backup to a German number (latency 60 s each); 40 days ago (outside 30
    days): 5 delivered. Another account's messages never count."""
    backup = ProviderAccountFactory(name="Backup")
    reminders = CategoryFactory(account=account, name="Reminders")
    spring = CampaignFactory(account=account, name="Spring")
    for i, seconds in enumerate((10, 20, 30, 40)):
        make(
            account,
            Status.DELIVERED,
            latency=timedelta(seconds=seconds),
            provider_account=provider_account,
            category=reminders,
            campaign=spring,
            recipient=f"+3360712345{i}",
            cost=Decimal("0.0450"),
        )
    make(account, Status.UNDELIVERED, provider_account=provider_account, recipient="+40722123456")
    make(account, Status.QUEUED, recipient="+33609123456")
    for _ in range(2):
        make(
            account,
            Status.DELIVERED,
            ago=timedelta(days=3),
            latency=timedelta(seconds=60),
            provider_account=backup,
            recipient="+4915112345678",
        )
    for _ in range(5):
        make(account, Status.DELIVERED, ago=timedelta(days=40), latency=timedelta(seconds=5))
    other = AccountFactory(name="Elsewhere")
    for _ in range(3):
        make(other, Status.DELIVERED, latency=timedelta(seconds=1), provider_account=backup)
    ReplyFactory(account=account, from_number="+33607123450", text="Thanks")
    ReplyFactory(account=other, text="Not ours")
    OptOutFactory(account=account, number="+33607123451")
    return {"backup": backup, "reminders": reminders, "spring": spring}


def by_label(rows):
    return {row.label: row for row in rows}


def test_the_report_counts_by_every_dimension(account, traffic):
    day_range, _form, _notes = reports.pick_range({"range": "7d"}, account)
    result = reports.report(account, day_range)
    total = result.total
    assert (total.sent, total.delivered, total.failed) == (7, 6, 1)
    assert total.percent == "85.7 %"
    assert total.spend == Decimal("0.18")
    assert (result.replies, result.opt_outs) == (1, 1)
    # Latency: 10, 20, 30, 40, 60, 60 s: median 35 s, 95th percentile 60 s.
    assert total.median == pytest.approx(35)
    assert total.p95 == pytest.approx(60)

    days = result.tables["day"]
    assert len(days) == 7 and days[-1].label == day_range.last.isoformat()
    assert (days[-1].sent, days[-1].delivered, days[-1].failed) == (5, 4, 1)
    assert days[-1].median == pytest.approx(25) and days[-1].p95 == pytest.approx(38.5)
    assert (days[-1].replies, days[-1].opt_outs) == (1, 1)
    assert days[-4].delivered == 2 and days[-4].median == pytest.approx(60)

    providers = by_label(result.tables["provider"])
    assert providers["Simulator"].sent == 5 and providers["Backup"].delivered == 2
    assert providers["No provider yet"].sent == 0  # the queued message
    assert by_label(result.tables["category"])["Reminders"].spend == Decimal("0.18")
    campaigns = by_label(result.tables["campaign"])
    assert campaigns["Spring"].delivered == 4
    assert campaigns["No campaign (single messages)"].sent == 3
    countries = by_label(result.tables["country"])
    assert countries["France (+33)"].delivered == 4
    assert countries["Romania (+40)"].failed == 1
    assert countries["Germany (+49)"].median == pytest.approx(60)
    ops = {(row.label, row.extra): row for row in result.tables["operator"]}
    assert ops[("Orange", "France (+33)")].delivered == 4
    assert ops[("Orange", "France (+33)")].p95 == pytest.approx(38.5)
    assert ops[("SFR", "France (+33)")].sent == 0
    assert ops[("Vodafone", "Romania (+40)")].failed == 1
    assert ops[("Unknown operator", "Germany (+49)")].delivered == 2


def test_thirty_days_takes_in_more_and_today_less(account, traffic):
    month = reports.report(account, reports.pick_range({"range": "30d"}, account)[0])
    today = reports.report(account, reports.pick_range({"range": "today"}, account)[0])
    custom = reports.pick_range(
        {"range": "custom", "date_from": (timezone.now() - timedelta(days=60)).date()}, account
    )[0]
    assert month.total.delivered == 6
    assert today.total.delivered == 4 and today.total.median == pytest.approx(25)
    assert reports.report(account, custom).total.delivered == 11


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one pass on PostgreSQL only")
def test_one_pass_gives_what_a_query_per_table_gives(account, traffic):
    """PostgreSQL reads the range once for every table and the total; each table alone, and
    the total as the days' sum, must give the very same rows."""
    make(account, Status.FAILED, ago=timedelta(days=2), recipient="+33142123456")
    make(account, Status.EXPIRED, ago=timedelta(days=20), cost=Decimal("0.0100"))
    make(account, Status.DELIVERED, ago=timedelta(days=20), latency=timedelta(seconds=3.25))
    make(account, Status.SENT, ago=timedelta(days=1), category=traffic["reminders"])
    for preset in ("today", "7d", "30d"):
        day_range = reports.pick_range({"range": preset}, account)[0]
        tables, total = reports.grouped_at_once(account, day_range, reports.DIMENSIONS, True)
        for by in reports.DIMENSIONS:
            assert tables[by] == reports.grouped(account, day_range, by), (preset, by)
        days = tables["day"].values()
        assert (total.sent, total.delivered, total.failed, total.spend) == (
            sum(row.sent for row in days),
            sum(row.delivered for row in days),
            sum(row.failed for row in days),
            sum((row.spend for row in days), Decimal(0)),
        )
        assert (total.median, total.p95) == reports.total_latency(account, day_range)
    empty = reports.pick_range({"range": "custom", "date_from": "2026-01-01"}, account)[0]
    empty = reports.DayRange(empty.first, empty.first, empty.tz, "custom")
    tables, total = reports.grouped_at_once(account, empty, ("day", "operator"), True)
    assert tables == {"day": {}, "operator": {}}
    assert (total.sent, total.median) == (0, None)


def test_days_are_cut_at_local_midnight_across_a_clock_change(account):
    """Europe/Paris moves to summer time at 02:00 on 29 March 2026: that day has 23 hours."""
    moments = {  # local time → the day it counts on
        datetime(2026, 3, 28, 23, 59, 59): date(2026, 3, 28),
        datetime(2026, 3, 29, 0, 0): date(2026, 3, 29),
        datetime(2026, 3, 29, 23, 59, 59): date(2026, 3, 29),
        datetime(2026, 3, 30, 0, 0): date(2026, 3, 30),
        datetime(2026, 3, 30, 0, 0, 1): date(2026, 3, 30),
    }
    for moment in moments:
        created = moment.replace(tzinfo=PARIS)
        MessageFactory(account=account, status=Status.SENT, created_at=created, sent_at=created)
    day_range = reports.DayRange(date(2026, 3, 28), date(2026, 3, 30), PARIS, "custom")
    days = {row.key[0]: row.sent for row in reports.report(account, day_range).tables["day"]}
    assert days == {date(2026, 3, 28): 1, date(2026, 3, 29): 2, date(2026, 3, 30): 2}
    summary = stats.summary(account, first_day=date(2026, 3, 28), last_day=date(2026, 3, 30))
    assert {day: tally.sent for day, tally in summary.days} == days


def test_percentiles_interpolate_as_percentile_cont():
    assert reports.percentile([], 0.5) is None
    assert reports.percentile([7.0], 0.95) == 7.0
    assert reports.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert reports.percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (1857, [0, 500, 1000, 1500, 2000]),
        (1116, [0, 250, 500, 750, 1000, 1250]),
        (372, [0, 100, 200, 300, 400]),
        (7, [0, 2, 4, 6, 8]),
        (3, [0, 1, 2, 3]),
        (0, [0, 1]),
        (1_000_000, [0, 200_000, 400_000, 600_000, 800_000, 1_000_000]),
    ],
)
def test_chart_ticks_are_round(top, ticks):
    assert reports.nice_ticks(top) == ticks


def test_the_chart_fills_its_plot(account, traffic):
    result = reports.report(account, reports.pick_range({"range": "30d"}, account)[0])
    chart = reports.day_chart([(row.key[0], row) for row in result.tables["day"]])
    assert len(chart.x_labels) <= 10
    tallest = max(chart.bars, key=lambda bar: bar.height)
    # The top tick is the first round number at or above the highest bar: it nearly fills.
    assert tallest.height >= 0.5 * (chart.plot_bottom - chart.top)
    assert max(bar.x + bar.width for bar in chart.bars) <= chart.plot_right + 0.01


# --- the page and CSV ------------------------------------------------------------------------


def test_login_is_required(client):
    response = client.get(REPORTS)
    assert response.status_code == 302


def test_every_role_reads_reports(client, account):
    for role in Membership.Role:
        client.force_login(MembershipFactory(account=account, role=role).user)
        assert client.get(REPORTS).status_code == 200


def test_the_page_shows_tables_a_chart_and_the_portability_caveat(
    operator_client, account, traffic
):
    page = operator_client.get(REPORTS, {"range": "30d"}).content.decode()
    assert "85.7 %" in page
    for name in ("Spring", "Reminders", "Backup", "France (+33)", "Romania (+40)", "Vodafone"):
        assert name in page
    assert "Elsewhere" not in page and "Not ours" not in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart bar-chart-wide"' in page
    assert '<script src="http' not in page
    assert "portability" in page
    assert "&shy;" not in page
    assert 'aria-current="true">Last 30 days<' in page
    for table in ("day", "provider", "category", "campaign", "country", "operator"):
        assert f"format=csv&amp;table={table}" in page


def test_numbers_have_one_format(operator_client, account, provider_account):
    created = timezone.now()
    Message.objects.bulk_create(
        Message(
            account=account,
            recipient="+33607123456",
            text="x",
            status=Status.DELIVERED,
            provider_account=provider_account,
            created_at=created,
            sent_at=created,
            delivered_at=created + timedelta(seconds=3),
        )
        for _ in range(1851)
    )
    for url in (REPORTS, reverse("campaigns:dashboard")):
        page = operator_client.get(url).content.decode()
        assert "1,851" in page, url
        assert ">1851<" not in page, url
        assert ">2,000<" in page, url  # the chart's top tick: 0, 500, 1,000, 1,500, 2,000


@pytest.mark.parametrize(
    "query",
    [
        "range=custom&date_from=2026-13-45",
        "range=custom&date_from=0000-01-01",
        "date_from=9999-12-31&date_to=9999-12-31",
        "range=%00",
        "range=custom&date_from=2026-03-10&date_to=2026-03-01",
    ],
)
def test_bad_dates_give_a_message_not_an_error(operator_client, account, query):
    for url in (REPORTS, reverse("campaigns:dashboard")):
        response = operator_client.get(f"{url}?{query}")
        assert response.status_code == 200
        page = response.content.decode()
        assert "The period could not be read: showing the last 7 days instead." in page


def test_a_long_range_is_capped_on_the_page(operator_client, account):
    page = operator_client.get(
        REPORTS, {"range": "custom", "date_from": "2001-01-01", "date_to": "2026-01-01"}
    ).content.decode()
    assert "A report covers at most 366 days: showing 2025-01-01 to 2026-01-01." in page


def rows_of(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_export_of_each_table(operator_client, account, traffic):
    day_range = reports.pick_range({"range": "7d"}, account)[0]
    response = operator_client.get(REPORTS, {"range": "7d", "format": "csv", "table": "operator"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="sms-report-operator-{day_range.first}-to-{day_range.last}.csv"'
    )
    rows = rows_of(response)
    assert rows[0][:3] == ["Operator", "Country", "Sent"]
    orange = next(row for row in rows if row[:2] == ["Orange", "France (+33)"])
    assert orange[2:9] == ["4", "4", "0", "100.0", "25.0", "38.5", "0.1800"]

    days = rows_of(operator_client.get(REPORTS, {"format": "csv", "table": "day"}))
    assert days[0][-2:] == ["Replies", "Opt-outs"]
    assert len(days) == 1 + 7
    assert days[-1][1:4] == ["5", "4", "1"]
    for table in reports.DIMENSIONS:
        response = operator_client.get(REPORTS, {"range": "30d", "format": "csv", "table": table})
        assert response.status_code == 200, table
        assert "Elsewhere" not in response.content.decode()


def test_csv_cells_cannot_start_a_formula(operator_client, account, provider_account):
    category = CategoryFactory(account=account, name='=HYPERLINK("http://evil")')
    make(account, Status.DELIVERED, category=category, latency=timedelta(seconds=1))
    rows = rows_of(operator_client.get(REPORTS, {"format": "csv", "table": "category"}))
    assert rows[1][0] == '\'=HYPERLINK("http://evil")'


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("format=csv&table=everything", "Unknown table"),
        ("format=csv", "Unknown table"),
        ("format=pdf", "Unknown format"),
        ("format=csv&table=day&range=custom&date_from=nope", "The period could not be read"),
    ],
)
def test_bad_export_requests_are_told_why(operator_client, account, query, text):
    response = operator_client.get(f"{REPORTS}?{query}")
    assert response.status_code == 400
    assert text in response.content.decode()
