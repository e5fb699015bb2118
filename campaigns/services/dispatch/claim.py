"""Claiming: due messages moved to `sending` for this worker, each with its provider account,
within every flood limit (`limits`), in one transaction.

A message is claimed by a conditional UPDATE that moves it from `queued` to `sending` with this
claim's token, so two workers never send the same message; on PostgreSQL the candidates are
picked with SKIP LOCKED so workers do not queue behind each other.
"""

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Account, Campaign, Category, Message, MessageEvent, RouteEntry
from providers import circuit

from .. import lifecycle
from .limits import account_budget, account_frees_at, lock_providers, pick

Status = Message.Status
Source = MessageEvent.Source


# Accounts this process knows are held (flood limit reached, quiet hours) until a moment:
# left out of candidate queries until then. Only an optimisation: the limits are checked
# against the database, under the account's row lock, at every claim.
_held: dict[int, datetime] = {}


HELD_CAMPAIGNS = (Campaign.Status.PAUSED, Campaign.Status.IMPORTING, Campaign.Status.CANCELED)


def due_filter(now) -> Q:
    return (
        Q(status=Status.QUEUED)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (Q(window_start__isnull=True) | Q(window_start__lte=now))
        # Held campaigns: paused by staff, still being written (bulk.create_campaign), or
        # canceled while its messages are being canceled (campaign_control.cancel).
        & (Q(campaign__isnull=True) | ~Q(campaign__status__in=HELD_CAMPAIGNS))
    )


# How long this process keeps `blocked_routes` before reading it again.
BLOCKED_ROUTES_TTL = 1.0
_blocked_routes: tuple[float, Q | None] = (0.0, None)


def blocked_routes() -> Q | None:
    """Messages that no provider account can take now: every one of their route from their step
    on is on hold (`holds`) or its circuit open. Left out of claims and of the due count, so
    that they neither fill every claim while other messages wait behind them nor keep the sweep
    publishing tasks; claimed again once a hold is released or a circuit closes. None when no
    route is blocked. Read at most once a `BLOCKED_ROUTES_TTL` per process (a claim checks each
    provider account's state itself, under its row lock)."""
    global _blocked_routes
    if _blocked_routes[0] > time.monotonic():
        return _blocked_routes[1]
    routes: dict[tuple[int, int | None], list[int]] = {}
    held: set[int] = set()
    for account_id, category_id, provider_id, held_since in RouteEntry.objects.filter(
        provider_account__enabled=True
    ).values_list(
        "account_id", "category_id", "provider_account_id", "provider_account__held_since"
    ):
        routes.setdefault((account_id, category_id), []).append(provider_id)
        if held_since is not None:
            held.add(provider_id)
    closed = held | {
        pk
        for pk in {pk for route in routes.values() for pk in route} - held
        if circuit.state(pk) == circuit.OPEN
    }
    blocked = None
    if closed:
        own = {}  # each account's categories that have a route of their own
        for account_id, category_id in routes:
            if category_id is not None:
                own.setdefault(account_id, []).append(category_id)
        for (account_id, category_id), route in routes.items():
            step = len(route)
            while step and route[step - 1] in closed:
                step -= 1
            if step == len(route):
                continue  # its last provider account takes messages: nothing is stuck for good
            these = Q(account_id=account_id, route_step__gte=step)
            if category_id is not None:
                these &= Q(category_id=category_id)
            elif own.get(account_id):
                these &= ~Q(category_id__in=own[account_id])
            blocked = these if blocked is None else blocked | these
    _blocked_routes = (time.monotonic() + BLOCKED_ROUTES_TTL, blocked)
    return blocked


def forget_state() -> None:
    """Forget what this process remembers between claims: it is read again at the next one."""
    global _blocked_routes
    _held.clear()
    _blocked_routes = (0.0, None)


def due_messages(now):
    """The messages a claim may take now (see `due_filter` and `blocked_routes`)."""
    due = Message.objects.filter(due_filter(now))
    blocked = blocked_routes()
    return due if blocked is None else due.exclude(blocked)


def _candidates(now):
    """Due messages of accounts not held (quiet hours, flood limits) by this process."""
    for account_id, until in list(_held.items()):
        if until <= now:
            del _held[account_id]
    return due_messages(now).exclude(account_id__in=list(_held))


def anything_to_claim() -> bool:
    """Whether a claim now could find a message: a plain read, which on SQLite takes no write
    lock (a claim's transaction does), for a worker looking for work while idle."""
    return _candidates(timezone.now()).exists()


@dataclass
class Claim:
    messages: list[Message]
    # Due messages left for a moment (a provider's per-second limit): worth claiming again soon,
    # at `retry_at` when known (when the next budget comes within `AHEAD`).
    waiting: bool = False
    retry_at: datetime | None = None
    # Messages claimed for per-second budget that frees a moment later: not sent before it.
    not_before: dict[int, datetime] = field(default_factory=dict)


def claim_batch(limit: int) -> Claim:
    """Claim due messages within every flood limit, each with the provider account to send it.

    Candidates are locked with SKIP LOCKED (PostgreSQL) so workers take disjoint batches; the
    accounts' and provider accounts' rows are locked, in id order, while their limits are
    counted, so two workers never both spend the same budget (FOR NO KEY UPDATE: messages
    inserted meanwhile, which take a key share lock on their account, never wait for it). On
    SQLite the transaction is IMMEDIATE: one claimer at a time. Messages over a limit stay
    queued: they wait, never fail.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        candidates = _candidates(now)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            candidates.order_by("id").values_list(
                "id", "account_id", "segments", "route_step", "category_id"
            )[:limit]
        )
        if not rows:
            return Claim([])
        accounts = {
            a.pk: a
            for a in Account.objects.select_for_update(no_key=True)
            .filter(pk__in={row[1] for row in rows})
            .order_by("pk")
        }
        routes = {pk: account.routes() for pk, account in accounts.items()}
        providers = lock_providers(routes, now)
        chosen: dict[int | None, list[int]] = {}
        waiting, retry_at, not_before = False, None, {}
        rows.sort(key=lambda row: (row[1], row[0]))  # each account's messages together, in order
        for account_id, group in groupby(rows, key=lambda row: row[1]):
            account, account_routes = accounts[account_id], routes[account_id]
            quiet_until = account.in_quiet_hours(now)
            if quiet_until is not None:
                _held[account_id] = quiet_until
                continue
            budget = account_budget(account, now)
            for message_id, _, segments, step, category_id in group:
                route = account_routes.get(category_id) or account_routes[None]
                if segments > budget:
                    _held[account_id] = account_frees_at(account, now)
                    break
                provider, at = (
                    pick(route, step, segments, providers, now) if route else (None, None)
                )
                if route and provider is None:
                    waiting = True
                    frees = [providers[p.pk].next_free() for p in route if p.pk in providers]
                    retry_at = min([t for t in [retry_at, *frees] if t is not None], default=None)
                    continue
                budget -= segments
                chosen.setdefault(provider.pk if provider else None, []).append(message_id)
                if at is not None:
                    not_before[message_id] = at
        claimed = lifecycle.claim(chosen, token, now)
        _attach(claimed, accounts, {pk: slot.provider for pk, slot in providers.items()})
    return Claim(claimed, waiting, retry_at, not_before)


def _attach(messages: list[Message], accounts: dict, providers: dict) -> None:
    """Give claimed messages their account, provider account, campaign and category: the same
    object to every message that shares it, loaded once per batch rather than once per row."""
    campaigns = Campaign.objects.in_bulk({m.campaign_id for m in messages if m.campaign_id})
    categories = {}
    if any(m.category_id for m in messages):
        categories = Category.objects.in_bulk({m.category_id for m in messages if m.category_id})
    # Into the relations' caches: what assigning them does, without checking each object again.
    for message in messages:
        ACCOUNT.set_cached_value(message, accounts[message.account_id])
        PROVIDER_ACCOUNT.set_cached_value(message, providers.get(message.provider_account_id))
        CAMPAIGN.set_cached_value(message, campaigns.get(message.campaign_id))
        CATEGORY.set_cached_value(message, categories.get(message.category_id))


ACCOUNT, PROVIDER_ACCOUNT, CAMPAIGN, CATEGORY = (
    Message._meta.get_field(name)
    for name in ("account", "provider_account", "campaign", "category")
)
