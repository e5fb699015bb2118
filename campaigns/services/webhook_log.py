"""The webhook log: every provider request stored as received, then processed; replayable."""

import dataclasses
import io
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.utils.http import parse_header_parameters

from campaigns import timerange
from campaigns.models import PendingDeliveryReport, Reply, WebhookRequest
from providers.events import DeliveryReport, InboundSMS
from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

from . import lifecycle, rows
from .delivery import Applied, apply_delivery_report, apply_to_message, match
from .inbound import receive_inbound
from .wake import wake

logger = logging.getLogger(__name__)

# Headers that may carry secrets are not stored.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})

Kind, Status = WebhookRequest.Kind, WebhookRequest.Status


# Deeper than this, a provider's payload is refused: stored again as JSON (events, replies) it
# would come near Python's recursion limit in a worker. Real payloads are a few levels deep.
MAX_DEPTH = 32


# A provider id longer than its column is refused: cut, it could name another message.
MAX_ID_LENGTH = PendingDeliveryReport._meta.get_field("provider_message_id").max_length
# Other fields kept in columns of limited length are cut to fit.
CUT: dict[type, dict[str, int]] = {
    DeliveryReport: {"error_code": PendingDeliveryReport._meta.get_field("error_code").max_length},
    InboundSMS: {"to_number": Reply._meta.get_field("to_number").max_length},
}


def parse(provider_account: ProviderAccount, kind: str, request: HttpRequest) -> list:
    """What the request carries, read by the provider's adapter: reports or replies.

    Raises WebhookValidationError, with the reason, for a body the adapter cannot read (whatever
    it raised), or whose content the hub could not store (see `screened`).
    """
    adapter = provider_account.adapter()
    try:
        if kind == Kind.INBOUND:
            items = adapter.parse_inbound(request)
        elif kind == Kind.QUEUE:
            items = adapter.parse_queue_reports(request.body)
        else:
            items = adapter.parse_delivery_reports(request)
    except WebhookValidationError:
        raise
    except Exception as exc:
        # Adapters refuse with WebhookValidationError; anything else they raise on a body is a
        # refusal all the same (never a 500, the request kept), logged in full to fix them.
        logger.warning(
            "webhook: the %s adapter failed on a %s request of %s",
            adapter.slug,
            kind,
            provider_account.name,
            exc_info=True,
        )
        raise WebhookValidationError(_unreadable(exc)) from exc
    if not items:
        raise WebhookValidationError("the request carries nothing to apply")
    now = timezone.now()
    return [screened(item, now) for item in items]


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the body is nested too deeply to be read"
    detail = str(exc)[:200]
    return f"the body could not be read ({type(exc).__name__}{': ' if detail else ''}{detail})"


def screened(item: DeliveryReport | InboundSMS, now: datetime) -> DeliveryReport | InboundSMS:
    """A report or reply as the hub can store it.

    Refused (WebhookValidationError) with a NUL character, a provider id longer than
    `MAX_ID_LENGTH` or a payload nested deeper than `MAX_DEPTH`. Fields in `CUT` are cut to
    their column; a time out of `timerange.believable` range is dropped (the time received is
    used instead).
    """
    for field in dataclasses.fields(item):
        value = getattr(item, field.name)
        if isinstance(value, str) and "\x00" in value:
            label = field.name.replace("_", " ")
            raise WebhookValidationError(f"the {label} holds a NUL character (\\u0000)")
    if len(item.provider_message_id) > MAX_ID_LENGTH:
        raise WebhookValidationError(
            f"the provider message id is longer than {MAX_ID_LENGTH} characters"
        )
    _check_payload(item.raw)
    changes: dict[str, Any] = {
        name: getattr(item, name)[:limit]
        for name, limit in CUT.get(type(item), {}).items()
        if len(getattr(item, name)) > limit
    }
    for name in ("occurred_at", "received_at"):
        value = getattr(item, name, None)
        if value is not None and timerange.believable(value, now) is None:
            logger.warning("webhook: %s %s is out of range: the time received is used", name, value)
            changes[name] = None
    return dataclasses.replace(item, **changes) if changes else item


def _check_payload(raw: Any) -> None:
    """Refuse a payload nested deeper than `MAX_DEPTH` or holding a NUL (walked without
    recursion: the payload may be as deep as the parser allowed)."""
    stack = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise WebhookValidationError("the body holds a NUL character (\\u0000)")
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise WebhookValidationError(
                    f"the body is nested more than {MAX_DEPTH} levels deep"
                )
            inner = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in inner)


def store(
    provider_account: ProviderAccount,
    kind: str,
    request: HttpRequest,
    *,
    status: str = WebhookRequest.Status.RECEIVED,
    events: int = 0,
    error: str = "",
) -> WebhookRequest | None:
    """Store `request` as received, for `provider_account`, in one statement, if the account is
    still as the caller read it (`ProviderAccount.still_current`): None, having stored nothing,
    when it changed meanwhile (a rotated token, new credentials, disabled or deleted); the
    caller must look it up again."""
    headers = {
        _text(name): _text(value)
        for name, value in request.headers.items()
        if name.lower() not in SECRET_HEADERS
    }
    log = WebhookRequest(
        provider_account=provider_account,
        kind=kind,
        method=request.method,
        content_type=_text(request.META.get("CONTENT_TYPE", ""))[:200],
        headers=headers,
        body=_text(request.body.decode("utf-8", errors="replace")),
        status=status,
        events=events,
        error=error,
        processed_at=timezone.now() if status == WebhookRequest.Status.FAILED else None,
    )
    current = provider_account.still_current(connection)
    row = rows.prepared(log) if status == Status.RECEIVED and _groups_here() else None
    if row is not None and (stored := _group.store(*row, *current)) is not None:
        return log if stored else None
    # Alone: where requests are not grouped, or its group's statement failed (another request's
    # trouble must not be this one's).
    stored = _insert(log, *current)
    if stored is None:  # the ORM writes it, in a transaction with the check
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 WHERE {current[0]}", current[1])
            stored = cursor.fetchone() is not None
            if stored:
                log.save(force_insert=True)
    return log if stored else None


_INSERTS: dict[tuple[str, ...], str] = {}


def _insert(log: WebhookRequest, condition: str, parameters: tuple) -> bool | None:
    """Write `log` in one INSERT … SELECT … WHERE `condition` RETURNING id whose SQL is made
    once per process: what the ORM's `save()` adds to that statement (compiling it, walking the
    fields, signals that no one receives for webhook requests) cost about as much as the insert
    itself. False when `condition` did not hold (nothing written); None, having written
    nothing, where the database cannot return the id or a value needs the ORM."""
    row = rows.prepared(log) if connection.features.can_return_columns_from_insert else None
    if row is None:
        return None
    columns, values = row
    key = (*(column.column for column in columns), condition)
    sql = _INSERTS.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        placeholders = (
            rows.typed_placeholders(columns)
            if connection.vendor == "postgresql"
            else ", ".join(["%s"] * len(columns))
        )
        sql = _INSERTS[key] = (
            f"INSERT INTO {quote(WebhookRequest._meta.db_table)} "
            f"({rows.column_list(columns)}) SELECT {placeholders} WHERE {condition} "
            f"RETURNING {quote(WebhookRequest._meta.pk.column)}"
        )
    with rows.binding_cursor() as cursor:
        cursor.execute(sql, [*values, *parameters])
        row = cursor.fetchone()
    if row is None:
        return False
    log.pk = row[0]
    log._state.adding, log._state.db = False, connection.alias
    return True


# Requests received together are stored together (PostgreSQL, outside a transaction): while one
# request's INSERT runs, the web process's other requests wait for it, then one of them writes
# all that gathered in one statement ("group commit"). Measured with psycopg alone, one statement
# for 2, 4 or 8 requests costs PostgreSQL 0.10, 0.07 or 0.04 ms a request instead of 0.18.
# A request waiting for another to write its group waits as long as that INSERT takes, as it
# would for its own.
GROUP_AT_MOST = 32


def _groups_here() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


@dataclass(eq=False)
class _Waiting:
    values: list
    check: tuple  # the provider account check's parameters
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    leads: bool = False
    stored: bool | None = None  # None until its group's statement ran
    error: bool = False  # that statement failed


class _Group:
    """The requests of this process waiting to be stored, and whether one is writing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._writing = False

    def store(self, columns: tuple, values: list, condition: str, check: tuple) -> bool | None:
        """Store one request's row, with others that gathered meanwhile, if `condition` (the
        provider account check) holds for its `check` parameters: whether it was stored; None,
        having stored nothing, when its group's statement failed."""
        me = _Waiting(values, check)
        with self._lock:
            self._waiting.append(me)
            me.leads, self._writing = not self._writing, True
        if not me.leads:
            me.done.wait()
            if not me.leads:  # written by the leader of its group
                return None if me.error else me.stored
        with self._lock:  # leading: every request that gathered, this one first
            group = self._waiting[:GROUP_AT_MOST]
            del self._waiting[:GROUP_AT_MOST]
        try:
            _write(columns, condition, group)
        except Exception as exc:
            for waiting in group:
                waiting.error = waiting.stored is None
            logger.warning(
                "webhook: %s requests stored together failed (%s): each alone", len(group), exc
            )
        finally:
            with self._lock:
                if self._waiting:  # gathered while this group was written: one of them leads
                    self._waiting[0].leads = True
                    self._waiting[0].done.set()
                else:
                    self._writing = False
            for waiting in group:
                waiting.done.set()
        return None if me.error else me.stored


_group = _Group()
_GROUP_INSERTS: dict[tuple, str] = {}


def _write(columns: tuple, condition: str, group: list[_Waiting]) -> None:
    """One INSERT per provider account state among `group` (nearly always one): all of its rows
    or, if the account changed, none."""
    by_check: dict[tuple, list[_Waiting]] = {}
    for waiting in group:
        by_check.setdefault(waiting.check, []).append(waiting)
    for check, same in by_check.items():
        key = (len(same), *(column.column for column in columns), condition)
        sql = _GROUP_INSERTS.get(key)
        if sql is None:
            row = f"({rows.typed_placeholders(columns)})"
            sql = _GROUP_INSERTS[key] = (
                f"INSERT INTO {connection.ops.quote_name(WebhookRequest._meta.db_table)} "  # noqa: S608
                f"({rows.column_list(columns)}) SELECT * FROM "
                f"(VALUES {', '.join([row] * len(same))}) AS requests WHERE {condition}"
            )
        with rows.binding_cursor() as cursor:
            cursor.execute(sql, [value for w in same for value in w.values] + list(check))
            stored = cursor.rowcount == len(same)
        for waiting in same:
            waiting.stored = stored


def _text(value: str) -> str:
    """Text PostgreSQL can keep: a NUL becomes U+FFFD, as undecodable bytes do."""
    return value.replace("\x00", "\ufffd")


@dataclass
class Result:
    events: int = 0
    applied: int = 0
    pending: int = 0
    error: str = ""


def process(log: WebhookRequest) -> Result:
    """Read a stored request again and apply what it says, in one transaction (a savepoint when
    the caller has one open): all of it or, on a refusal, none of it. A request that cannot be
    applied is marked failed with the reason and raised again as WebhookValidationError; it
    stays replayable."""
    provider_account = log.provider_account
    result = Result()
    try:
        items = parse(provider_account, log.kind, rebuild_request(log))
        result.events = len(items)
        with transaction.atomic():
            for item in items:
                if log.kind == Kind.INBOUND:
                    result.applied += receive_inbound(provider_account, item) is not None
                    continue
                outcome = apply_delivery_report(provider_account, item, webhook_request=log)
                result.applied += outcome == Applied.CHANGED
                result.pending += outcome == Applied.PENDING
            _finish(log, Status.UNMATCHED if result.pending else Status.APPLIED, result)
    except WebhookValidationError as exc:
        _finish(log, Status.FAILED, Result(events=result.events, error=str(exc)))
        raise
    return result


# Requests taken at most in one batch.
BATCH = 500
# After a batch short of `BATCH`, an applying worker waits this long before taking the next one.
GATHER = 0.05


def apply_received(limit: int = BATCH) -> int:
    """Apply stored requests waiting to be applied, oldest first; returns how many were taken.

    Workers on several machines take disjoint batches (SKIP LOCKED on PostgreSQL; SQLite has one
    writer at a time). One commit per batch; one bad request never holds up the others.
    Delivery reports, the bulk of the traffic, are applied with a few queries per batch, their
    messages moved in one statement per kind of move (`lifecycle.Moves`); replies go one
    request at a time.
    """
    with transaction.atomic():
        waiting = WebhookRequest.objects.filter(
            status=Status.RECEIVED, kind__in=[Kind.DLR, Kind.INBOUND, Kind.QUEUE]
        ).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            waiting = waiting.select_for_update(skip_locked=True, of=("self",))
        logs = list(waiting[:limit])
        # One instance per provider account for the whole batch: its secrets decrypted once,
        # not once per request.
        accounts = ProviderAccount.objects.in_bulk({log.provider_account_id for log in logs})
        for log in logs:
            log.provider_account = accounts[log.provider_account_id]
        reports = []
        for log in logs:
            if log.kind == Kind.INBOUND:
                _process_alone(log)
            else:
                reports.append(log)
        if reports:
            try:
                with transaction.atomic():
                    _apply_reports(reports)
            except Exception:
                # One request that cannot be applied must not keep the batch's others waiting
                # (taken again, and failing again, at every run): each is applied alone.
                logger.exception("webhook: a batch of %s reports failed: one by one", len(reports))
                for log in reports:
                    _process_alone(log)
    return len(logs)


def apply_batches(budget: float, linger: float, enough: int | None = None) -> int:
    """What an applying worker runs (`campaigns.apply_webhooks`): `apply_received` batch after
    batch for at most `budget` seconds, until nothing came for `linger` seconds (or `enough`
    requests were taken); returns how many were taken.

    After a batch short of a full one it waits `GATHER` seconds, so that the next batch gathers
    what arrives meanwhile: a batch costs the worker and the database nearly as much for 5
    requests as for 100, so under a stream of reports back-to-back small batches cost twice as
    much a report. A report waits for that at most `GATHER` more.
    """
    started = last_work = time.monotonic()
    total = 0
    while time.monotonic() - started < budget and (enough is None or total < enough):
        taken = apply_received(BATCH)
        total += taken
        if taken:
            last_work = time.monotonic()
        elif time.monotonic() - last_work > linger:
            break
        if taken < BATCH:
            time.sleep(GATHER)
    return total


def _process_alone(log: WebhookRequest) -> None:
    """Apply one stored request (`process`: in a savepoint of its own); one that fails is marked
    failed with the reason (replayable once the cause is fixed), whatever the error."""
    try:
        process(log)
    except WebhookValidationError:
        pass  # marked failed, with why
    except Exception as exc:
        logger.exception("webhook: request %s could not be applied", log.pk)
        error = f"could not be applied ({type(exc).__name__}: {str(exc)[:200]})"
        _finish(log, Status.FAILED, Result(error=error))


def _apply_reports(logs: list[WebhookRequest]) -> None:
    """The batch's reports for messages found by their provider id move in one statement per
    kind of move (`lifecycle.Moves`); the others (matched by number, or waiting for their
    message) are applied one by one after them."""
    now = timezone.now()
    parsed = []
    for log in logs:
        try:
            parsed.append((log, parse(log.provider_account, log.kind, rebuild_request(log))))
        except WebhookValidationError as exc:
            log.status, log.error, log.processed_at = Status.FAILED, str(exc), now
    messages = match(
        {log.provider_account_id for log, _ in parsed},
        {report.provider_message_id for _, reports in parsed for report in reports},
    )
    moves = lifecycle.Moves()
    batched: list[tuple[WebhookRequest, int]] = []  # (request, message id) per move
    alone: list[tuple[WebhookRequest, DeliveryReport]] = []
    for log, items in parsed:
        for report in items:
            message = messages.get((log.provider_account_id, report.provider_message_id))
            if message is None:
                alone.append((log, report))
            elif apply_to_message(message, log.provider_account, report, moves):
                batched.append((log, message.pk))
    moved = moves.write()
    applied, pending = Counter(), Counter()  # per request id
    for log, message_id in batched:
        applied[log.pk] += message_id in moved
    for log, report in alone:
        outcome = apply_delivery_report(log.provider_account, report, webhook_request=log)
        applied[log.pk] += outcome == Applied.CHANGED
        pending[log.pk] += outcome == Applied.PENDING
    for log, items in parsed:
        log.status = Status.UNMATCHED if pending[log.pk] else Status.APPLIED
        log.events, log.applied, log.processed_at = len(items), applied[log.pk], now
    _save_outcomes(logs)


def _save_outcomes(logs: list[WebhookRequest]) -> None:
    """Write what became of each request: one UPDATE per distinct outcome (almost always one
    for a whole batch: applied, one report, one change), rather than `bulk_update`'s CASE per
    row and field, which cost more than applying the reports."""
    groups: dict[tuple, list[int]] = {}
    for log in logs:
        outcome = (log.status, log.error, log.events, log.applied, log.processed_at)
        groups.setdefault(outcome, []).append(log.pk)
    for (status, error, events, applied, processed_at), ids in groups.items():
        WebhookRequest.objects.filter(pk__in=ids).update(
            status=status, error=error, events=events, applied=applied, processed_at=processed_at
        )


def replay(log: WebhookRequest) -> Result:
    """Process a stored request again (after a fix): idempotent, so replaying is always safe."""
    log.replays += 1
    try:
        return process(log)
    except WebhookValidationError as exc:
        return Result(error=str(exc))


NUDGE_INTERVAL = 0.5
_last_nudge = 0.0


def nudge() -> None:
    """Ask a worker to apply what was stored, at most every `NUDGE_INTERVAL` seconds per process
    (the task lingers longer than that, so nothing waits for the sweep). Publishing a task per
    request would cost more than storing the request."""
    global _last_nudge
    now = time.monotonic()
    if now - _last_nudge < NUDGE_INTERVAL:
        return
    _last_nudge = now
    try:
        wake("campaigns.apply_webhooks")
    except Exception:
        logger.warning("could not ask a worker to apply webhooks: the sweep will", exc_info=True)


def _finish(log: WebhookRequest, status: str, result: Result) -> None:
    log.status, log.error = status, result.error
    log.events, log.applied = result.events, result.applied
    log.processed_at = timezone.now()
    log.save(update_fields=["status", "error", "events", "applied", "processed_at", "replays"])


def rebuild_request(log: WebhookRequest) -> HttpRequest:
    """An HttpRequest equal, for an adapter, to the one the provider made."""
    body = log.body.encode("utf-8")
    request = HttpRequest()
    request.method = log.method
    request.path = request.path_info = f"/hooks/{log.provider_account.slug}/…/{log.kind}/"
    request.META = {
        "REQUEST_METHOD": log.method,
        "CONTENT_TYPE": log.content_type,
        "CONTENT_LENGTH": str(len(body)),
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in log.headers.items()
            if name.lower() not in ("content-type", "content-length")
        },
    }
    request.content_type, request.content_params = parse_header_parameters(log.content_type)
    request._stream = io.BytesIO(body)
    request._body = body
    request._read_started = False
    # A plain HttpRequest's POST is an attribute, not parsed on access as a WSGIRequest's is.
    try:
        request._load_post_and_files()
    except MultiPartParserError:
        pass  # the adapter says what is wrong with the body
    else:
        request.POST, request.FILES = request._post, request._files
    return request
