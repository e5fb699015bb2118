"""Rows written with SQL of our own where the ORM's per-row work is the cost (a campaign's
messages, a single API send): the values prepared exactly as the ORM would save them."""

import functools
from collections.abc import Sequence

from django.db import connection
from django.db.models import Field, Model


@functools.cache
def _columns(model: type[Model], without: tuple[str, ...]) -> tuple[Field, ...]:
    meta = model._meta
    return tuple(
        field
        for field in meta.concrete_fields
        if field is not meta.auto_field and field.name not in without
    )


def prepared(
    instance: Model, without: tuple[str, ...] = ()
) -> tuple[tuple[Field, ...], list] | None:
    """The unsaved `instance`'s columns (all concrete fields but its automatic id and those
    named in `without`) and their values as the database takes them; None when a field needs
    more than a plain placeholder (an expression, or a value computed by the database): then
    the ORM must write it."""
    columns = _columns(type(instance), without)
    values = []
    for column in columns:
        value = column.pre_save(instance, add=True)
        if hasattr(value, "resolve_expression") or getattr(column, "get_placeholder_sql", None):
            return None
        values.append(column.get_db_prep_save(value, connection))
    return columns, values


def column_list(columns: Sequence[Field]) -> str:
    return ", ".join(connection.ops.quote_name(column.column) for column in columns)


def typed_placeholders(columns: Sequence[Field]) -> str:
    """`%s::type, ...`: placeholders that say their type where no VALUES list does
    (PostgreSQL's `INSERT ... SELECT`)."""
    return ", ".join(f"%s::{column.cast_db_type(connection)}" for column in columns)
