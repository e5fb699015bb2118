"""Figures for the dashboard: what an account sent today and over a range of days (the last
seven unless the page asks for another, `services.reports.DayRange`).

Only the range's days are read, through an index on creation time (`message_account_created_idx`,
or `message_created_idx` when one account has nearly all messages), so the cost follows the
range's traffic, not the table's size.
A message counts on the day it was created, in the account's time zone:

- *sent*: handed to a provider (it has a send time), whatever happened next;
- *delivered*: the provider reported it delivered;
- *failed*: refused, undelivered or expired;
- *delivery rate*: delivered of sent.

Besides, the delivery reports that matched no message (`unmatched_reports`), for the provider
accounts the account's routes go through.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, F, Func, IntegerField, Q, Value
from django.db.models.functions import TruncDate
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from campaigns import statuses
from campaigns.models import Account, Category, Message, PendingDeliveryReport, Reply
from providers.models import ProviderAccount

Status = Message.Status

DAYS = 7
UNMATCHED_COUNTED_UP_TO = 1000
FAILED = statuses.NOT_DELIVERED
QUEUE = statuses.ON_ITS_WAY


@dataclass
class Tally:
    sent: int = 0
    delivered: int = 0
    failed: int = 0

    def add(self, other: "Tally") -> None:
        self.sent += other.sent
        self.delivered += other.delivered
        self.failed += other.failed

    @property
    def rate(self) -> float | None:
        """Delivered of sent, 0..1; None when nothing was sent."""
        return self.delivered / self.sent if self.sent else None

    @property
    def percent(self) -> str:
        return percent_text(self.rate)


def percent_text(rate: float | None) -> str:
    """A rate (0..1) as text in the page's language: "97.5 %" ("97,5 %" in French), or "—"."""
    return "—" if rate is None else f"{formats.number_format(rate * 100, 1)} %"


@dataclass
class Period:
    """One period's figures: in total, by provider account and by category (names as keys)."""

    total: Tally = field(default_factory=Tally)
    by_provider: dict[str, Tally] = field(default_factory=dict)
    by_category: dict[str, Tally] = field(default_factory=dict)

    def add(self, provider: str, category: str, tally: Tally) -> None:
        self.total.add(tally)
        self.by_provider.setdefault(provider, Tally()).add(tally)
        self.by_category.setdefault(category, Tally()).add(tally)


@dataclass
class Summary:
    today: Period
    period: Period  # the range's days (the last seven by default)
    days: list[tuple[date, Tally]]  # oldest first, one per day of the range

    @property
    def week(self) -> Period:
        return self.period

    def breakdown(self, by: str) -> list[tuple[str, Tally, Tally]]:
        """(name, today, range) for each provider account (`by="provider"`) or category
        (`by="category"`) that had traffic in the range, the busiest first."""
        week, today = getattr(self.period, f"by_{by}"), getattr(self.today, f"by_{by}")
        return [
            (name, today.get(name, Tally()), tally)
            for name, tally in sorted(week.items(), key=lambda item: (-item[1].sent, item[0]))
        ]


def local_today(account: Account, now: datetime | None = None) -> tuple[date, datetime]:
    """Today's date in the account's time zone, and the aware moment it began."""
    tz = zoneinfo.ZoneInfo(account.timezone)
    today = (now or timezone.now()).astimezone(tz).date()
    return today, datetime.combine(today, time.min, tzinfo=tz)


def summary(
    account: Account,
    now: datetime | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
) -> Summary:
    """Sent, delivered and failed today and over days `first_day` … `last_day` (both included;
    by default the last seven days, today included). Today's figures are read in the same query
    when the range holds today, else in a second one."""
    tz = zoneinfo.ZoneInfo(account.timezone)
    today, _start = local_today(account, now)
    last_day = last_day or today
    first_day = first_day or last_day - timedelta(days=DAYS - 1)
    result = Summary(today=Period(), period=Period(), days=[])
    by_day: dict[date, Tally] = defaultdict(Tally)
    for day, provider, category, tally in _tallies(account, tz, first_day, last_day):
        result.period.add(provider, category, tally)
        if day == today:
            result.today.add(provider, category, tally)
        by_day[day].add(tally)
    if not first_day <= today <= last_day:
        for _day, provider, category, tally in _tallies(account, tz, today, today):
            result.today.add(provider, category, tally)
    count = (last_day - first_day).days + 1
    result.days = [
        (day, by_day[day]) for day in (first_day + timedelta(days=i) for i in range(count))
    ]
    return result


class _DayIndex(Func):
    """PostgreSQL's `width_bucket(time, starts)`: which of the days (from 1) a time falls in,
    by a binary search over the days' starts (8-byte values)."""

    function = "width_bucket"
    template = "%(function)s(%(expressions)s::timestamptz[])"
    output_field = IntegerField()


def day_of(field: str, tz, first_day: date, last_day: date):
    """An expression of the day (in `tz`) that the time `field` falls in, for times from
    `first_day` to `last_day`, and the function that reads its value back as a date.

    On PostgreSQL, the day's number among the range's (the starts of the days computed here):
    converting each row's time to local time costs several times more, and the range's
    messages are tens of thousands of rows. Elsewhere the date itself (`TruncDate`)."""
    if connection.vendor != "postgresql":
        return TruncDate(field, tzinfo=tz), lambda day: day
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    starts = [datetime.combine(day, time.min, tzinfo=tz) for day in days]
    return _DayIndex(F(field), Value(starts)), lambda index: days[index - 1]


def _tallies(account: Account, tz, first_day: date, last_day: date):
    """(day, provider name, category name, tally) of the days' messages, grouped in the
    database."""
    since = datetime.combine(first_day, time.min, tzinfo=tz)
    until = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz)
    day, read_day = day_of("created_at", tz, first_day, last_day)
    rows = (
        Message.objects.filter(account=account, created_at__gte=since, created_at__lt=until)
        .annotate(day=day)
        .values("day", "provider_account_id", "category_id", "status")
        .annotate(n=Count("id"), handed=Count("id", filter=Q(sent_at__isnull=False)))
        .order_by()
    )
    rows = list(rows)
    providers = _names(ProviderAccount.objects, {row["provider_account_id"] for row in rows})
    categories = _names(Category.objects, {row["category_id"] for row in rows})
    for row in rows:
        tally = Tally(
            sent=row["handed"],
            delivered=row["n"] if row["status"] == Status.DELIVERED else 0,
            failed=row["n"] if row["status"] in FAILED else 0,
        )
        if not (tally.sent or tally.delivered or tally.failed):
            continue
        provider = providers.get(row["provider_account_id"], _("No provider yet"))
        category = categories.get(row["category_id"], _("No category"))
        yield read_day(row["day"]), provider, category, tally


def _names(manager, ids: set[int | None]) -> dict[int, str]:
    return dict(manager.filter(id__in=ids - {None}).values_list("id", "name"))


def queue_depth(account: Account) -> dict[str, int]:
    """Messages waiting to go out, by status, and their total under "total"."""
    counts = dict(
        Message.objects.filter(account=account, status__in=QUEUE)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    depth = {status.value: counts.get(status.value, 0) for status in QUEUE}
    depth["total"] = sum(depth.values())
    return depth


def recent_replies(account: Account, limit: int = 5) -> list[Reply]:
    return list(
        Reply.objects.filter(account=account)
        .select_related("message")
        .order_by("-received_at")[:limit]
    )


@dataclass
class Unmatched:
    """Delivery reports of one provider account that matched no message (yet)."""

    provider_account: ProviderAccount
    count: int  # counted up to `UNMATCHED_COUNTED_UP_TO`, then "more"

    @property
    def shown(self) -> str:
        more = self.count > UNMATCHED_COUNTED_UP_TO
        return f"{UNMATCHED_COUNTED_UP_TO}+" if more else str(self.count)


def unmatched_reports(account: Account) -> list[Unmatched]:
    """Unmatched delivery reports of the provider accounts on the account's routes, by provider
    account (only those that have some). Each count reads at most `UNMATCHED_COUNTED_UP_TO` + 1
    entries of an index: the dashboard polls it, and a provider's reports may pile up until
    retention purges them."""
    found = []
    on_routes = (
        ProviderAccount.objects.filter(routeentry__account_id=account.pk)
        .distinct()
        .order_by("name")
    )
    for provider_account in on_routes:
        ids = PendingDeliveryReport.objects.filter(provider_account=provider_account).values_list(
            "pk", flat=True
        )
        count = len(ids[: UNMATCHED_COUNTED_UP_TO + 1])
        if count:
            found.append(Unmatched(provider_account, count))
    return found
