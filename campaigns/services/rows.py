"""Rows written with SQL of our own where the ORM's per-row work is the cost (a campaign's
messages, a single API send, a canceled campaign's events): the values prepared exactly as the
ORM would save them."""

import copy
import functools
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from types import NoneType

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Field, Model


@functools.cache
def _columns(model: type[Model], without: tuple[str, ...]) -> tuple[Field, ...]:
    meta = model._meta
    return tuple(
        field
        for field in meta.concrete_fields
        if field is not meta.auto_field and field.name not in without
    )


# Fields whose value, of exactly these types, the database takes as it is: `get_db_prep_save`
# would hand it back unchanged, through a dozen calls a column. Exact classes only: a subclass
# (an encrypted text, say) may prepare its values its own way.
_AS_IS: dict[type[Field], tuple[type, ...]] = {
    models.CharField: (str, NoneType),
    models.TextField: (str, NoneType),
    models.IntegerField: (int, NoneType),
    models.PositiveIntegerField: (int, NoneType),
    models.PositiveSmallIntegerField: (int, NoneType),
    models.SmallIntegerField: (int, NoneType),
    models.BigIntegerField: (int, NoneType),
    models.BooleanField: (bool, NoneType),
    models.ForeignKey: (int, NoneType),
}


@functools.cache
def _plan(model: type[Model], without: tuple[str, ...], vendor: str) -> tuple[tuple, ...] | None:
    """Per column: the field, its attribute, whether its value is read as it is (no `pre_save`
    of its own, such as `auto_now_add`) and the value types taken as they are. None when a
    column needs more than a plain placeholder (`get_placeholder_sql`)."""
    as_is = {**_AS_IS, models.DateTimeField: (NoneType,), models.DecimalField: (NoneType,)}
    if vendor == "postgresql" and settings.USE_TZ:  # PostgreSQL takes an aware datetime as it is
        as_is[models.DateTimeField] = (datetime, NoneType)
    plan = []
    for column in _columns(model, without):
        if getattr(column, "get_placeholder_sql", None):
            return None
        reads = type(column).pre_save is Field.pre_save
        plan.append((column, column.attname, reads, as_is.get(type(column), ())))
    return tuple(plan)


def prepared(
    instance: Model, without: tuple[str, ...] = ()
) -> tuple[tuple[Field, ...], list] | None:
    """The unsaved `instance`'s columns (all concrete fields but its automatic id and those
    named in `without`) and their values as the database takes them; None when a field needs
    more than a plain placeholder (an expression, or a value computed by the database): then
    the ORM must write it."""
    plan = _plan(type(instance), without, connection.vendor)
    if plan is None:
        return None
    values = []
    state = instance.__dict__
    for column, attname, reads, as_is in plan:
        value = state[attname] if reads and attname in state else column.pre_save(instance, True)
        if type(value) in as_is and (type(value) is not datetime or value.tzinfo is not None):
            values.append(value)
            continue
        if isinstance(value, Enum) and str in as_is and isinstance(value, str):
            values.append(str.__str__(value))  # a choice (`Message.Status.QUEUED`): its text
            continue
        if hasattr(value, "resolve_expression"):
            return None
        values.append(column.get_db_prep_save(value, connection))
    return _columns(type(instance), without), values


def column_list(columns: Sequence[Field]) -> str:
    return ", ".join(connection.ops.quote_name(column.column) for column in columns)


def typed_placeholders(columns: Sequence[Field]) -> str:
    """`%s::type, ...`: placeholders that say their type where no VALUES list does
    (PostgreSQL's `INSERT ... SELECT`)."""
    return ", ".join(f"%s::{column.cast_db_type(connection)}" for column in columns)


# Runs of a statement on a binding cursor after which it is prepared (psycopg's default).
PREPARE_AFTER = 5


def binding_cursor():
    """On PostgreSQL, a Django cursor whose parameters the server binds itself (psycopg's
    `Cursor`; Django's connections bind on the client); elsewhere Django's usual cursor. A row's
    values go beside the statement instead of being quoted into its text, which took a single
    send 3 to 5 % of its instructions and a stored webhook request a tenth of its CPU (its
    headers and body quoted in Python).

    On a connection kept between requests (`CONN_MAX_AGE` not 0) a statement is prepared once
    it has run `PREPARE_AFTER` times: PostgreSQL then neither parses nor plans it again, a
    quarter of its CPU for a single send (bench/peer.py). Django leaves psycopg's preparing off
    for transaction poolers, which is what `CONN_MAX_AGE=0` is for (docs/deploy.md): there, and
    on connections that last one request anyway, nothing is prepared."""
    db = connections[DEFAULT_DB_ALIAS]  # the thread's connection, looked up once
    if db.vendor != "postgresql":
        return db.cursor()
    db.ensure_connection()
    kept = db.settings_dict["CONN_MAX_AGE"] != 0
    if kept and db.connection.prepare_threshold is None:
        db.connection.prepare_threshold = PREPARE_AFTER
    raw = psycopg.Cursor(db.connection)
    if db.queries_logged:
        return db.make_debug_cursor(raw)
    return db.make_cursor(raw)


_INSERT_ALL: dict[tuple, str] = {}


def insert_all(instances: Sequence[Model]) -> None:
    """Write the unsaved `instances`, all of one model, as `bulk_create` does (their ids set).

    On PostgreSQL in one statement whose parameters are one array per column (`unnest`), each
    value prepared as `prepared` does: the ORM's compiler, which prepares every field of every
    row through a dozen calls and writes a statement as long as the batch, cost a worker more
    than the rows themselves (a batch of delivery reports' events, a batch of sends'). Elsewhere,
    or when a field needs more than a plain placeholder, `bulk_create`.
    """
    if not instances:
        return
    model = type(instances[0])
    made = (
        [prepared(instance) for instance in instances] if connection.vendor == "postgresql" else []
    )
    if not made or any(row is None for row in made):
        model.objects.bulk_create(instances)
        return
    columns = made[0][0]
    key = (model, columns)
    sql = _INSERT_ALL.get(key)
    if sql is None:
        meta, quote = model._meta, connection.ops.quote_name
        arrays = ", ".join(f"%s::{column.cast_db_type(connection)}[]" for column in columns)
        sql = _INSERT_ALL[key] = (
            f"INSERT INTO {quote(meta.db_table)} ({column_list(columns)}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays}) RETURNING {quote(meta.pk.column)}"
        )
    with binding_cursor() as cursor:
        cursor.execute(
            sql, [list(values) for values in zip(*(row for _, row in made), strict=True)]
        )
        ids = [row[0] for row in cursor.fetchall()]
    for instance, pk in zip(instances, ids, strict=True):
        instance.pk = pk
        instance._state.adding, instance._state.db = False, connection.alias


# Rows a statement of `insert_alike` writes at most where the values go inline (not on
# PostgreSQL, whose arrays keep the statement short), and `bulk_create`'s batches there.
ALIKE_BATCH_SIZE = 1000


def insert_alike(template: Model, varying: dict[str, list]) -> list[int]:
    """Insert one row per position of the lists in `varying` (field name → values, all of one
    length): a copy of the unsaved `template` with those fields set; returns the new ids.

    `bulk_create` prepares every field of every row; here the other fields are prepared once,
    which writes a large campaign (or the events of a canceled one) several times faster. On
    PostgreSQL the values go as one array parameter per varying field (`unnest`): a short
    statement, not one that grows with the batch (which the driver would parse again every
    time). A model with fields that need more than a plain placeholder (or values computed by
    the database) goes through `bulk_create`.
    """
    meta = template._meta
    fields = {meta.get_field(name): values for name, values in varying.items()}
    count = len(next(iter(varying.values())))
    row = prepared(template)
    if row is None:
        return _bulk_create_alike(template, fields, count)
    columns, values_of_template = row
    # Column position → its values prepared, in the order of the columns.
    positions = dict(
        sorted(
            (columns.index(f), [f.get_db_prep_save(v, connection) for v in values])
            for f, values in fields.items()
        )
    )
    quote = connection.ops.quote_name
    # Identifiers come from the model, quoted; every value is a parameter.
    insert = f"INSERT INTO {quote(meta.db_table)} ({column_list(columns)}) "
    returning = f" RETURNING {quote(meta.pk.column)}"
    ids: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            selected, arrays, params = [], [], []
            for i, column in enumerate(columns):
                if i in positions:
                    selected.append(f"v{i}")
                    arrays.append(f"%s::{column.cast_db_type(connection)}[]")
                else:
                    selected.append(f"%s::{column.cast_db_type(connection)}")
                    params.append(values_of_template[i])
            names = ", ".join(f"v{i}" for i in positions)
            cursor.execute(
                f"{insert}SELECT {', '.join(selected)} "  # noqa: S608 (names only)
                f"FROM unnest({', '.join(arrays)}) AS v({names}){returning}",
                [*params, *positions.values()],
            )
            return [row[0] for row in cursor.fetchall()]
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        # No more parameters a statement than the database takes (SQLite: 32,766 by default).
        limit = connection.features.max_query_params or ALIKE_BATCH_SIZE * len(columns)
        per_statement = max(1, min(ALIKE_BATCH_SIZE, limit // len(columns)))
        for start in range(0, count, per_statement):
            chunk = range(start, min(start + per_statement, count))
            params = []
            for index in chunk:
                row = values_of_template.copy()
                for position, values in positions.items():
                    row[position] = values[index]
                params.extend(row)
            cursor.execute(
                insert + "VALUES " + ", ".join([row_sql] * len(chunk)) + returning, params
            )
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _bulk_create_alike(template: Model, fields: dict, count: int) -> list[int]:
    made = []
    for index in range(count):
        row = copy.copy(template)
        for varying, values in fields.items():
            setattr(row, varying.attname, values[index])
        made.append(row)
    return [row.pk for row in type(template).objects.bulk_create(made, batch_size=ALIKE_BATCH_SIZE)]
