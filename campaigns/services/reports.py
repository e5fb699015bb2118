"""Reports: what an account sent over a range of days, by day, provider account, category,
campaign, destination country and operator, with delivery latency, spend, replies and opt-outs.

Everything is counted in the database over the account's messages created in the range (read
through an index on creation time), days cut in the account's time zone: on PostgreSQL in one
pass for all the tables and the total (`grouped_at_once`, one aggregate over GROUPING SETS),
elsewhere one GROUP BY per table (`grouped`).
A message counts on the day it was written; *sent*, *delivered*, *failed* and the rate are
those of `stats` (the dashboard's). *Latency* is from the provider taking the message (sent) to
the delivery report (delivered): its median and 95th percentile, with PostgreSQL's
`percentile_cont`; on other databases the same interpolation in Python over the latencies.
"""

import csv
import io
import math
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, Sum
from django.db.models.functions import TruncDate
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import operators, statuses, timerange
from campaigns.models import Account, Campaign, Category, Message, OptOut, Reply
from providers.models import ProviderAccount

from .stats import day_of, local_today, percent_text

Status = Message.Status
MAX_DAYS = 366
CAMPAIGNS_SHOWN = 100  # the busiest campaigns of the range; the CSV has them all

# --- the range -------------------------------------------------------------------------------

PRESETS = {
    "today": gettext_lazy("Today"),
    "7d": gettext_lazy("Last 7 days"),
    "30d": gettext_lazy("Last 30 days"),
    "month": gettext_lazy("This month"),
    "custom": gettext_lazy("Custom dates"),
}
DEFAULT_PRESET = "7d"


@dataclass(frozen=True)
class DayRange:
    """Days `first` … `last` (both included) in `tz`, chosen as `preset`."""

    first: date
    last: date
    tz: zoneinfo.ZoneInfo
    preset: str

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=self.tz)

    @property
    def until(self) -> datetime:
        """The moment after the last day (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=self.tz)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def label(self) -> str:
        if self.preset != "custom":
            return str(PRESETS[self.preset])
        if self.first == self.last:
            return self.first.isoformat()
        return _("%(first)s to %(last)s") % {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
        }

    def query(self) -> dict[str, str]:
        """The query-string parameters that choose this range again."""
        if self.preset == "custom":
            return {
                "range": "custom",
                "date_from": self.first.isoformat(),
                "date_to": self.last.isoformat(),
            }
        return {"range": self.preset}


def _a_day_in_range(value: date) -> None:
    problem = timerange.day_problem(value)
    if problem:
        raise forms.ValidationError(problem, code="out_of_range")


class RangeForm(forms.Form):
    """The range picker: a preset, or custom days (in the account's time zone):
    `?range=30d`, `?range=custom&date_from=2026-11-01&date_to=2026-11-30`."""

    range = forms.ChoiceField(
        label=gettext_lazy("Period"), required=False, choices=list(PRESETS.items())
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        validators=[_a_day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        validators=[_a_day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, data, *, account: Account, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.fields["date_to"].help_text = _("Days in %(tz)s, both included.") % {
            "tz": account.timezone
        }

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("Must be on or after the “From” day."))
        return cleaned


def pick_range(params, account: Account, now: datetime | None = None):
    """The range the query string asks for, the form (to show it again) and the messages to
    show: a bad date falls back to the default range, a range too long is cut to `MAX_DAYS`."""
    tz = zoneinfo.ZoneInfo(account.timezone)
    today, _start = local_today(account, now)
    form = RangeForm(params, account=account)
    notes: list[str] = []
    preset = DEFAULT_PRESET
    first = last = today
    if form.is_valid():
        data = form.cleaned_data
        preset = data["range"] or ("custom" if data["date_from"] or data["date_to"] else "7d")
        if preset == "custom":
            first = data["date_from"] or data["date_to"] or today
            last = data["date_to"] or max(first, today)
            if (last - first).days + 1 > MAX_DAYS:
                first = last - timedelta(days=MAX_DAYS - 1)
                notes.append(
                    _("A report covers at most %(days)s days: showing %(first)s to %(last)s.")
                    % {"days": MAX_DAYS, "first": first.isoformat(), "last": last.isoformat()}
                )
    else:
        notes.append(_("The period could not be read: showing the last 7 days instead."))
    if preset != "custom":
        first, last = _preset_days(preset, today)
    if not form.errors:
        # Shown again with the days it stands for (a preset's too), ready to adjust.
        form = RangeForm(None, account=account, initial={"date_from": first, "date_to": last})
    return DayRange(first=first, last=last, tz=tz, preset=preset), form, notes


def _preset_days(preset: str, today: date) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset == "30d":
        return today - timedelta(days=29), today
    if preset == "month":
        return today.replace(day=1), today
    return today - timedelta(days=6), today


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a report table."""

    key: object
    label: str
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    spend: Decimal = Decimal(0)
    median: float | None = None  # seconds, sent → delivered
    p95: float | None = None
    replies: int = 0
    opt_outs: int = 0
    extra: str = ""  # a second column (an operator's country)

    @property
    def rate(self) -> float | None:
        return self.delivered / self.sent if self.sent else None

    @property
    def percent(self) -> str:
        return percent_text(self.rate)

    @property
    def median_text(self) -> str:
        return latency_text(self.median)

    @property
    def p95_text(self) -> str:
        return latency_text(self.p95)


def latency_text(seconds: float | None) -> str:
    """12 s, 3.5 min, 2.1 h (in the language's number format); "—" when nothing was
    delivered."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return _("%(n)s s") % {"n": number_format(seconds, 0 if seconds >= 10 else 1)}
    if seconds < 3600:
        return _("%(n)s min") % {"n": number_format(seconds / 60, 1)}
    return _("%(n)s h") % {"n": number_format(seconds / 3600, 1)}


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


class Seconds(Func):
    """Seconds between two times, as a double (PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))::double precision"
    arg_joiner = " - "
    output_field = FloatField()


def percentile(values: list[float], fraction: float) -> float | None:
    """`percentile_cont` of sorted `values`: linear interpolation between the closest ranks."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


DIMENSIONS = ("day", "provider", "category", "campaign", "country", "operator")
DIMENSION_TITLES = {
    "day": gettext_lazy("Day"),
    "provider": gettext_lazy("Provider account"),
    "category": gettext_lazy("Category"),
    "campaign": gettext_lazy("Campaign"),
    "country": gettext_lazy("Country"),
    "operator": gettext_lazy("Operator"),
}


def _group_expressions(day_range: DayRange, by: str) -> dict:
    if by == "day":
        return {"g": TruncDate("created_at", tzinfo=day_range.tz)}
    if by == "provider":
        return {"g": F("provider_account_id")}
    if by == "category":
        return {"g": F("category_id")}
    if by == "campaign":
        return {"g": F("campaign_id")}
    if by == "country":
        return {"g": operators.country_code_expression()}
    return {"g": operators.operator_expression(), "g2": operators.country_code_expression()}


def _messages(account: Account, day_range: DayRange):
    return Message.objects.filter(
        account=account, created_at__gte=day_range.since, created_at__lt=day_range.until
    )


def grouped(account: Account, day_range: DayRange, by: str) -> dict[tuple, Row]:
    """Figures of the range's messages grouped `by` one of `DIMENSIONS`, keyed by the group's
    value(s); labels are filled in by `report`."""
    groups = _group_expressions(day_range, by)
    keys = list(groups)
    delivered = Q(status=Status.DELIVERED)
    figures = {
        "sent": Count("id", filter=Q(sent_at__isnull=False)),
        "delivered": Count("id", filter=delivered),
        "failed": Count("id", filter=Q(status__in=statuses.NOT_DELIVERED)),
        "spend": Sum("cost"),
    }
    postgres = connection.vendor == "postgresql"
    if postgres:
        latency = Seconds(F("delivered_at"), F("sent_at"))
        figures["median"] = PercentileCont(latency, 0.5, filter=delivered)
        figures["p95"] = PercentileCont(latency, 0.95, filter=delivered)
    rows = (
        _messages(account, day_range)
        .annotate(**groups)
        .values(*keys)
        .annotate(**figures)
        .order_by()
    )
    result: dict[tuple, Row] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        result[key] = Row(
            key=key,
            label="",
            sent=row["sent"],
            delivered=row["delivered"],
            failed=row["failed"],
            spend=row["spend"] or Decimal(0),
            median=row.get("median"),
            p95=row.get("p95"),
        )
    if not postgres:
        _latencies_in_python(account, day_range, groups, keys, result)
    return result


def _latencies_in_python(account, day_range, groups, keys, result) -> None:
    """Median and 95th percentile without percentile_cont (SQLite): the delivered messages'
    send and delivery times, grouped, interpolated as percentile_cont does."""
    latencies: dict[tuple, list[float]] = defaultdict(list)
    rows = (
        _messages(account, day_range)
        .filter(status=Status.DELIVERED, sent_at__isnull=False, delivered_at__isnull=False)
        .annotate(**groups)
        .values_list(*keys, "sent_at", "delivered_at")
        .order_by()
    )
    for *key, sent_at, delivered_at in rows.iterator(chunk_size=5000):
        latencies[tuple(key)].append((delivered_at - sent_at).total_seconds())
    for key, values in latencies.items():
        if key in result:
            values.sort()
            result[key].median = percentile(values, 0.5)
            result[key].p95 = percentile(values, 0.95)


@dataclass
class Report:
    day_range: DayRange
    total: Row
    tables: dict[str, list[Row]] = field(default_factory=dict)
    replies: int = 0
    opt_outs: int = 0
    currency: str = ""
    campaigns_hidden: int = 0  # campaigns beyond `CAMPAIGNS_SHOWN` (in the CSV only)


def _names(queryset, ids) -> dict[int, str]:
    return dict(queryset.filter(id__in={i for i in ids if i is not None}).values_list("id", "name"))


def report(
    account: Account,
    day_range: DayRange,
    only: tuple[str, ...] = DIMENSIONS,
    totals: bool = True,
) -> Report:
    """The range's figures by each of `only` and, with `totals`, in total (all the range's
    messages, latency included). A CSV of one table needs no totals."""
    result = Report(day_range=day_range, total=Row(key=None, label=_("Total")))
    result.currency = getattr(account, "price_currency", "") or ""
    replies, opt_outs = {}, {}
    if totals or "day" in only:
        replies, opt_outs = _replies_and_opt_outs(account, day_range)
    result.replies = sum(replies.values())
    result.opt_outs = sum(opt_outs.values())
    wanted = tuple(dict.fromkeys(("day", *only) if totals else only))
    if connection.vendor == "postgresql":
        tables, total = grouped_at_once(account, day_range, wanted, totals)
    else:
        tables = {by: grouped(account, day_range, by) for by in wanted}
        total = _total_from_days(account, day_range, tables["day"]) if totals else None
    for by, rows in tables.items():
        result.tables[by] = _labelled(account, by, rows, day_range, replies, opt_outs)
    if total is not None:
        total.label = result.total.label
        total.replies, total.opt_outs = result.replies, result.opt_outs
        result.total = total
    if "campaign" in result.tables:
        result.campaigns_hidden = max(0, len(result.tables["campaign"]) - CAMPAIGNS_SHOWN)
    for by in list(result.tables):
        if by not in only:
            del result.tables[by]
    return result


def _total_from_days(account: Account, day_range: DayRange, days: dict[tuple, Row]) -> Row:
    total = Row(key=None, label="")
    for row in days.values():
        total.sent += row.sent
        total.delivered += row.delivered
        total.failed += row.failed
        total.spend += row.spend
    total.median, total.p95 = total_latency(account, day_range)
    return total


# The columns each table groups by, in the one `GROUPING SETS` query of `grouped_at_once`; the
# operator's table is keyed by (operator, country), as in `grouped`.
_SETS = {
    "day": ("day",),
    "provider": ("provider",),
    "category": ("category",),
    "campaign": ("campaign",),
    "country": ("country",),
    "operator": ("operator", "country"),
}


def grouped_at_once(
    account: Account, day_range: DayRange, dimensions: tuple[str, ...], total: bool
) -> tuple[dict[str, dict[tuple, Row]], Row | None]:
    """`grouped` for each of `dimensions` and, with `total`, the whole range's figures, in one
    pass over the range's messages (PostgreSQL): one aggregate over `GROUPING SETS`, each
    message's groups computed once (its operator's digits cut once, its day found among the
    days' starts)."""
    columns = list(dict.fromkeys(c for by in dimensions for c in _SETS[by]))
    day, read_day = day_of("created_at", day_range.tz, day_range.first, day_range.last)
    plain = {
        "day": day,
        "provider": F("provider_account_id"),
        "category": F("category_id"),
        "campaign": F("campaign_id"),
    }
    numbers = {}
    if "country" in columns or "operator" in columns:
        numbers["n_number"] = F("recipient")
    if "operator" in columns:
        numbers["n_key"] = operators.key_expression()
    failed = sorted(status.value for status in statuses.NOT_DELIVERED)
    # Each message read once: its groups, whether it was sent, delivered or failed, its cost and
    # its latency (none unless delivered with both times). OFFSET 0 keeps this subquery apart,
    # so that the number's key is computed once, not inlined into each comparison.
    inner = (
        _messages(account, day_range)
        .annotate(
            **{f"g_{name}": plain[name] for name in columns if name in plain},
            **numbers,
            f_sent=Q(sent_at__isnull=False),
            f_delivered=Q(status=Status.DELIVERED),
            f_failed=Q(status__in=failed),
            f_cost=F("cost"),
            f_latency=Seconds(F("delivered_at"), F("sent_at")),
        )
        .values(
            *(f"g_{name}" for name in columns if name in plain),
            *numbers,
            "f_sent",
            "f_delivered",
            "f_failed",
            "f_cost",
            "f_latency",
        )
        .order_by()
    )
    inner_sql, params = inner.query.get_compiler(connection=connection).as_sql()
    derived = []
    if "country" in columns:
        derived.append(f"{operators.country_code_sql('r.n_number')} AS g_country")
    if "operator" in columns:
        derived.append(f"{operators.operator_sql('r.n_number', 'r.n_key')} AS g_operator")
    names = [f"g_{name}" for name in columns]
    sets = [f"({', '.join(f'g_{c}' for c in _SETS[by])})" for by in dimensions]
    if total:
        sets.append("()")
    latency = "percentile_cont({}) WITHIN GROUP (ORDER BY f_latency) FILTER (WHERE f_delivered)"
    # Our own SQL around Django's: column names and the operators' tables, no user input.
    sql = (
        f"SELECT GROUPING({', '.join(names)}), {', '.join(names)},"  # noqa: S608
        " COUNT(*) FILTER (WHERE f_sent), COUNT(*) FILTER (WHERE f_delivered),"
        " COUNT(*) FILTER (WHERE f_failed), SUM(f_cost),"
        f" {latency.format(0.5)}, {latency.format(0.95)}"
        f" FROM (SELECT {', '.join(['r.*', *derived])} FROM ({inner_sql} OFFSET 0) AS r) AS m"
        f" GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    # GROUPING(...) has one bit per column, the first the highest, set when a row is not grouped
    # by that column: the bits say which set (table) a row belongs to.
    tables_by_bits = {
        sum(1 << (len(columns) - 1 - i) for i, c in enumerate(columns) if c not in _SETS[by]): by
        for by in dimensions
    }
    tables: dict[str, dict[tuple, Row]] = {by: {} for by in dimensions}
    whole = Row(key=None, label="") if total else None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for bits, *values in cursor.fetchall():
            sent, delivered, failed_count, spend, median, p95 = values[len(columns) :]
            by = tables_by_bits.get(bits)
            key = None
            if by is not None:
                key = tuple(values[columns.index(c)] for c in _SETS[by])
                if by == "day":
                    key = (read_day(key[0]),)
            row = Row(
                key=key,
                label="",
                sent=sent,
                delivered=delivered,
                failed=failed_count,
                spend=spend or Decimal(0),
                median=median,
                p95=p95,
            )
            if by is None:
                whole = row
            else:
                tables[by][key] = row
    return tables, whole


def total_latency(account: Account, day_range: DayRange) -> tuple[float | None, float | None]:
    """Median and 95th percentile latency of all the range's delivered messages."""
    delivered = Q(status=Status.DELIVERED)
    if connection.vendor == "postgresql":
        latency = Seconds(F("delivered_at"), F("sent_at"))
        row = _messages(account, day_range).aggregate(
            median=PercentileCont(latency, 0.5, filter=delivered),
            p95=PercentileCont(latency, 0.95, filter=delivered),
        )
        return row["median"], row["p95"]
    values = sorted(
        (delivered_at - sent_at).total_seconds()
        for sent_at, delivered_at in _messages(account, day_range)
        .filter(delivered, sent_at__isnull=False, delivered_at__isnull=False)
        .values_list("sent_at", "delivered_at")
        .order_by()
        .iterator(chunk_size=5000)
    )
    return percentile(values, 0.5), percentile(values, 0.95)


def _replies_and_opt_outs(account: Account, day_range: DayRange):
    """Replies received and opt-outs recorded in the range, per day."""
    replies = dict(
        Reply.objects.filter(
            account=account, received_at__gte=day_range.since, received_at__lt=day_range.until
        )
        .annotate(day=TruncDate("received_at", tzinfo=day_range.tz))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    opt_outs = dict(
        OptOut.objects.filter(
            account=account, created_at__gte=day_range.since, created_at__lt=day_range.until
        )
        .annotate(day=TruncDate("created_at", tzinfo=day_range.tz))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return replies, opt_outs


def _labelled(account, by, rows: dict[tuple, Row], day_range, replies, opt_outs) -> list[Row]:
    if by == "day":
        ordered = []
        for day in day_range.days:
            row = rows.get((day,)) or Row(key=(day,), label="")
            row.label = day.isoformat()
            row.replies, row.opt_outs = replies.get(day, 0), opt_outs.get(day, 0)
            ordered.append(row)
        return ordered
    ids = [key[0] for key in rows]
    if by == "provider":
        names = _names(ProviderAccount.objects, ids)
        missing = _("No provider yet")
    elif by == "category":
        names = _names(Category.objects.filter(account=account), ids)
        missing = _("No category")
    elif by == "campaign":
        names = _names(Campaign.objects.filter(account=account), ids)
        missing = _("No campaign (single messages)")
    for key, row in rows.items():
        if by == "country":
            row.label = operators.country_label(key[0] or "")
        elif by == "operator":
            row.label = operators.operator_label(key[0] or "")
            row.extra = operators.country_label(key[1] or "")
        else:
            row.label = names.get(key[0], missing) if key[0] is not None else missing
    return sorted(rows.values(), key=lambda row: (-row.sent, -row.failed, row.label))


# --- CSV -------------------------------------------------------------------------------------


def csv_text(result: Report, by: str) -> str:
    """One table of the report as CSV: plain numbers (no thousands separators), latency in
    seconds, spend in the account's currency."""
    out = io.StringIO()
    writer = csv.writer(out)
    title = str(DIMENSION_TITLES[by])
    header = [title]
    if by == "operator":
        header.append(str(_("Country")))
    header += [
        _("Sent"),
        _("Delivered"),
        _("Failed"),
        _("Delivery rate (%)"),
        _("Median latency (s)"),
        _("95th percentile latency (s)"),
        _("Spend (%(currency)s)") % {"currency": result.currency or "-"},
    ]
    if by == "day":
        header += [_("Replies"), _("Opt-outs")]
    writer.writerow(header)
    for row in result.tables[by]:
        line = [_safe(row.label)]
        if by == "operator":
            line.append(_safe(row.extra))
        line += [
            row.sent,
            row.delivered,
            row.failed,
            "" if row.rate is None else f"{row.rate * 100:.1f}",
            "" if row.median is None else f"{row.median:.1f}",
            "" if row.p95 is None else f"{row.p95:.1f}",
            f"{row.spend:.4f}",
        ]
        if by == "day":
            line += [row.replies, row.opt_outs]
        writer.writerow(line)
    return out.getvalue()


def _safe(text: str) -> str:
    """A name typed by someone, made inert for spreadsheets (no formula injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- chart -----------------------------------------------------------------------------------


def nice_ticks(top: float, count: int = 5) -> list[int]:
    """Round ticks from 0 covering `top`, about `count` of them: steps of 1, 2, 2.5 or 5 times a
    power of ten (0, 500, 1,000, …)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * power
        if step >= raw:
            break
    step = max(1, step)
    if step != int(step):  # 2.5 below 10: whole numbers only
        step = math.ceil(step)
    step = int(step)
    last = math.ceil(top / step) * step
    return list(range(0, last + step, step))


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    value: int


@dataclass
class Chart:
    """A grouped bar chart's geometry in SVG units (viewBox 0 0 width height)."""

    width: int
    height: int
    left: int
    bottom: int
    top: int
    right: int
    bars: list[Bar]
    y_ticks: list[tuple[float, int]]  # (y, value)
    x_labels: list[tuple[float, date]]  # (x at the label's middle, day)
    series: list[tuple[str, str]]  # (css class, legend)
    size: str = "wide"

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right


SERIES = (
    ("sent", gettext_lazy("Sent")),
    ("delivered", gettext_lazy("Delivered")),
    ("failed", gettext_lazy("Failed")),
)


def day_charts(days: list[tuple[date, object]]) -> list[Chart]:
    """The per-day chart twice: for wide screens and, with fewer day labels and larger
    letters relative to its width, for phones (CSS shows one)."""
    return [
        day_chart(days),
        day_chart(days, width=420, height=300, labels=4, size="narrow"),
    ]


def day_chart(
    days: list[tuple[date, object]],
    width: int = 960,
    height: int = 300,
    labels: int = 10,
    size: str = "wide",
) -> Chart:
    """Sent, delivered and failed per day, as grouped bars with round ticks: `days` are
    (day, figures with .sent, .delivered and .failed), oldest first; about `labels` days are
    named under the axis."""
    rows = [figures for _day, figures in days]
    left, right, top, bottom = 64, 8, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([max(row.sent, row.delivered, row.failed) for row in rows] + [0])
    ticks = nice_ticks(peak)
    scale = plot_h / ticks[-1]
    slot = plot_w / max(1, len(rows))
    gap = slot * 0.2 if slot > 6 else 0
    bar_w = (slot - gap) / len(SERIES)
    bars = []
    for i, row in enumerate(rows):
        for j, (name, _label) in enumerate(SERIES):
            value = getattr(row, name)
            h = value * scale
            bars.append(
                Bar(
                    x=round(left + i * slot + gap / 2 + j * bar_w, 2),
                    y=round(top + plot_h - h, 2),
                    width=round(max(bar_w - (0.5 if bar_w > 2 else 0), 0.5), 2),
                    height=round(h, 2),
                    series=name,
                    value=value,
                )
            )
    y_ticks = [(round(top + plot_h - tick * scale, 2), tick) for tick in ticks]
    # At most about `labels` day labels, evenly spaced, whatever the number of days.
    every = max(1, math.ceil(len(rows) / labels))
    x_labels = []
    for i in range(len(rows)):
        if i % every == 0:
            x_labels.append((round(left + i * slot + slot / 2, 2), days[i][0]))
    return Chart(
        width=width,
        height=height,
        left=left,
        bottom=bottom,
        top=top,
        right=right,
        bars=bars,
        y_ticks=y_ticks,
        x_labels=x_labels,
        series=[(name, str(label)) for name, label in SERIES],
        size=size,
    )
