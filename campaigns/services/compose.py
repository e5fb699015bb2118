"""Composing: turning what staff (or the API) wrote into queued messages."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Account, Category, Message, MessageEvent, OptOut
from providers import gsm

from . import lifecycle, rows
from .wake import wake_dispatcher


def create_message(
    account: Account,
    *,
    recipient: str,
    text: str,
    sender: str = "",
    category: Category | None = None,
    created_by: AbstractBaseUser | None = None,
    source: str = MessageEvent.Source.STAFF,
    status: str = Message.Status.QUEUED,
    detail: str = "Queued to send now.",
    unless_opted_out: bool = False,
    **fields,
) -> Message | None:
    """Create one message and its first timeline event. `recipient` must already be E.164.

    A text holding a secret (a one-time code) goes in `secret_text`, stored encrypted and sent,
    while `text` holds it masked for every page and answer. With `unless_opted_out`, nothing is
    created (None) when the number is on the account's opt-out list.
    """
    lifecycle.check_initial(status)
    analysis = gsm.analyze(fields.get("secret_text") or text)  # what will be sent
    message = Message(
        account=account,
        recipient=recipient,
        text=text,
        sender=sender,
        category=category,
        encoding=analysis.encoding,
        segments=max(analysis.segments, 1),
        status=status,
        created_by=created_by,
        **fields,
    )
    event = MessageEvent(message=message, to_status=status, source=source, detail=detail)
    if (
        connection.vendor == "postgresql"
        and (inserted := _insert(message, event, unless_opted_out)) is not None
    ):
        return message if inserted else None
    if unless_opted_out and OptOut.objects.filter(account=account, number=recipient).exists():
        return None
    with transaction.atomic(savepoint=False):  # all or nothing; no savepoint of its own
        message.save(force_insert=True)
        event.message = message
        event.save(force_insert=True)
    return message


# The statement of `_insert` per (message columns, event columns, opt-out check), made once per
# process: building it (quoting, each column's type) cost a third of an API send.
_INSERTS: dict[tuple, str] = {}


def _insert(message: Message, event: MessageEvent, unless_opted_out: bool) -> bool | None:
    """PostgreSQL: the message and its event in one statement (the opt-out list checked in it
    too): True if written, False if the number opted out, None if the ORM must write them."""
    message_row, event_row = rows.prepared(message), rows.prepared(event, without=("message",))
    if message_row is None or event_row is None:
        return None
    params = [*message_row[1]]
    if unless_opted_out:
        params += [message.account_id, message.recipient]
    params += event_row[1]
    key = (message_row[0], event_row[0], unless_opted_out)
    if (sql := _INSERTS.get(key)) is None:
        sql = _INSERTS[key] = _insert_sql(*key)
    with rows.binding_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk = row[0]
    message._state.adding, message._state.db = False, connection.alias
    return True


def _insert_sql(message_columns, event_columns, unless_opted_out: bool) -> str:
    # Identifiers come from the models, quoted; every value is a parameter.
    quote = connection.ops.quote_name
    messages, events = quote(Message._meta.db_table), quote(MessageEvent._meta.db_table)
    opted_out = ""
    if unless_opted_out:
        opted_out = (
            f" WHERE NOT EXISTS (SELECT 1 FROM {quote(OptOut._meta.db_table)}"  # noqa: S608
            " WHERE account_id = %s AND number = %s)"
        )
    return (
        f"WITH m AS (INSERT INTO {messages} ({rows.column_list(message_columns)}) "  # noqa: S608
        f"SELECT {rows.typed_placeholders(message_columns)}{opted_out} RETURNING id) "
        f"INSERT INTO {events} (message_id, {rows.column_list(event_columns)}) "
        f"SELECT m.id, {rows.typed_placeholders(event_columns)} FROM m RETURNING message_id"
    )


def enqueue_message(account: Account, *, send_at=None, window_end=None, **kwargs) -> Message | None:
    """Create one message to send now, or at `send_at` (and not after `window_end`), and nudge
    the dispatcher once it is committed. Times are aware datetimes, stored in UTC. None only
    when asked `unless_opted_out` and the number opted out (`create_message`)."""
    if send_at is not None and send_at > timezone.now():
        kwargs.update(
            status=Message.Status.SCHEDULED,
            detail=f"Scheduled for {send_at.isoformat()}.",
            scheduled_at=send_at,
        )
    if send_at is not None or window_end is not None:
        kwargs.update(window_start=send_at, window_end=window_end)
    # No transaction of its own: `create_message` writes the message and its event atomically
    # (one statement on PostgreSQL, which autocommit makes one round trip instead of three).
    message = create_message(account, **kwargs)
    if message is not None and message.status == Message.Status.QUEUED:
        transaction.on_commit(nudge_dispatcher, robust=True)  # at once outside a transaction
    return message


def nudge_dispatcher() -> None:
    """Ask a worker to claim due messages now rather than at the next sweep, unless a dispatch
    task is awake already (`wake`): one cache read per call, a broker message only now and then.

    Only a shortcut: if the broker cannot take it, the beat sweep finds the messages anyway.
    """
    wake_dispatcher()
