"""Flood limits as a claim counts them: an account's segments per minute and per hour, a provider
account's per second (with the budget that frees within `AHEAD`), its circuit and its hold."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min, Q, Sum

from campaigns.models import Account, Message
from providers import circuit
from providers.models import ProviderAccount

Status = Message.Status


# Flood-limit windows, with a little margin: a send happens just after its claim.
MINUTE, HOUR = timedelta(seconds=62), timedelta(seconds=3602)
SECOND = timedelta(seconds=1)
# How far ahead a provider account's per-second budget is claimed: a message may be claimed for
# budget that frees within this long, and its call waits for that moment. Claiming the moment
# budget frees, not after it, keeps a limited provider account busy to its limit.
AHEAD = timedelta(seconds=0.5)


@dataclass
class Capacity:
    provider: ProviderAccount
    free: float  # segments this provider account may take from `at` on (now when None)
    calls: float  # messages its circuit breaker lets through in this claim
    # Per-second budget that frees later: (moment, segments), soonest first.
    frees: list[tuple[datetime, int]] = field(default_factory=list)
    at: datetime | None = None

    def take(self, segments: int, now) -> tuple[bool, datetime | None]:
        """Take `segments` of budget, now or when enough frees within `AHEAD`: (taken, from when
        the call may go; None for at once)."""
        while self.free < segments and self.frees and self.frees[0][0] <= now + AHEAD:
            self.at, freed = self.frees.pop(0)
            self.free += freed
        if self.free < segments:
            return False, None
        self.free -= segments
        return True, self.at

    def next_free(self) -> datetime | None:
        """When claiming again would find more budget (the next freeing within `AHEAD`)."""
        return self.frees[0][0] - AHEAD if self.frees else None


def lock_providers(
    routes: dict[int, dict[int | None, list[ProviderAccount]]], now
) -> dict[int, Capacity]:
    ids = {p.pk for account in routes.values() for route in account.values() for p in route}
    locked = (
        ProviderAccount.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    )
    capacity = {}
    for provider in locked:
        # A provider account on hold takes nothing; otherwise its circuit says how much, and
        # its calls in flight at most (all workers' messages being sent through it count).
        calls = 0 if provider.on_hold else circuit.allowance(provider.pk)
        if calls and provider.max_in_flight:
            calls = min(calls, max(provider.max_in_flight - _in_flight(provider, now), 0))
        slot = Capacity(provider, float("inf"), calls)
        if provider.max_per_second:
            used, slot.frees = _provider_second(provider, now)
            slot.free = provider.max_per_second - used
        capacity[provider.pk] = slot
    return capacity


def _in_flight(provider: ProviderAccount, now) -> int:
    """Messages being sent through `provider` now, by any worker."""
    in_flight_at_most = timedelta(seconds=sum(settings.SMSHUB_HTTP_TIMEOUT) + 5)
    return Message.objects.filter(
        status=Status.SENDING, provider_account=provider, claimed_at__gt=now - in_flight_at_most
    ).count()


def _provider_second(provider: ProviderAccount, now) -> tuple[int, list[tuple[datetime, int]]]:
    """Segments that count against a provider account's per-second limit now, and when those
    that will stop counting do (soonest first).

    A call counts from its claim until a second after the provider answered it (when the
    provider surely had it) or, without an answer recorded, a second after its claim; a call in
    flight counts until it is recorded. Counting until a second after the answer, not the
    claim, keeps every second the provider sees within the limit however long a call waits.
    """
    in_flight_at_most = timedelta(seconds=sum(settings.SMSHUB_HTTP_TIMEOUT) + 5)
    recent = Q(status=Status.SENDING) | Q(claimed_at__gt=now - SECOND) | Q(sent_at__gt=now - SECOND)
    counted = Message.objects.filter(
        provider_account=provider, claimed_at__gt=now - in_flight_at_most
    ).filter(recent)
    used, frees = 0, []
    for segments, status, claimed_at, sent_at in counted.values_list(
        "segments", "status", "claimed_at", "sent_at"
    ):
        used += segments
        if status != Status.SENDING:
            frees.append((max(claimed_at, sent_at or claimed_at) + SECOND, segments))
    return used, sorted(frees)


def pick(route, step: int, segments: int, providers: dict[int, Capacity], now):
    """The provider account for a message at `step` of its route, and the moment its call may
    go (None: at once): that one, or a later one when its circuit is open (failing over without
    spending the message's retries); (None, None) when every candidate is open or over its
    per-second limit for now."""
    for provider in route[min(step, len(route) - 1) :]:
        slot = providers.get(provider.pk)
        if slot is None or slot.calls < 1:
            continue
        taken, at = slot.take(segments, now)
        if not taken:
            continue
        slot.calls -= 1
        return slot.provider, at
    return None, None


def _segments(queryset, since) -> int:
    return queryset.filter(claimed_at__gt=since).aggregate(n=Sum("segments"))["n"] or 0


def account_budget(account: Account, now) -> float:
    """Segments the account may still send now, within its per-minute and per-hour limits."""
    budget = float("inf")
    messages = Message.objects.filter(account=account)
    for limit, window in (
        (account.flood_limit_per_minute, MINUTE),
        (account.flood_limit_per_hour, HOUR),
    ):
        if limit:
            budget = min(budget, limit - _segments(messages, now - window))
    return budget


def account_frees_at(account: Account, now) -> datetime:
    """When the oldest send still counted in a full window leaves it (a moment later at least)."""
    window = MINUTE if account.flood_limit_per_minute else HOUR
    oldest = Message.objects.filter(account=account, claimed_at__gt=now - window).aggregate(
        oldest=Min("claimed_at")
    )["oldest"]
    return max((oldest or now) + window, now + SECOND)
