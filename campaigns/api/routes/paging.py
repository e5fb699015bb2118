"""Cursor pagination: newest first, a page ends with the cursor of the next (older) page."""

from django.db.models import QuerySet

from ..errors import invalid
from ..schemas import MAX_ID


def page(queryset: QuerySet, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """Up to `limit` rows older than `cursor` (newest first), and the next page's cursor.

    The cursor is the id of the last row shown: opaque to clients, stable while rows are added.
    """
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()) or not 0 < int(cursor) <= MAX_ID:
            raise invalid({"cursor": ["Not a cursor this API gave: pass `next_cursor` as is."]})
        queryset = queryset.filter(pk__lt=int(cursor))
    rows = list(queryset.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].pk) if more else None
