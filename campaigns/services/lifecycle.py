"""The only writer of a message's status: one message, or many at once, each move as
`campaigns.statuses` allows (a move it does not is a bug: `IllegalMove`), each with its event.

Every move is conditional on the status the writer saw, so two writers (a worker and a webhook,
two webhooks) never both win. Messages that reach a final status are forwarded to their
account's URL when it has one.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns import statuses
from campaigns.models import Forward, Message, MessageEvent
from providers.models import ProviderAccount

from . import forwarding, rows

Status = statuses.Status
Source = MessageEvent.Source


class IllegalMove(ValueError):
    """A move `campaigns.statuses.MOVES` does not allow: a bug in the writer, never data."""


def check(from_status: str, to_status: str) -> None:
    if not statuses.allowed(from_status, to_status):
        raise IllegalMove(f"a message does not move from {from_status} to {to_status}")


def check_initial(status: str) -> None:
    if status not in statuses.INITIAL:
        raise IllegalMove(f"a message is not created {status}")


def transition(
    message: Message,
    to_status: str,
    *,
    source: str,
    detail: str = "",
    payload: Any = None,
    events: list[MessageEvent] | None = None,
    **fields: Any,
) -> bool:
    """Move `message` to `to_status` if nobody else moved it first; record the event.

    Returns False, changing nothing, when the message had moved on. A caller applying many
    changes in one transaction may pass `events` to collect the events and `bulk_create` them.
    """
    from_status = message.status
    check(from_status, to_status)
    now = timezone.now()
    # No savepoint of its own: inside a caller's transaction, the caller's commit is ours.
    with transaction.atomic(savepoint=False):
        updated = Message.objects.filter(pk=message.pk, status=from_status).update(
            status=to_status, updated_at=now, **fields
        )
        if not updated:
            return False
        event = MessageEvent(
            message=message,
            at=now,
            from_status=from_status,
            to_status=to_status,
            source=source,
            detail=detail,
            payload=payload,
        )
        if events is None:
            event.save()
        else:
            events.append(event)
    message.status = to_status
    for name, value in fields.items():
        setattr(message, name, value)
    if to_status in statuses.FINAL:
        forwarding.enqueue_status(message)
    return True


def note(message: Message, *, source: str, detail: str, payload: Any = None) -> None:
    """Record something on the timeline without changing the status."""
    MessageEvent.objects.create(
        message=message,
        from_status=message.status,
        to_status=message.status,
        source=source,
        detail=detail,
        payload=payload,
    )


# --- many messages at once ---------------------------------------------------------------------


def claim(chosen: dict[int | None, list[int]], token: str, now: datetime) -> list[Message]:
    """`queued → sending` for the messages of one claim, each with the provider account it is
    for (`chosen`: provider account id → message ids), marked with the claim's `token`, and
    their events; returns the messages moved, in id order. On PostgreSQL one statement does it
    all (moves, events, rows back); elsewhere an UPDATE per provider account, the events written
    by the database from the claimed rows, and the rows read back."""
    check(Status.QUEUED, Status.SENDING)
    if connection.vendor == "postgresql":
        return _claim_postgresql(chosen, token, now)
    for provider_id, ids in chosen.items():
        Message.objects.filter(id__in=ids, status=Status.QUEUED).update(
            status=Status.SENDING,
            claimed_at=now,
            claim_token=token,
            provider_account_id=provider_id,
            updated_at=now,
        )
    m, quote = _names(Message), connection.ops.quote_name
    events, detail, join = _claim_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {events} SELECT m.{m('id')}, %s, %s, %s, %s, {detail} "  # noqa: S608
            f"FROM {quote(Message._meta.db_table)} m {join} "
            # `status` first: the partial index of messages being sent finds the claimed rows.
            f"WHERE m.{m('status')} = %s AND m.{m('claim_token')} = %s",
            [
                connection.ops.adapt_datetimefield_value(now),
                Status.QUEUED.value,
                Status.SENDING.value,
                Source.DISPATCH.value,
                Status.SENDING.value,
                token,
            ],
        )
    return list(Message.objects.filter(claim_token=token, status=Status.SENDING).order_by("id"))


def _claim_postgresql(
    chosen: dict[int | None, list[int]], token: str, now: datetime
) -> list[Message]:
    m, quote = _names(Message), connection.ops.quote_name
    events, detail, join = _claim_sql()
    ids = [message_id for message_ids in chosen.values() for message_id in message_ids]
    providers = [provider for provider, message_ids in chosen.items() for _ in message_ids]
    columns = ", ".join(f"m.{quote(f.column)}" for f in Message._meta.concrete_fields)
    return list(
        Message.objects.raw(
            # Arrays, not a placeholder per message: the same statement text for every claim.
            "WITH c AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS c(id, provider)), "  # noqa: S608
            f"moved AS (UPDATE {quote(Message._meta.db_table)} m SET {m('status')} = %s, "
            f"{m('claimed_at')} = %s, {m('claim_token')} = %s, "
            f"{m('provider_account')} = c.provider, {m('updated_at')} = %s "
            f"FROM c WHERE m.{m('id')} = c.id AND m.{m('status')} = %s RETURNING {columns}), "
            f"events AS (INSERT INTO {events} SELECT m.{m('id')}, %s, %s, %s, %s, {detail} "
            f"FROM moved m {join}) "
            f"SELECT * FROM moved ORDER BY {m('id')}",
            [
                ids,
                providers,
                Status.SENDING.value,
                now,
                token,
                now,
                Status.QUEUED.value,
                now,
                Status.QUEUED.value,
                Status.SENDING.value,
                Source.DISPATCH.value,
            ],
        )
    )


def _claim_sql() -> tuple[str, str, str]:
    """The claim's events table and columns, the detail written for each, and the join that
    finds its provider account's name (for a message aliased `m`)."""
    quote, event, provider = (
        connection.ops.quote_name,
        _names(MessageEvent),
        _names(ProviderAccount),
    )
    columns = ", ".join(
        event(name) for name in ("message", "at", "from_status", "to_status", "source", "detail")
    )
    table = quote(ProviderAccount._meta.db_table)
    return (
        f"{quote(MessageEvent._meta.db_table)} ({columns})",
        f"'Claimed by a worker for ' || COALESCE(p.{provider('name')}, 'no provider') || '.'",
        f"LEFT JOIN {table} p ON p.{provider('id')} = m.{_names(Message)('provider_account')}",
    )


@dataclass(frozen=True)
class Sent:
    """A message a provider accepted, as recorded: storable values (see dispatch.accepted)."""

    message_id: int
    provider_message_id: str
    sent_at: datetime
    cost: Decimal | None
    detail: str
    payload: Any


def mark_sent(rows: list[Sent], now: datetime, events: list[MessageEvent]) -> set[int]:
    """`sending → sent` for messages providers accepted, each with its provider id, time and
    cost, in one statement, inside the caller's transaction; returns the ids moved. A message
    no longer `sending` (made `unknown` by the sweep meanwhile) is left as it is. On PostgreSQL
    the events are written by the same statement; elsewhere they are added to `events`."""
    check(Status.SENDING, Status.SENT)
    if not rows:
        return set()
    if connection.vendor == "postgresql":
        return _mark_sent_postgresql(rows, now)
    return _mark_sent_values(rows, now, events)


def _names(model) -> Callable[[str], str]:
    quote = connection.ops.quote_name
    return lambda name: quote(model._meta.get_field(name).column)


def _mark_sent_postgresql(rows: list[Sent], now: datetime) -> set[int]:
    """The rows passed as one JSON document: a short statement the driver prepares once,
    rather than one that grows with the batch (psycopg does not cache queries over 4 KB)."""
    m, e, quote = _names(Message), _names(MessageEvent), connection.ops.quote_name
    document = json.dumps(
        [
            {
                "id": row.message_id,
                "provider_message_id": row.provider_message_id,
                "sent_at": row.sent_at.isoformat(),
                "cost": None if row.cost is None else str(row.cost),
                "detail": row.detail,
                "payload": row.payload,
            }
            for row in rows
        ]
    )
    table, pk = quote(Message._meta.db_table), quote(Message._meta.pk.column)
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
            f"FROM v WHERE m.{pk} = v.id AND m.{m('status')} = %s RETURNING m.{pk} AS id) "
            f"INSERT INTO {quote(MessageEvent._meta.db_table)} ({e('message')}, {e('at')}, "
            f"{e('from_status')}, {e('to_status')}, {e('source')}, {e('detail')}, "
            f"{e('payload')}) SELECT v.id, %s, %s, %s, %s, v.detail, v.payload "
            f"FROM v JOIN moved ON moved.id = v.id RETURNING {e('message')}",
            [
                document,
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


def _mark_sent_values(rows: list[Sent], now: datetime, events: list[MessageEvent]) -> set[int]:
    """Other databases (SQLite): the rows still `sending` locked, then moved in one
    UPDATE … FROM (VALUES …), a fraction of what Django's CASE WHEN per row costs."""
    still_sending = set(
        Message.objects.select_for_update()
        .filter(pk__in=[row.message_id for row in rows], status=Status.SENDING)
        .values_list("pk", flat=True)
    )
    mine = [row for row in rows if row.message_id in still_sending]
    if not mine:
        return set()
    m, quote, ops = _names(Message), connection.ops.quote_name, connection.ops
    cost_field = Message._meta.get_field("cost")

    def cost(value: Decimal | None):
        return ops.adapt_decimalfield_value(value, cost_field.max_digits, cost_field.decimal_places)

    table = quote(Message._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s)"] * len(mine))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {m('status')} = %s, {m('updated_at')} = %s, "  # noqa: S608
            f"{m('sent_at')} = v.column3, {m('attempts')} = {m('attempts')} + 1, "
            f"{m('error_code')} = '', {m('error_reason')} = '', "
            f"{m('provider_message_id')} = v.column2, "
            f"{m('cost')} = COALESCE(v.column4, {table}.{m('cost')}) "
            f"FROM (VALUES {values}) AS v WHERE {table}.{quote('id')} = v.column1",
            [
                Status.SENT.value,
                ops.adapt_datetimefield_value(now),
                *(
                    x
                    for row in mine
                    for x in (
                        row.message_id,
                        row.provider_message_id,
                        ops.adapt_datetimefield_value(row.sent_at),
                        cost(row.cost),
                    )
                ),
            ],
        )
    events.extend(
        MessageEvent(
            message_id=row.message_id,
            at=now,
            from_status=Status.SENDING,
            to_status=Status.SENT,
            source=Source.PROVIDER,
            detail=row.detail,
            payload=row.payload,
        )
        for row in mine
    )
    return still_sending


def cancel_waiting(
    waiting: Iterable[tuple[int, str]], now: datetime, *, source: str, detail: str
) -> int:
    """Cancel messages not yet handed to a provider (`(id, status)` as the caller read and
    locked them), with their events; returns how many moved. Each status group moves in one
    UPDATE, conditional on that status, and its events are written in one INSERT (on PostgreSQL
    the ids go as one array each time: a campaign of a million messages is canceled in two
    statements a status, not in statements as long as the campaign)."""
    by_status: dict[str, list[int]] = {}
    for message_id, status in waiting:
        if status not in statuses.CANCELABLE:
            raise IllegalMove(f"a {status} message is handed to a provider: not canceled")
        check(status, Status.CANCELED)
        by_status.setdefault(status, []).append(message_id)
    moved = 0
    for status, ids in by_status.items():
        canceled = _cancel_group(ids, status, now)
        if not canceled:
            continue
        event = MessageEvent(
            at=now, from_status=status, to_status=Status.CANCELED, source=source, detail=detail
        )
        rows.insert_alike(event, {"message": canceled})
        moved += len(canceled)
    return moved


def _cancel_group(ids: list[int], status: str, now: datetime) -> list[int]:
    """`status → canceled` for the messages `ids` still in `status`; returns the ids moved."""
    if connection.vendor != "postgresql":
        # As many ids a statement as the database takes parameters (SQLite: 32,766 by default,
        # 250,000 in Debian's build), the status one of them; the caller holds the write lock.
        limit = connection.features.max_query_params
        canceled, per_statement = [], max(1, limit - 1) if limit else len(ids)
        for start in range(0, len(ids), per_statement):
            chunk = ids[start : start + per_statement]
            moving = Message.objects.filter(id__in=chunk, status=status)
            canceled += moving.values_list("id", flat=True)
            moving.update(status=Status.CANCELED, updated_at=now)
        return canceled
    m, quote = _names(Message), connection.ops.quote_name
    table, pk = quote(Message._meta.db_table), quote(Message._meta.pk.column)
    with rows.binding_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {m('status')} = %s, {m('updated_at')} = %s "  # noqa: S608
            f"WHERE {pk} = ANY(%s::bigint[]) AND {m('status')} = %s RETURNING {pk}",
            [Status.CANCELED.value, now, ids, status],
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class _Moving:
    message: Message
    from_status: str  # as the database had it when the batch read the message
    fields: dict[str, Any]
    events: list[MessageEvent]


class Moves:
    """Many messages' moves written together: what `transition` does for one message, for a
    batch of delivery reports. `move` checks each move and applies it to the message in memory
    at once (a second report for the same message in the batch sees the first's status);
    `write` then moves every message in one statement per kind of move (one for a batch of
    `sent → delivered`), each conditional on the status the batch read, and records the events
    of the messages moved (all of a message's, in order, or none). Inside the caller's
    transaction."""

    def __init__(self) -> None:
        self._moving: dict[int, _Moving] = {}

    def move(
        self,
        message: Message,
        to_status: str,
        *,
        source: str,
        detail: str = "",
        payload: Any = None,
        **fields: Any,
    ) -> None:
        check(message.status, to_status)
        moving = self._moving.get(message.pk)
        if moving is None:
            moving = self._moving[message.pk] = _Moving(message, message.status, {}, [])
        moving.events.append(
            MessageEvent(
                message=message,
                at=timezone.now(),
                from_status=message.status,
                to_status=to_status,
                source=source,
                detail=detail,
                payload=payload,
            )
        )
        moving.fields.update(fields)
        message.status = to_status
        for name, value in fields.items():
            setattr(message, name, value)

    def write(self) -> set[int]:
        """Write the moves; returns the ids of the messages moved. A message another writer
        moved meanwhile is left as that writer left it, without these events."""
        groups: dict[tuple, list[_Moving]] = {}
        for moving in self._moving.values():
            kind = (moving.from_status, moving.message.status, tuple(sorted(moving.fields)))
            groups.setdefault(kind, []).append(moving)
        now, moved = timezone.now(), set()
        for (from_status, to_status, names), group in groups.items():
            moved |= _move_group(group, from_status, to_status, names, now)
        rows.insert_all(
            [
                event
                for moving in self._moving.values()
                if moving.message.pk in moved
                for event in moving.events
            ]
        )
        Forward.objects.bulk_create(
            forward
            for moving in self._moving.values()
            if moving.message.pk in moved and moving.message.status in statuses.FINAL
            if (forward := forwarding.status_forward(moving.message)) is not None
        )
        self._moving = {}
        return moved


def _exact(value: Any) -> str:
    """A value for PostgreSQL to read back exactly (times to the microsecond: Django's JSON
    encoder keeps milliseconds only)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _move_group(
    group: list[_Moving], from_status: str, to_status: str, names: tuple[str, ...], now: datetime
) -> set[int]:
    """`from_status → to_status` for the messages of `group`, each with its own values of the
    fields `names`; returns the ids moved. PostgreSQL: one statement, its rows one JSON
    document (so that the statement stays the same whatever the batch's size); elsewhere an
    UPDATE per message."""
    if connection.vendor != "postgresql":
        return {
            moving.message.pk
            for moving in group
            if Message.objects.filter(pk=moving.message.pk, status=from_status).update(
                status=to_status, updated_at=now, **moving.fields
            )
        }
    m, quote = _names(Message), connection.ops.quote_name
    fields = [Message._meta.get_field(name) for name in names]
    document = json.dumps(
        [
            {
                "id": moving.message.pk,
                **{
                    field.attname: field.get_db_prep_save(moving.fields[field.name], connection)
                    for field in fields
                },
            }
            for moving in group
        ],
        default=_exact,
    )
    record = ", ".join(
        [
            "id bigint",
            *(f"{quote(field.attname)} {field.cast_db_type(connection)}" for field in fields),
        ]
    )
    assignments = "".join(f", {quote(field.column)} = v.{quote(field.attname)}" for field in fields)
    table, pk = quote(Message._meta.db_table), quote(Message._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET {m('status')} = %s, {m('updated_at')} = %s{assignments} "  # noqa: S608
            f"FROM jsonb_to_recordset(%s::jsonb) AS v({record}) "
            f"WHERE m.{pk} = v.id AND m.{m('status')} = %s RETURNING m.{pk}",
            [to_status, now, document, from_status],
        )
        return {row[0] for row in cursor.fetchall()}
