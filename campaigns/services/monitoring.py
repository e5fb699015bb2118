"""What a campaign is doing and why, in words: the campaign page and each row of the list.

Reads the dispatcher's own rules rather than restating them: the account's flood limits through
`dispatch.limits` (`account_budget`, `account_frees_at`), quiet hours through
`Account.in_quiet_hours`, holds through `ProviderAccount.on_hold` and circuits through
`providers.circuit`. `monitor_many` serves a whole page of campaigns of one account with a fixed
number of queries: one GROUP BY over their messages, the account's limits and route once, and
one read of the audit trail for who paused or canceled.
"""

import copy
import hashlib
import math
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns import statuses
from campaigns.audit.models import AuditEntry
from campaigns.models import Account, Campaign, Message
from providers import circuit

from .dispatch import limits

S = statuses.Status
CS = Campaign.Status
RECENT = timedelta(seconds=60)  # the window of the "sending at N/min" rate

# The order the counts by status are shown in.
STATUS_ORDER = [
    S.SCHEDULED, S.QUEUED, S.RETRYING, S.SENDING, S.SENT, S.DELIVERED,
    S.UNDELIVERED, S.EXPIRED, S.FAILED, S.BLOCKED, S.CANCELED, S.UNKNOWN,
]  # fmt: skip

# The parts of a progress bar, in order; every status is in exactly one.
PARTS: list[tuple[str, frozenset]] = [
    ("delivered", frozenset({S.DELIVERED})),
    ("awaiting", frozenset({S.SENT, S.UNKNOWN})),
    ("failed", statuses.NOT_DELIVERED | {S.BLOCKED}),
    ("canceled", frozenset({S.CANCELED})),
    ("remaining", statuses.ON_ITS_WAY),
]


def _part_labels() -> dict[str, str]:
    return {
        "delivered": _("Delivered"),
        "awaiting": _("Sent, awaiting report"),
        "failed": _("Failed or blocked"),
        "canceled": _("Canceled"),
        "remaining": _("Not sent yet"),
    }


@dataclass
class Part:
    key: str
    label: str
    count: int
    percent: float  # of the total, for the bar's width


@dataclass
class Monitor:
    """One campaign's state as shown to people."""

    state: str  # a short code: sending, flood_limited, quiet_hours, paused, ...
    headline: str  # what it is doing and why, one sentence
    notes: list[str] = field(default_factory=list)
    total: int = 0
    remaining: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    rate_per_minute: int = 0  # messages claimed in the last minute
    eta: datetime | None = None
    next_batch_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    paused_at: datetime | None = None
    paused_by: str = ""
    canceled_at: datetime | None = None
    canceled_by: str = ""
    cost_so_far: Decimal | None = None
    cost_estimate: Decimal | None = None
    currency: str = ""
    poll: int | None = None  # seconds between live refreshes; None once nothing will change
    version: str = ""

    @property
    def rows(self) -> list[tuple[str, str, int]]:
        """(status, label, count) of every status that has messages, in lifecycle order."""
        labels = dict(S.choices)
        return [(s, labels[s], self.counts[s]) for s in STATUS_ORDER if self.counts.get(s)]

    @property
    def handled(self) -> int:
        """Messages done with: handed to a provider or final, canceled ones left out."""
        return self.total - self.remaining - self.counts.get(S.CANCELED, 0)

    @property
    def handled_percent(self) -> int:
        return round(100 * self.handled / self.total) if self.total else 100

    @property
    def summary(self) -> str:
        """The bar in words, for screen readers and the list."""
        shown = [
            f"{p.label}: {formats.number_format(p.count, force_grouping=True)}"
            for p in self.parts
            if p.count
        ]
        return "; ".join(shown) or _("No messages")


@dataclass
class _Tally:
    counts: dict[str, int]
    recent: int = 0
    first_claim: datetime | None = None
    last_claim: datetime | None = None
    scheduled_at: datetime | None = None  # the earliest scheduled message
    window_start: datetime | None = None  # the earliest window opening of a queued message
    next_attempt: datetime | None = None  # the earliest retry
    canceled_last: datetime | None = None
    last_change: datetime | None = None
    segments: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal(0)
    segments_uncosted_accepted: int = 0


def _tallies(campaigns: list[Campaign], now: datetime) -> dict[int, _Tally]:
    """Counts by status and the moments that matter, for every campaign: one GROUP BY query."""
    tallies = {c.pk: _Tally(dict.fromkeys(S.values, 0)) for c in campaigns}
    if not campaigns:
        return tallies
    rows = (
        Message.objects.filter(campaign_id__in=list(tallies))
        .order_by()
        .values_list("campaign_id", "status")
        .annotate(
            n=Count("id"),
            recent=Count("id", filter=Q(claimed_at__gt=now - RECENT)),
            first=Min("claimed_at"),
            last=Max("claimed_at"),
            scheduled=Min("scheduled_at"),
            window=Min("window_start"),
            retry=Min("next_attempt_at"),
            changed=Max("updated_at"),
            segs=Sum("segments"),
            cost_sum=Sum("cost"),
            uncosted=Sum("segments", filter=Q(cost__isnull=True)),
        )
    )
    for (
        pk,
        status,
        n,
        recent,
        first,
        last,
        sched,
        window,
        retry,
        changed,
        seg,
        cost,
        uncosted,
    ) in rows:
        t = tallies[pk]
        t.counts[status] = n
        t.recent += recent
        t.first_claim = min(filter(None, [t.first_claim, first]), default=None)
        t.last_claim = max(filter(None, [t.last_claim, last]), default=None)
        t.last_change = max(filter(None, [t.last_change, changed]), default=None)
        t.segments[status] = seg or 0
        if status == S.SCHEDULED:
            t.scheduled_at = sched
        elif status == S.QUEUED:
            t.window_start = window
        elif status == S.RETRYING:
            t.next_attempt = retry
        elif status == S.CANCELED:
            t.canceled_last = changed
        if status in statuses.ACCEPTED:
            t.cost += cost or 0
            t.segments_uncosted_accepted += uncosted or 0
    for c in campaigns:
        # Messages purged by retention still count, as in campaign_control.counts.
        for status, n in (c.archived_counts or {}).items():
            tallies[c.pk].counts[status] = tallies[c.pk].counts.get(status, 0) + n
    return tallies


def note_control(campaign: Campaign, user, old_status: str, new_status: str) -> None:
    """Record who paused, resumed or canceled a campaign in the audit trail (admin shows it)."""
    AuditEntry.objects.create(
        actor=user if getattr(user, "is_authenticated", False) else None,
        actor_name=user.get_username() if getattr(user, "is_authenticated", False) else "",
        via=AuditEntry.Via.WEB,
        action=AuditEntry.Action.CHANGED,
        content_type=ContentType.objects.get_for_model(Campaign),
        object_id=str(campaign.pk),
        object_repr=str(campaign)[:200],
        account_id=campaign.account_id,
        changes={"status": [old_status, new_status]},
    )


def canceled_since(since: datetime) -> set[int]:
    """The campaigns canceled (`note_control`) at `since` or later: their ids."""
    entries = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Campaign),
        at__gte=since,
        changes__status__1=CS.CANCELED,
    )
    return {int(pk) for pk in entries.values_list("object_id", flat=True)}


def _controls(campaigns: list[Campaign]) -> dict[tuple[int, str], AuditEntry]:
    """The latest pause and cancel of each paused or canceled campaign: one query."""
    wanted = [c.pk for c in campaigns if c.status in (CS.PAUSED, CS.CANCELED)]
    if not wanted:
        return {}
    entries = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Campaign),
        object_id__in=[str(pk) for pk in wanted],
    ).order_by("at", "id")
    latest = {}
    for entry in entries:
        new = (entry.changes.get("status") or [None, None])[1]
        if new in (CS.PAUSED, CS.CANCELED):
            latest[(int(entry.object_id), new)] = entry
    return latest


@dataclass
class _AccountState:
    """What holds every campaign of an account alike, read once per page."""

    quiet_until: datetime | None
    flood: tuple[str, datetime] | None  # (the limit in words, when the next batch may go)
    per_minute_cap: float | None  # messages a minute the limits allow (segments ignored)
    routes: dict
    blocked: dict[int, str]  # provider account id -> why it takes nothing now


def _account_state(account: Account, now: datetime) -> _AccountState:
    flood = None
    caps = []
    for _name, window, value in (
        ("flood_limit_per_minute", "min", account.flood_limit_per_minute),
        ("flood_limit_per_hour", "h", account.flood_limit_per_hour),
    ):
        if not value:
            continue
        caps.append(value if window == "min" else value / 60)
        alone = copy.copy(account)  # this limit alone: which one holds, and until when
        alone.flood_limit_per_minute = value if window == "min" else None
        alone.flood_limit_per_hour = value if window == "h" else None
        if flood is None and limits.account_budget(alone, now) < 1:
            words = (_("%(n)s SMS a minute") if window == "min" else _("%(n)s SMS an hour")) % {
                "n": formats.number_format(value, force_grouping=True)
            }
            flood = (words, limits.account_frees_at(alone, now))
    routes = account.routes()
    blocked = {}
    for route in routes.values():
        for provider in route:
            if provider.pk in blocked:
                continue
            if provider.on_hold:
                blocked[provider.pk] = _("provider account %(name)s is on hold (%(reason)s)") % {
                    "name": provider.name,
                    "reason": (provider.hold_reason or _("refused by the provider"))[:120],
                }
            elif circuit.state(provider.pk) == circuit.OPEN:
                blocked[provider.pk] = _(
                    "provider account %(name)s is failing: its circuit is open"
                ) % {"name": provider.name}
    for route in routes.values():
        for provider in route:
            if provider.max_per_second and provider.pk not in blocked:
                caps.append(provider.max_per_second * 60)
                break
    return _AccountState(
        quiet_until=account.in_quiet_hours(now),
        flood=flood,
        per_minute_cap=min(caps) if caps else None,
        routes=routes,
        blocked=blocked,
    )


def _local(moment: datetime, tz: zoneinfo.ZoneInfo, now: datetime) -> str:
    """The time alone today, else the date and time, written the current language's way."""
    local = moment.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return formats.date_format(local, "H:i:s")
    return formats.date_format(local, _("Y-m-d H:i"))


def _n(value: int) -> str:
    return formats.number_format(value, force_grouping=True)


def _poll(campaign: Campaign, t: _Tally, counts: dict, now: datetime) -> int | None:
    """Seconds between live refreshes: 1 while messages move, slower when idle, None when final."""
    moving = counts[S.SENDING] or t.recent
    recent_change = t.last_change is not None and now - t.last_change < timedelta(seconds=15)
    if campaign.status in (CS.RUNNING, CS.IMPORTING):
        return 1 if moving or recent_change else 5
    if campaign.status == CS.SCHEDULED:
        return 5 if t.scheduled_at and t.scheduled_at - now < timedelta(minutes=2) else 30
    if counts[S.SENDING]:
        return 1
    if campaign.status == CS.CANCELED and any(counts[s] for s in statuses.CANCELABLE):
        return 1  # its messages still being canceled by a worker (campaign_control.cancel)
    awaiting = counts[S.SENT] + counts[S.UNKNOWN]
    if awaiting and campaign.created_at > now - timedelta(days=1):
        return 2 if recent_change else 10
    return None


def monitor_many(
    campaigns: list[Campaign], account: Account, now: datetime | None = None
) -> dict[int, Monitor]:
    """The monitor of each campaign of `account`, by id, in a fixed number of queries."""
    now = now or timezone.now()
    tallies = _tallies(campaigns, now)
    controls = _controls(campaigns)
    needs_account = any(
        c.status in (CS.RUNNING, CS.SCHEDULED, CS.PAUSED)
        and any(tallies[c.pk].counts[s] for s in statuses.ON_ITS_WAY)
        for c in campaigns
    )
    state = _account_state(account, now) if needs_account else None
    tz = zoneinfo.ZoneInfo(account.timezone)
    return {c.pk: _monitor(c, tallies[c.pk], controls, state, account, tz, now) for c in campaigns}


def monitor(campaign: Campaign, now: datetime | None = None) -> Monitor:
    return monitor_many([campaign], campaign.account, now)[campaign.pk]


def _monitor(campaign, t: _Tally, controls, state, account, tz, now) -> Monitor:
    counts = dict(t.counts)
    total = sum(counts.values())
    counts["total"] = total
    labels = _part_labels()
    parts = []
    for key, group in PARTS:
        n = sum(counts.get(s, 0) for s in group)
        parts.append(Part(key, labels[key], n, round(100 * n / total, 2) if total else 0))
    remaining = parts[-1].count
    m = Monitor(state="", headline="", total=total, remaining=remaining, counts=counts, parts=parts)
    m.rate_per_minute = t.recent
    m.started_at = t.first_claim
    pause = controls.get((campaign.pk, CS.PAUSED))
    cancel = controls.get((campaign.pk, CS.CANCELED))
    if pause:
        m.paused_at, m.paused_by = pause.at, pause.actor_name
    if campaign.status == CS.CANCELED:
        m.canceled_at = cancel.at if cancel else t.canceled_last
        m.canceled_by = cancel.actor_name if cancel else ""
    if campaign.status == CS.COMPLETED:
        m.finished_at = t.last_claim
    _cost(m, t, account)
    _explain(m, campaign, t, counts, state, tz, now)
    m.poll = _poll(campaign, t, counts, now)
    m.version = version(campaign.status, counts, m.poll)
    return m


def version(campaign_status: str, counts: dict, poll: int | None) -> str:
    """A short digest of what the live part shows: unchanged means nothing to redraw."""
    key = f"{campaign_status}|{poll}|" + ",".join(f"{k}={n}" for k, n in sorted(counts.items()))
    return hashlib.blake2s(key.encode(), digest_size=6).hexdigest()


def _cost(m: Monitor, t: _Tally, account: Account) -> None:
    price = account.price_per_segment
    has_cost = t.cost or price is not None
    if not has_cost:
        return
    so_far = Decimal(t.cost)
    if price is not None:
        so_far += price * t.segments_uncosted_accepted
    m.cost_so_far = so_far
    m.currency = account.price_currency if price is not None else ""
    if price is not None:
        left = sum(t.segments.get(s, 0) for s in statuses.ON_ITS_WAY)
        m.cost_estimate = so_far + price * left


def _explain(m: Monitor, campaign, t: _Tally, counts, state, tz, now) -> None:
    """The headline: what the campaign is doing and why, in the dispatcher's order of checks."""
    status = campaign.status
    waiting = sum(counts[s] for s in statuses.WAITING)
    if status == CS.IMPORTING:
        m.state, m.headline = (
            "importing",
            _("Importing its numbers: %(n)s written so far.") % {"n": _n(m.total)},
        )
        return
    if status == CS.DRAFT:
        m.state, m.headline = "draft", _("Draft: not sent.")
        return
    if status == CS.CANCELED:
        m.state = "canceled"
        m.headline = ngettext(
            "Canceled: %(n)s message was never sent.",
            "Canceled: %(n)s messages were never sent.",
            counts[S.CANCELED],
        ) % {"n": _n(counts[S.CANCELED])}
        return
    if status == CS.PAUSED:
        m.state = "paused"
        if m.paused_by:
            m.headline = ngettext(
                "Paused by %(who)s at %(when)s: %(n)s message waits.",
                "Paused by %(who)s at %(when)s: %(n)s messages wait.",
                waiting,
            ) % {"who": m.paused_by, "when": _local(m.paused_at, tz, now), "n": _n(waiting)}
        else:
            m.headline = ngettext(
                "Paused: %(n)s message waits.", "Paused: %(n)s messages wait.", waiting
            ) % {"n": _n(waiting)}
        return
    if status == CS.COMPLETED or not m.remaining:
        awaiting = counts[S.SENT] + counts[S.UNKNOWN]
        m.state = "completed"
        m.headline = (
            _("Finished.")
            if not awaiting
            else ngettext(
                "Finished: %(n)s message awaits its delivery report.",
                "Finished: %(n)s messages await their delivery report.",
                awaiting,
            )
            % {"n": _n(awaiting)}
        )
        return
    if status == CS.SCHEDULED and t.scheduled_at:
        m.state = "scheduled"
        m.headline = _("Scheduled for %(when)s (%(tz)s).") % {
            "when": formats.date_format(t.scheduled_at.astimezone(tz), _("Y-m-d H:i")),
            "tz": str(tz),
        }
        _eta(m, t, state, t.scheduled_at, now)
        return
    # Running (or scheduled with messages already due): the dispatcher's checks, in its order.
    start = now
    reasons = []
    if state is not None and state.quiet_until:
        m.state = "quiet_hours"
        m.headline = _("Waiting for quiet hours to end at %(when)s.") % {
            "when": _local(state.quiet_until, tz, now)
        }
        start = state.quiet_until
    elif (
        counts[S.QUEUED] == 0
        and counts[S.RETRYING]
        and not counts[S.SENDING]
        and t.next_attempt
        and t.next_attempt > now
    ):
        m.state = "retrying"
        m.headline = _("Retrying after temporary errors: next attempt at %(when)s.") % {
            "when": _local(t.next_attempt, tz, now)
        }
        start = t.next_attempt
    elif (
        counts[S.QUEUED]
        and t.window_start
        and t.window_start > now
        and not counts[S.SENDING]
        and not t.recent
    ):
        m.state = "window"
        m.headline = _("Waiting for its sending window to open at %(when)s.") % {
            "when": _local(t.window_start, tz, now)
        }
        start = t.window_start
    if state is not None:
        route = state.routes.get(campaign.category_id) or state.routes.get(None) or []
        held = [state.blocked[p.pk] for p in route if p.pk in state.blocked]
        if route and len(held) == len(route) and not m.state:
            m.state = "provider_blocked"
            m.headline = _("Waiting: %(why)s.") % {"why": "; ".join(held)}
        elif held:
            reasons.append(
                _("%(why)s: messages go through the next provider account of the route.")
                % {"why": "; ".join(held)}
            )
        if not route and not m.state:
            m.state = "no_route"
            m.headline = _("No provider account is on this account's route: nothing can be sent.")
        if state.flood and not m.state and waiting:
            words, frees = state.flood
            m.state = "flood_limited"
            m.next_batch_at = frees
            m.headline = _(
                "Held by the account's flood limit (%(limit)s): next batch at %(when)s."
            ) % {"limit": words, "when": _local(frees, tz, now)}
            start = frees
    if not m.state:
        m.state = "sending"
        if t.recent:
            m.headline = _("Sending at %(n)s/min.") % {"n": _n(t.recent)}
        elif counts[S.SENDING]:
            m.headline = _("Sending.")
        else:
            m.headline = _("Queued: waiting for a worker to send.")
    m.notes = reasons
    _eta(m, t, state, max(start, now), now)


def _eta(m: Monitor, t: _Tally, state, start: datetime, now: datetime) -> None:
    """When the last message should be handed over: from `start` at the recent rate, never faster
    than the account's and the provider's limits."""
    rates = []
    if state is not None and state.per_minute_cap:
        per_message = max(
            sum(t.segments.get(s, 0) for s in statuses.ON_ITS_WAY) / max(m.remaining, 1), 1
        )
        rates.append(state.per_minute_cap / per_message)
    if t.recent:
        rates.append(t.recent)
    if not rates or not m.remaining:
        return
    rate = min(rates)
    minutes = m.remaining / rate
    if m.state == "flood_limited":
        minutes = max(math.ceil(m.remaining / rate) - 1, 0)  # a batch at each freeing
    m.eta = start + timedelta(minutes=minutes)


def backoff(base: int | None, idle_seconds: float) -> int | None:
    """The live refresh interval once nothing changed for `idle_seconds`: every second while
    things move, every 3 seconds after 10 quiet seconds; slower bases stay as they are."""
    if base is None:
        return None
    if base == 1 and idle_seconds >= 10:
        return 3
    return base


def stamp(value: str) -> int | None:
    """A number sent back by a live page (seconds since the epoch, an interval), or None."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None
