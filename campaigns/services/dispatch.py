"""Dispatch, the outbox pattern: claim due messages, send them outside any transaction, record.

The database is the source of truth. A message is claimed by a conditional UPDATE that moves it
from `queued` to `sending` with this worker's claim token, so two workers never send the same
message; on PostgreSQL the candidates are picked with SKIP LOCKED so workers do not queue behind
each other. A crash after the claim leaves the message `sending`: past `SMSHUB_SENDING_TIMEOUT`
it becomes `unknown`, never resent blindly.
"""

import json
import logging
import os
import random
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import groupby

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Min, Q, Sum, Value, When
from django.utils import timezone

from campaigns.models import (
    Account,
    Campaign,
    Category,
    Message,
    MessageEvent,
    OptOut,
    PendingDeliveryReport,
    RouteEntry,
)
from providers import circuit
from providers.events import OutboundSMS, SendResult
from providers.exceptions import ErrorClass, ProviderError
from providers.models import ProviderAccount

from . import campaign_control, holds
from .compose import nudge_dispatcher
from .delivery import apply_pending_reports
from .lifecycle import transition

logger = logging.getLogger(__name__)

Status = Message.Status
Source = MessageEvent.Source


# Flood-limit windows, with a little margin: a send happens just after its claim.
MINUTE, HOUR = timedelta(seconds=62), timedelta(seconds=3602)
SECOND = timedelta(seconds=1)
# How far ahead a provider account's per-second budget is claimed: a message may be claimed for
# budget that frees within this long, and its call waits for that moment. Claiming the moment
# budget frees, not after it, keeps a limited provider account busy to its limit.
AHEAD = timedelta(seconds=0.5)

# Accounts this process knows are held (flood limit reached, quiet hours) until a moment:
# left out of candidate queries until then. Only an optimisation: the limits are checked
# against the database, under the account's row lock, at every claim.
_held: dict[int, datetime] = {}


def due_filter(now) -> Q:
    return (
        Q(status=Status.QUEUED)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        & (Q(window_start__isnull=True) | Q(window_start__lte=now))
        # Held campaigns: paused by staff, or still being written (bulk.create_campaign).
        & (
            Q(campaign__isnull=True)
            | ~Q(campaign__status__in=(Campaign.Status.PAUSED, Campaign.Status.IMPORTING))
        )
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


@dataclass
class Claim:
    messages: list[Message]
    # Due messages left for a moment (a provider's per-second limit): worth claiming again soon,
    # at `retry_at` when known (when the next budget comes within `AHEAD`).
    waiting: bool = False
    retry_at: datetime | None = None
    # Messages claimed for per-second budget that frees a moment later: not sent before it.
    not_before: dict[int, datetime] = field(default_factory=dict)


def claim(limit: int) -> list[Message]:
    """Claim up to `limit` due messages for this worker: they are `sending` when this returns."""
    return claim_batch(limit).messages


def claim_batch(limit: int) -> Claim:
    """Claim due messages within every flood limit, each with the provider account to send it.

    Candidates are locked with SKIP LOCKED (PostgreSQL) so workers take disjoint batches; the
    accounts' and provider accounts' rows are locked, in id order, while their limits are
    counted, so two workers never both spend the same budget. On SQLite the transaction is
    IMMEDIATE: one claimer at a time. Messages over a limit stay queued: they wait, never fail.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    for account_id, until in list(_held.items()):
        if until <= now:
            del _held[account_id]
    with transaction.atomic():
        candidates = due_messages(now).exclude(account_id__in=list(_held))
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
            for a in Account.objects.select_for_update()
            .filter(pk__in={row[1] for row in rows})
            .order_by("pk")
        }
        routes = {pk: account.routes() for pk, account in accounts.items()}
        providers = _lock_providers(routes, now)
        chosen: dict[int | None, list[int]] = {}
        waiting, retry_at, not_before = False, None, {}
        rows.sort(key=lambda row: (row[1], row[0]))  # each account's messages together, in order
        for account_id, group in groupby(rows, key=lambda row: row[1]):
            account, account_routes = accounts[account_id], routes[account_id]
            quiet_until = account.in_quiet_hours(now)
            if quiet_until is not None:
                _held[account_id] = quiet_until
                continue
            budget = _account_budget(account, now)
            for message_id, _, segments, step, category_id in group:
                route = account_routes.get(category_id) or account_routes[None]
                if segments > budget:
                    _held[account_id] = _account_frees_at(account, now)
                    break
                provider, at = (
                    _pick(route, step, segments, providers, now) if route else (None, None)
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
        for provider_id, ids in chosen.items():
            Message.objects.filter(id__in=ids, status=Status.QUEUED).update(
                status=Status.SENDING,
                claimed_at=now,
                claim_token=token,
                provider_account_id=provider_id,
                updated_at=now,
            )
        claimed = list(
            Message.objects.filter(claim_token=token, status=Status.SENDING).order_by("id")
        )
        _attach(claimed, accounts, {pk: slot.provider for pk, slot in providers.items()})
        _insert_claim_events(token, now)
    return Claim(claimed, waiting, retry_at, not_before)


def _insert_claim_events(token: str, now) -> None:
    """Each claimed message's `queued → sending` event, written by the database from the
    claimed rows in one statement (nothing per row in Python)."""
    quote, event, message = connection.ops.quote_name, MessageEvent._meta, Message._meta
    provider = ProviderAccount._meta
    columns = ", ".join(
        quote(event.get_field(name).column)
        for name in ("message", "at", "from_status", "to_status", "source", "detail")
    )
    m_id, m_provider = quote(message.pk.column), quote(message.get_field("provider_account").column)
    name = f"p.{quote(provider.get_field('name').column)}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(event.db_table)} ({columns}) "  # noqa: S608 (names only)
            f"SELECT m.{m_id}, %s, %s, %s, %s, "
            f"'Claimed by a worker for ' || COALESCE({name}, 'no provider') || '.' "
            f"FROM {quote(message.db_table)} m LEFT JOIN {quote(provider.db_table)} p "
            f"ON p.{quote(provider.pk.column)} = m.{m_provider} "
            # `status` first: the partial index of messages being sent finds the claimed rows.
            f"WHERE m.{quote(message.get_field('status').column)} = %s "
            f"AND m.{quote(message.get_field('claim_token').column)} = %s",
            [
                connection.ops.adapt_datetimefield_value(now),
                Status.QUEUED.value,
                Status.SENDING.value,
                Source.DISPATCH.value,
                Status.SENDING.value,
                token,
            ],
        )


def _attach(messages: list[Message], accounts: dict, providers: dict) -> None:
    """Give claimed messages their account, provider account, campaign and category: the same
    object to every message that shares it, loaded once per batch rather than once per row."""
    campaigns = Campaign.objects.in_bulk({m.campaign_id for m in messages if m.campaign_id})
    categories = {}
    if any(m.category_id for m in messages):
        categories = Category.objects.in_bulk({m.category_id for m in messages if m.category_id})
    for message in messages:
        message.account = accounts[message.account_id]
        message.provider_account = providers.get(message.provider_account_id)
        message.campaign = campaigns.get(message.campaign_id)
        message.category = categories.get(message.category_id)


@dataclass
class _Capacity:
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


def _lock_providers(
    routes: dict[int, dict[int | None, list[ProviderAccount]]], now
) -> dict[int, _Capacity]:
    ids = {p.pk for account in routes.values() for route in account.values() for p in route}
    locked = ProviderAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    capacity = {}
    for provider in locked:
        # A provider account on hold takes nothing; otherwise its circuit says how much.
        calls = 0 if provider.on_hold else circuit.allowance(provider.pk)
        slot = _Capacity(provider, float("inf"), calls)
        if provider.max_per_second:
            used, slot.frees = _provider_second(provider, now)
            slot.free = provider.max_per_second - used
        capacity[provider.pk] = slot
    return capacity


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


def _pick(route, step: int, segments: int, providers: dict[int, _Capacity], now):
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


def _account_budget(account: Account, now) -> float:
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


def _account_frees_at(account: Account, now) -> datetime:
    """When the oldest send still counted in a full window leaves it (a moment later at least)."""
    window = MINUTE if account.flood_limit_per_minute else HOUR
    oldest = Message.objects.filter(account=account, claimed_at__gt=now - window).aggregate(
        oldest=Min("claimed_at")
    )["oldest"]
    return max((oldest or now) + window, now + SECOND)


@dataclass
class Outcome:
    message: Message
    provider_account: ProviderAccount | None
    result: SendResult | None = None
    error: ProviderError | None = None
    reason: str = ""
    blocked: bool = False
    # When the provider's answer came: the message's `sent_at`. The provider had the request by
    # then, so per-second limits count each call until a second after it.
    answered: datetime | None = None


def send_through(
    message: Message,
    provider_account: ProviderAccount,
    sms: OutboundSMS | None = None,
    not_before: datetime | None = None,
) -> Outcome:
    """Send one claimed message through one provider account, outside any transaction (and not
    before `not_before`)."""
    _wait_for(not_before)
    try:
        result = provider_account.adapter().send(sms or outbound(message, provider_account))
    except ProviderError as exc:
        logger.warning(
            "send failed: message=%s provider=%s error=%s",
            message.pk,
            provider_account.name,
            exc.message,
            extra=_log_fields(message, provider_account),
        )
        return Outcome(message, provider_account, error=exc, answered=timezone.now())
    return Outcome(message, provider_account, result=result, answered=timezone.now())


def _wait_for(moment: datetime | None) -> None:
    if moment is not None:
        wait = (moment - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)


@dataclass
class Sending:
    """A claimed batch on its way: its provider calls run on the pool while the caller goes on."""

    messages: list[Message]
    known: dict[int, Outcome]  # outcomes known without a call (opted out, no route)
    calls: list[Future]


def start_sending(claim: Claim) -> Sending:
    """Start the provider calls of a claimed batch; `finish_sending` waits for them.

    What needs the database (opt-outs, each call's content) is read here, in the caller's
    thread: the calls themselves only speak HTTP. A provider account whose adapter takes many
    recipients per call (SMSAdvert) gets its whole share of the batch in `send_many`; other
    messages go one per call, up to `SMSHUB_SEND_CONCURRENCY` calls at a time, each thread with
    its own pooled session.
    """
    messages = claim.messages
    opted_out = set(
        OptOut.objects.filter(
            account_id__in={m.account_id for m in messages},
            number__in={m.recipient for m in messages},
        ).values_list("account_id", "number")
    )
    known: dict[int, Outcome] = {}
    calls: list[Callable[[], Outcome | list[Outcome]]] = []
    grouped: dict[int, list[Message]] = {}
    for message in messages:
        provider_account = message.provider_account
        if (message.account_id, message.recipient) in opted_out:
            reason = "The number opted out of messages from this account: not sent."
            known[message.pk] = Outcome(message, None, reason=reason, blocked=True)
        elif provider_account is None:
            reason = "The account has no enabled provider account in its route."
            known[message.pk] = Outcome(message, None, reason=reason)
        elif provider_account.adapter_class.multi_recipient:
            grouped.setdefault(provider_account.pk, []).append(message)
        else:
            sms = outbound(message, provider_account)
            at = claim.not_before.get(message.pk)
            calls.append(partial(send_through, message, provider_account, sms, at))
    for group in grouped.values():
        at = max((claim.not_before.get(m.pk) for m in group), default=None, key=_moment)
        calls.append(
            partial(send_together, group, [outbound(m, m.provider_account) for m in group], at)
        )
    return Sending(messages, known, _start(calls))


def _moment(at: datetime | None) -> float:
    return at.timestamp() if at else 0.0


def finish_sending(sending: Sending) -> list[Outcome]:
    """Wait for a batch's calls; its outcomes, in the order of its messages."""
    outcomes = dict(sending.known)
    for share in sending.calls:
        for result in share.result():
            for outcome in result if isinstance(result, list) else [result]:
                outcomes[outcome.message.pk] = outcome
    return [outcomes[m.pk] for m in sending.messages]


def send_together(
    messages: list[Message], sms: list[OutboundSMS], not_before: datetime | None = None
) -> list[Outcome]:
    """Send messages of one provider account through its `send_many` (many recipients a call)."""
    _wait_for(not_before)
    provider_account = messages[0].provider_account
    try:
        results = provider_account.adapter().send_many(sms)
    except ProviderError as exc:
        results = [exc] * len(messages)
    answered = timezone.now()
    outcomes = []
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, ProviderError):
            logger.warning(
                "send failed: message=%s provider=%s error=%s",
                message.pk,
                provider_account.name,
                result.message,
                extra=_log_fields(message, provider_account),
            )
            outcomes.append(Outcome(message, provider_account, error=result, answered=answered))
        else:
            outcomes.append(Outcome(message, provider_account, result=result, answered=answered))
    return outcomes


def _log_fields(message: Message, provider_account: ProviderAccount) -> dict:
    """What a JSON log line carries about a message (see `smshub.logging`)."""
    return {
        "message_id": message.pk,
        "account": message.account_id,
        "provider": provider_account.name,
    }


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _start(calls: list[Callable]) -> list[Future]:
    """Start provider calls on the thread pool kept for this process, `SMSHUB_SEND_CONCURRENCY`
    at a time: as many shares as threads, each taking the next call until none is left (a few
    futures a batch, not one per call). In this thread, at once, when the setting is 1."""
    global _pool
    workers = settings.SMSHUB_SEND_CONCURRENCY
    pending = deque(calls)

    def share() -> list:
        results = []
        while True:
            try:
                call = pending.popleft()
            except IndexError:
                return results
            results.append(call())

    if workers <= 1:
        done: Future = Future()
        done.set_result(share())
        return [done]
    if _pool is None or _pool[0] != os.getpid():  # a forked worker child makes its own
        _pool = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="send"))
    return [_pool[1].submit(share) for _ in range(min(workers, len(calls)))]


def outbound(message: Message, provider_account: ProviderAccount) -> OutboundSMS:
    return OutboundSMS(
        to=message.recipient,
        text=message.secret_text or message.text,  # a one-time code is stored apart, encrypted
        reference=str(message.pk),
        sender=message.sender,
        callback_url=provider_account.webhook_url("dlr"),
        campaign_name=message.campaign.name if message.campaign_id else "",
        category=message.category.tag if message.category_id else "",
        send_at=message.scheduled_at,
    )


def record(outcome: Outcome, events: list[MessageEvent] | None = None) -> None:
    """Write what happened to one message.

    A temporary error (network, 5xx, 429) is retried on the same provider account with backoff
    up to `SMSHUB_MAX_ATTEMPTS` times, then the message fails over to the next provider account
    of its route; when the route is spent it fails. A refusal fails at once, with the reason.
    """
    message, now = outcome.message, timezone.now()
    attempts, error = message.attempts + 1, outcome.error
    common = {"source": Source.PROVIDER, "events": events}
    if outcome.provider_account is not None:
        common["provider_account"] = outcome.provider_account
    if outcome.blocked:
        transition(
            message,
            Status.BLOCKED,
            source=Source.DISPATCH,
            detail=outcome.reason,
            events=events,
            error_code="opted_out",
            error_reason=outcome.reason,
        )
    elif outcome.result is not None:
        result = outcome.result
        transition(
            message,
            Status(result.status),
            detail=f"Accepted by {outcome.provider_account.name} as {result.provider_message_id}.",
            payload=result.raw,
            provider_message_id=result.provider_message_id,
            sent_at=outcome.answered or now,
            cost=result.cost,
            attempts=attempts,
            error_code="",
            error_reason="",
            **common,
        )
    elif error is None:
        transition(
            message,
            Status.FAILED,
            source=Source.DISPATCH,
            detail=outcome.reason,
            events=events,
            error_code="no_route",
            error_reason=outcome.reason,
        )
    elif error.error_class == ErrorClass.ACCOUNT:
        _wait_for_route(message, outcome.provider_account, error, attempts, now, common)
    elif not error.retryable:
        transition(
            message,
            Status.FAILED,
            detail=error.message,
            payload=_jsonable(error.raw),
            attempts=attempts,
            error_code=error.code,
            error_reason=error.message,
            **common,
        )
    else:
        _retry_or_fail_over(message, outcome.provider_account, error, attempts, now, common)


def record_accepted(outcomes: list[Outcome], events: list[MessageEvent]) -> list[Outcome]:
    """Record every message a provider accepted as `sent`, with its event, in bulk; return the
    other outcomes for `record`. Runs inside the caller's transaction. Only messages still
    `sending` are moved: one moved meanwhile (to `unknown` by the stuck-message sweep) is left
    as it is."""
    accepted = {
        o.message.pk: o for o in outcomes if o.result is not None and o.result.status == Status.SENT
    }
    if not accepted:
        return outcomes
    now = timezone.now()
    if connection.vendor == "postgresql":
        moved = _record_sent_postgresql(list(accepted.values()), now)
    else:
        moved = _record_sent(list(accepted.values()), now, events)
    for pk in moved:
        outcome = accepted[pk]
        message, result = outcome.message, outcome.result
        message.status, message.sent_at = Status.SENT, outcome.answered or now
        message.provider_message_id, message.attempts = (
            result.provider_message_id,
            (message.attempts + 1),
        )
        if result.cost is not None:
            message.cost = result.cost
    return [o for o in outcomes if o.message.pk not in accepted]


def _accepted_detail(outcome: Outcome) -> str:
    return f"Accepted by {outcome.provider_account.name} as {outcome.result.provider_message_id}."


def _record_sent_postgresql(accepted: list[Outcome], now) -> set[int]:
    """PostgreSQL: the messages moved to `sent` and their events written in one statement, the
    rows passed as one JSON document (a short statement the driver prepares once, rather than
    one that grows with the batch). Returns the ids moved."""
    quote, message, event = connection.ops.quote_name, Message._meta, MessageEvent._meta
    m, e = (
        (lambda name: quote(message.get_field(name).column)),
        (lambda name: quote(event.get_field(name).column)),
    )
    rows = json.dumps(
        [
            {
                "id": o.message.pk,
                "provider_message_id": o.result.provider_message_id,
                "sent_at": (o.answered or now).isoformat(),
                "cost": None if o.result.cost is None else str(o.result.cost),
                "detail": _accepted_detail(o),
                "payload": o.result.raw,
            }
            for o in accepted
        ]
    )
    table = quote(message.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(id bigint, "  # noqa: S608
            "provider_message_id text, sent_at timestamptz, cost numeric, detail text, "
            "payload jsonb)), "
            f"moved AS (UPDATE {table} AS m SET {m('status')} = %s, {m('updated_at')} = %s, "
            f"{m('sent_at')} = v.sent_at, {m('attempts')} = m.{m('attempts')} + 1, "
            f"{m('error_code')} = '', {m('error_reason')} = '', "
            f"{m('provider_message_id')} = v.provider_message_id, "
            f"{m('cost')} = COALESCE(v.cost, m.{m('cost')}) "
            f"FROM v WHERE m.{quote(message.pk.column)} = v.id AND m.{m('status')} = %s "
            f"RETURNING m.{quote(message.pk.column)} AS id) "
            f"INSERT INTO {quote(event.db_table)} ({e('message')}, {e('at')}, "
            f"{e('from_status')}, {e('to_status')}, {e('source')}, {e('detail')}, "
            f"{e('payload')}) SELECT v.id, %s, %s, %s, %s, v.detail, v.payload "
            f"FROM v JOIN moved ON moved.id = v.id RETURNING {e('message')}",
            [
                rows,
                Status.SENT.value,
                now,
                Status.SENDING.value,
                now,
                Status.SENDING.value,
                Status.SENT.value,
                Source.PROVIDER.value,
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def _record_sent(accepted: list[Outcome], now, events: list[MessageEvent]) -> set[int]:
    """Other databases (SQLite): lock, update in one statement, events to `events`."""
    still_sending = set(
        Message.objects.select_for_update()
        .filter(pk__in=[o.message.pk for o in accepted], status=Status.SENDING)
        .values_list("pk", flat=True)
    )
    mine = [o for o in accepted if o.message.pk in still_sending]
    if not mine:
        return set()
    _mark_sent([(o.message.pk, o.result.provider_message_id, o.answered or now) for o in mine], now)
    costs = [o for o in mine if o.result.cost is not None]
    if costs:
        Message.objects.filter(pk__in=[o.message.pk for o in costs]).update(
            cost=Case(*(When(pk=o.message.pk, then=Value(o.result.cost)) for o in costs))
        )
    events.extend(
        MessageEvent(
            message=o.message,
            at=now,
            from_status=Status.SENDING,
            to_status=Status.SENT,
            source=Source.PROVIDER,
            detail=_accepted_detail(o),
            payload=o.result.raw,
        )
        for o in mine
    )
    return still_sending


def _mark_sent(rows: list[tuple[int, str, datetime]], now) -> None:
    """Mark messages `sent`, each with its provider id and send time, in one statement (the
    path of databases other than PostgreSQL): UPDATE … FROM VALUES (SQLite since 3.33) costs a
    fraction of Django's CASE WHEN per row."""
    if connection.vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 33):
        Message.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=Status.SENT,
            updated_at=now,
            attempts=F("attempts") + 1,
            error_code="",
            error_reason="",
            provider_message_id=Case(*(When(pk=pk, then=Value(pid)) for pk, pid, _ in rows)),
            sent_at=Case(*(When(pk=pk, then=Value(at)) for pk, _, at in rows)),
        )
        return
    quote, column = connection.ops.quote_name, lambda name: Message._meta.get_field(name).column
    table, adapt = quote(Message._meta.db_table), connection.ops.adapt_datetimefield_value
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {quote(column('status'))} = %s, "  # noqa: S608 (names only)
            f"{quote(column('updated_at'))} = %s, {quote(column('sent_at'))} = v.column3, "
            f"{quote(column('attempts'))} = {quote(column('attempts'))} + 1, "
            f"{quote(column('error_code'))} = '', {quote(column('error_reason'))} = '', "
            f"{quote(column('provider_message_id'))} = v.column2 "
            f"FROM (VALUES {values}) AS v WHERE {table}.{quote('id')} = v.column1",
            [
                Status.SENT.value,
                adapt(now),
                *(x for pk, pid, at in rows for x in (pk, pid, adapt(at))),
            ],
        )


def _canceled_meanwhile(message, error, attempts, common) -> bool:
    """A message of a campaign canceled while it was being sent is not tried again."""
    if not (message.campaign_id and message.campaign.status == Campaign.Status.CANCELED):
        return False
    transition(
        message,
        Status.CANCELED,
        detail=f"{error.message} Campaign canceled: not retried.",
        attempts=attempts,
        error_code=error.code,
        error_reason=error.message,
        **common,
    )
    return True


def _wait_for_route(message, provider_account, error, attempts, now, common) -> None:
    """The provider refused the provider account, not the message: the provider account is put
    on hold, and the message is queued again, to go through the next provider account of its
    route or to wait for the hold to be released. It does not fail, nor spend its retries."""
    if holds.hold(provider_account, error.message, now):
        forget_state()  # routes through it may be blocked now
    if _canceled_meanwhile(message, error, attempts, common):
        return
    transition(
        message,
        Status.QUEUED,
        detail=f"{error.message} {provider_account.name} is on hold: the message goes through "
        "the next provider account of its route, or waits until the hold is released.",
        attempts=attempts,
        next_attempt_at=None,
        error_code=error.code,
        error_reason=error.message,
        payload=_jsonable(error.raw),
        **common,
    )


def _retry_or_fail_over(message, provider_account, error, attempts, now, common) -> None:
    if _canceled_meanwhile(message, error, attempts, common):
        return
    step_attempts = message.step_attempts + 1
    fields = {
        "attempts": attempts,
        "error_code": error.code,
        "error_reason": error.message,
        "payload": _jsonable(error.raw),
    }
    if step_attempts < settings.SMSHUB_MAX_ATTEMPTS:
        delay = max(backoff(step_attempts), getattr(error, "retry_after", None) or 0)
        transition(
            message,
            Status.RETRYING,
            detail=f"{error.message} Trying {provider_account.name} again in {delay:.0f} s.",
            step_attempts=step_attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            **fields,
            **common,
        )
        return
    route = message.account.route(message.category_id)
    position = next((i for i, p in enumerate(route) if p.pk == provider_account.pk), -1)
    if 0 <= position < len(route) - 1:
        following = route[position + 1]
        transition(
            message,
            Status.RETRYING,
            detail=f"{error.message} {provider_account.name} failed {step_attempts} times: "
            f"failing over to {following.name}.",
            route_step=position + 1,
            step_attempts=0,
            next_attempt_at=now,
            **fields,
            **common,
        )
        return
    transition(
        message,
        Status.FAILED,
        detail=f"{error.message} Retries spent on every provider account of the route.",
        **fields,
        **common,
    )


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter, in seconds: 10 s, 20 s, 40 s ... (max 1 h)."""
    ceiling = min(settings.SMSHUB_RETRY_BASE_DELAY * 2 ** (attempts - 1), 3600)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def dispatch_batch(limit: int | None = None) -> int:
    """Claim one batch, send it, record it. Returns how many messages were claimed."""
    return dispatch_once(limit).claimed


@dataclass
class Batch:
    claimed: int
    waiting: bool
    retry_at: datetime | None = None


def dispatch_once(limit: int | None = None) -> Batch:
    """Claim one batch, send it and record it, one step after the other."""
    claim = claim_batch(limit or settings.SMSHUB_DISPATCH_BATCH_SIZE)
    _finish(start_sending(claim))
    return Batch(len(claim.messages), claim.waiting, claim.retry_at)


def dispatch_for(seconds: float, after_batch: Callable[[Batch], object] | None = None) -> int:
    """Claim, send and record batch after batch until nothing is due or `seconds` have passed;
    returns how many messages were claimed. `after_batch` is called after every claim.

    Each batch is claimed, and its calls queued, while the batch before is still being sent,
    and recorded once its calls are done: the calls never wait on the database. A claim that
    finds only messages waiting for a provider's per-second budget is tried again when budget
    frees.
    """
    deadline = time.monotonic() + seconds
    total, pending = 0, []
    try:
        while True:
            claim = Claim([])
            if time.monotonic() < deadline:
                claim = claim_batch(settings.SMSHUB_DISPATCH_BATCH_SIZE)
            if claim.messages:
                pending.append(start_sending(claim))
            if len(pending) > 1 or (pending and not claim.messages):
                _finish(pending.pop(0))
            total += len(claim.messages)
            if after_batch is not None:
                after_batch(Batch(len(claim.messages), claim.waiting, claim.retry_at))
            if not pending:
                if not claim.waiting or time.monotonic() >= deadline:
                    return total
                time.sleep(_until(claim.retry_at))
    finally:
        _finish_all(pending)  # an error on the way: what was sent is still recorded


def _finish(sending: Sending) -> None:
    record_batch(sending.messages, finish_sending(sending))


def _finish_all(pending: list[Sending]) -> None:
    """Record every batch still on its way, each whatever happens to the others (an error on
    the way out must not leave the next batches `sending`)."""
    while pending:
        try:
            _finish(pending.pop(0))
        except Exception:
            logger.exception("could not record a sent batch: its messages become unknown")


def _until(moment: datetime | None) -> float:
    """Seconds to wait for `moment` (a few milliseconds at least, a tenth of a second at most:
    another worker may take the freed budget, or free some sooner)."""
    if moment is None:
        return 0.1
    return min(max((moment - timezone.now()).total_seconds(), 0.005), 0.1)


def record_batch(messages: list[Message], outcomes: list[Outcome]) -> None:
    """Record a sent batch in one transaction (events in bulk), then what follows from it:
    circuit breakers, delivery reports that came first, the campaigns' statuses.

    One message's answer never costs the others theirs: what a provider answered is first made
    storable (`_storable`), and should the database still refuse the batch, each message is
    recorded alone; a message the provider accepted is recorded as sent in any case."""
    outcomes = [_storable(outcome) for outcome in outcomes]
    saved = [(outcome.message, dict(vars(outcome.message))) for outcome in outcomes]
    try:
        _record_together(outcomes)
    except RECORDING_ERRORS:
        logger.exception("could not record a batch of %s: recording each alone", len(outcomes))
        for message, state in saved:  # what the failed attempt wrote on them was rolled back
            vars(message).update(state)
        for outcome in outcomes:
            _record_alone(outcome)
    _update_circuits(outcomes)
    apply_waiting_reports(outcomes)
    for campaign in {m.campaign_id: m.campaign for m in messages if m.campaign_id}.values():
        campaign_control.refresh_status(campaign)


# What recording one outcome can meet besides a lost database: a value the database refuses
# (DataError, IntegrityError) or one that cannot be written as JSON.
RECORDING_ERRORS = (DatabaseError, TypeError, ValueError)


def _record_together(outcomes: list[Outcome]) -> None:
    events: list[MessageEvent] = []
    with transaction.atomic():
        for outcome in record_accepted(outcomes, events):
            record(outcome, events)
        MessageEvent.objects.bulk_create(events)


def _record_alone(outcome: Outcome) -> None:
    """Record one outcome in its own transaction; a provider's acceptance that still cannot be
    stored whole is recorded as a bare `sent`, with why."""
    state = dict(vars(outcome.message))
    try:
        _record_together([outcome])
        return
    except RECORDING_ERRORS as exc:
        logger.exception("could not record message %s", outcome.message.pk)
        vars(outcome.message).update(state)
        problem = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    if outcome.result is None:
        return  # not sent: it stays `sending`, then becomes `unknown`, with nothing lost
    try:
        transition(
            outcome.message,
            Status.SENT,
            source=Source.PROVIDER,
            detail=f"Accepted by {outcome.provider_account.name}, but its answer could not be "
            f"stored ({problem}): delivery reports cannot find this message.",
            provider_account=outcome.provider_account,
            sent_at=outcome.answered or timezone.now(),
            attempts=outcome.message.attempts + 1,
        )
    except RECORDING_ERRORS:
        logger.exception("could not record message %s as sent", outcome.message.pk)


def _storable(outcome: Outcome) -> Outcome:
    """The outcome with what the provider said made fit for the database: a provider id and an
    error code within their columns, a cost within its digits, payloads as JSON without NUL
    characters. The provider's answer stays whole in the event's payload."""
    if outcome.result is not None:
        result = outcome.result
        raw = _json_safe(result.raw)
        provider_id = _text(result.provider_message_id)
        if len(provider_id) > PROVIDER_ID_LENGTH:
            raw = {"answer": raw, "provider_message_id": provider_id}
            provider_id = provider_id[:PROVIDER_ID_LENGTH]
        cost = result.cost
        if cost is not None and not (
            isinstance(cost, Decimal) and cost.is_finite() and abs(cost) < MAX_COST
        ):
            cost = None
        outcome.result = replace(result, provider_message_id=provider_id, cost=cost, raw=raw)
    if outcome.error is not None:
        error = outcome.error
        error.code = _text(error.code)[:ERROR_CODE_LENGTH]
        error.message = _text(error.message)
        error.raw = _json_safe(error.raw)
    return outcome


PROVIDER_ID_LENGTH = Message._meta.get_field("provider_message_id").max_length
ERROR_CODE_LENGTH = Message._meta.get_field("error_code").max_length
MAX_COST = Decimal(10) ** (
    Message._meta.get_field("cost").max_digits - Message._meta.get_field("cost").decimal_places
)


def _text(value) -> str:
    return ("" if value is None else str(value)).replace("\x00", "")


def _json_safe(value):
    """`value` as JSON the database takes: strings without NUL characters (PostgreSQL's JSON
    refuses them), anything else written as text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _text(repr(value))[:10_000]
    return _without_nul(json.loads(text)) if "\\u0000" in text else json.loads(text)


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _update_circuits(outcomes: list[Outcome]) -> None:
    """Each provider account's answers in send order: a refusal is an answer too; only
    temporary errors (network, 5xx, 429) count as failures."""
    results: dict[int, list[bool]] = {}
    for outcome in outcomes:
        if outcome.provider_account is not None:
            failed = outcome.error is not None and outcome.error.retryable
            results.setdefault(outcome.provider_account.pk, []).append(not failed)
    for provider_id, answers in results.items():
        circuit.record_batch(provider_id, answers)


def apply_waiting_reports(outcomes: list[Outcome]) -> int:
    """Delivery reports that overtook their send result are applied now (one query per batch)."""
    sent = {
        (o.provider_account.pk, o.result.provider_message_id): o.provider_account
        for o in outcomes
        if o.result is not None and o.result.provider_message_id
    }
    if not sent:
        return 0
    waiting = set(
        PendingDeliveryReport.objects.filter(
            provider_message_id__in={key[1] for key in sent}
        ).values_list("provider_account_id", "provider_message_id")
    )
    return sum(apply_pending_reports(sent[key], key[1]) for key in waiting if key in sent)


def promote_due(now=None) -> int:
    """Scheduled messages whose time has come, and retries whose wait is over, become `queued`."""
    now = now or timezone.now()
    moved = 0
    for status, time_field in (
        (Status.SCHEDULED, "scheduled_at"),
        (Status.RETRYING, "next_attempt_at"),
    ):
        due = Message.objects.filter(status=status, **{f"{time_field}__lte": now})
        for message in due.only("id", "status")[:10_000]:
            moved += transition(message, Status.QUEUED, source=Source.SYSTEM, detail="Due to send.")
    return moved


def expire_windows(now=None) -> int:
    """Messages whose send window ended before they could be sent become `expired`."""
    now = now or timezone.now()
    waiting = Message.objects.filter(
        status__in=[Status.SCHEDULED, Status.QUEUED, Status.RETRYING], window_end__lt=now
    )
    events: list[MessageEvent] = []
    with transaction.atomic():
        moved = sum(
            transition(
                message,
                Status.EXPIRED,
                source=Source.SYSTEM,
                detail="The send window ended before the message could be sent.",
                events=events,
                error_code="window_ended",
                error_reason="The send window ended before the message could be sent.",
            )
            for message in waiting.select_related("account").only(
                "id", "status", "account__forward_url"
            )[:10_000]
        )
        MessageEvent.objects.bulk_create(events)
    return moved


def expire_stuck_sending(now=None) -> int:
    """A message `sending` for too long (a worker died mid-call) becomes `unknown`: never resent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SMSHUB_SENDING_TIMEOUT)
    moved = 0
    for message in Message.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff).only(
        "id", "status"
    ):
        moved += transition(
            message,
            Status.UNKNOWN,
            source=Source.SYSTEM,
            detail="No send result recorded in time: the provider may or may not have it. "
            "Check with the provider before sending again.",
        )
    return moved


def due_count(now=None) -> int:
    return due_messages(now or timezone.now()).count()


def _jsonable(value):
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    return str(value)


def resend(message: Message, by=None) -> bool:
    """Queue a message whose outcome is `unknown` again, on a staff member's explicit request
    (the provider may have it already: never done automatically). False for any other status."""
    if message.status != Status.UNKNOWN:
        return False
    who = f" by {by}" if by is not None else ""
    moved = transition(
        message,
        Status.QUEUED,
        source=Source.STAFF,
        detail=f"Sent again on request{who}; its earlier outcome was unknown.",
        next_attempt_at=None,
        step_attempts=0,
    )
    if moved:
        transaction.on_commit(nudge_dispatcher, robust=True)
    return moved
