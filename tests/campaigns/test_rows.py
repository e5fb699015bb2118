"""campaigns/services/rows.py: the values of a row written with SQL of our own are those the ORM
would save, whatever quick path `prepared` takes for them."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from campaigns.models import Message, MessageEvent
from campaigns.services import rows

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


def orm_values(instance, without=()):
    """What the ORM saves for each column `prepared` writes."""
    columns = rows._columns(type(instance), tuple(without))
    return [c.get_db_prep_save(c.pre_save(instance, True), connection) for c in columns]


# Columns whose value is made anew at each saving (the time, an encryption): only their type.
MADE_ANEW = {"created_at", "updated_at", "at", "secret_text"}


def comparable(instance, values, without=()):
    """The values as the database gets them: a choice is its text (psycopg and sqlite3 send a
    str subclass as its text), JSON its document."""
    columns = rows._columns(type(instance), tuple(without))
    return [
        type(v) if c.name in MADE_ANEW else getattr(v, "obj", v)
        for c, v in zip(columns, values, strict=True)
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {},  # every optional column empty: None datetimes, no cost
        {
            "status": Message.Status.SCHEDULED,
            "scheduled_at": datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
            "window_start": datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
            "cost": Decimal("0.0450"),
            "encoding": Message.Encoding.UCS2,
            "secret_text": "Your code is 123456",
            "sender": "Acme",
        },
    ],
)
def test_a_message_row_is_what_the_orm_would_save(fields):
    account = AccountFactory()
    message = Message(account=account, recipient="+33612345678", text="Hi", segments=1, **fields)
    values = rows.prepared(message)[1]
    assert comparable(message, values) == comparable(message, orm_values(message))
    # Where the ORM hands a value to the driver, so does `prepared`: no choice object left.
    assert not any(
        type(v) not in (str, int, bool, type(None)) and isinstance(v, str) for v in values
    )


def test_an_event_row_is_what_the_orm_would_save():
    event = MessageEvent(
        to_status=Message.Status.QUEUED,
        source=MessageEvent.Source.API,
        detail="Queued to send now.",
        payload={"a": [1, None]},
    )
    without = ("message",)
    values = rows.prepared(event, without)[1]
    assert comparable(event, values, without) == comparable(
        event, orm_values(event, without), without
    )
    assert [type(v) for v in values[1:3]] == [str, str]  # the statuses: plain text


def written(events):
    return [
        (e.message_id, e.at, e.from_status, e.to_status, e.source, e.detail, e.payload)
        for e in MessageEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")
    ]


def test_rows_written_together_are_those_bulk_create_writes():
    account = AccountFactory()
    messages = Message.objects.bulk_create(
        Message(account=account, recipient=f"+3361234567{i}", text="Hi", segments=1)
        for i in range(3)
    )
    at = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    def events():  # every kind of value: a choice, empty text, JSON of each shape, none
        payloads = [{"a": [1, None], "é": "ü"}, None, ["x", 2.5], "text", {}]
        return [
            MessageEvent(
                message=messages[i % 3],
                at=at,
                from_status=Message.Status.SENT if i else "",
                to_status=Message.Status.DELIVERED,
                source=MessageEvent.Source.WEBHOOK,
                detail=f"report {i}" if i % 2 else "",
                payload=payload,
            )
            for i, payload in enumerate(payloads)
        ]

    ours, theirs = events(), events()
    rows.insert_all(ours)
    MessageEvent.objects.bulk_create(theirs)
    assert all(e.pk is not None and not e._state.adding for e in ours)
    assert written(ours) == written(theirs)
    assert len({e.pk for e in ours}) == 5
    rows.insert_all([])  # nothing to write: no statement


def test_a_row_the_quick_path_cannot_write_goes_through_bulk_create(monkeypatch):
    monkeypatch.setattr(rows, "prepared", lambda instance: None)
    account = AccountFactory()
    message = Message.objects.create(account=account, recipient="+33612345678", text="Hi")
    event = MessageEvent(message=message, to_status=Message.Status.QUEUED, source="api")
    rows.insert_all([event])
    assert written([event]) == [(message.pk, event.at, "", "queued", "api", "", None)]
