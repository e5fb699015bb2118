"""Campaigns to many recipients: scanning a list of numbers, previewing it, creating it.

Recipients arrive as an iterable of `(line number, raw number)` pairs (a pasted list, a CSV
column, an API payload) and are consumed as a stream: numbers are normalized to E.164 with the
same rules as the single compose form, and only a set of the normalized numbers seen so far (to
leave out duplicates) grows with the input. Opt-outs are looked up once per batch, and messages
are written `BATCH_SIZE` at a time with their first timeline event, each batch in its own short
transaction.

While its messages are being written the campaign is `importing` (the dispatcher never claims an
importing campaign's messages, and it cannot be paused, resumed or canceled), so nothing goes out
before the whole list is in; it then becomes `scheduled` or `running` and the dispatcher is
nudged once. If the import fails half-way, the half-written campaign is removed.
"""

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from campaigns import phone
from campaigns.contacts import merge
from campaigns.contacts.importing import Numbers
from campaigns.models import Account, Campaign, Category, Message, MessageEvent, OptOut
from providers import gsm

from . import compose, personal, rows

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
# Rejected rows kept to show (all are counted).
MAX_REJECTED = 1000
# A rejected value is shown as given, cut to this length.
MAX_VALUE_SHOWN = 60

Progress = Callable[[int], None]


@dataclass
class RejectedRow:
    line: int  # 1-based line number in the input (CSV: the file's line, header = line 1)
    value: str  # what was there
    reason: str  # clear, human message ("Not a valid phone number for its country.")


@dataclass
class CampaignResult:
    campaign: Campaign
    queued: int  # messages created (status queued or scheduled)
    duplicates: int  # numbers given more than once, left out
    opted_out: int  # numbers that opted out of this account, left out
    rejected: list[RejectedRow]  # invalid rows (the first MAX_REJECTED)
    rejected_count: int


@dataclass
class Preview:
    """What creating the campaign would do, found by the same scan, writing nothing."""

    rows: int  # entries read
    recipients: int  # distinct valid numbers that have not opted out: messages to create
    duplicates: int
    opted_out: int
    rejected: list[RejectedRow]
    rejected_count: int
    encoding: str  # GSM-7 or UCS-2
    segments: int  # SMS segments per message
    total_segments: int
    price_per_segment: Decimal | None  # None: the account has no price, so no estimate
    currency: str
    estimated_cost: Decimal | None
    first_recipients: list[str]  # the first few numbers that will receive it, normalized
    # Recipient by recipient: segments, their distribution, texts with an empty merge field,
    # and a few texts as they will be received (`personal`: the text has merge fields).
    costs: personal.Costs
    personal: bool

    @property
    def single_recipient(self) -> str | None:
        """The number, when exactly one will receive the message."""
        return self.first_recipients[0] if self.recipients == 1 else None


@dataclass
class _Tally:
    rows: int = 0
    line: int = 0  # the line of the last entry read
    recipients: int = 0
    duplicates: int = 0
    opted_out: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_count: int = 0
    first_recipients: list[str] = field(default_factory=list)
    costs: personal.Costs = field(default_factory=personal.Costs)

    def reject(self, line: int, value: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTED:
            if len(value) > MAX_VALUE_SHOWN:
                value = value[: MAX_VALUE_SHOWN - 1] + "…"
            self.rejected.append(RejectedRow(line=line, value=value, reason=reason))


def _reason(error: ValidationError) -> str:
    """`phone.normalize`'s message without the value (shown beside it anyway)."""
    first = error.error_list[0]
    params = first.params or {}
    if first.code == "invalid_national_phone":
        return gettext("Not a valid number of %(country)s.") % {"country": params["country"]}
    if "hint" in params:
        return gettext("Not a phone number.") + params["hint"]
    if first.code == "invalid_phone":
        return gettext("Not a valid phone number for its country.")
    return " ".join(error.messages)


# A recipient: (line, number as given) or (line, number as given, its merge field values).
Recipient = tuple[int, str] | tuple[int, str, dict | None]
# A recipient found valid, new and not opted out: (line, E.164 number, values given or None).
Found = tuple[int, str, dict | None]


def _scan(
    account: Account,
    recipients: Iterable[Recipient],
    tally: _Tally,
    *,
    batch_size: int,
    progress: Progress | None,
) -> Iterator[list[Found]]:
    """Yield batches of normalized, new, not opted-out numbers (with their line and values);
    count everything left out."""
    seen: set[str] = set()
    batch: list[Found] = []
    read = Numbers(account.region)  # phone.normalize, faster for the usual numbers
    for item in recipients:
        line, raw = item[0], item[1]
        tally.rows += 1
        tally.line = line
        value = (raw or "").strip()
        if not value:
            tally.reject(line, "", gettext("No number on this line."))
            continue
        try:
            number = read(value)
        except ValidationError as error:
            tally.reject(line, value, _reason(error))
            continue
        if number in seen:
            tally.duplicates += 1
            continue
        seen.add(number)
        batch.append((line, number, item[2] if len(item) > 2 else None))
        if len(batch) >= batch_size:
            yield _without_opted_out(account, batch, tally)
            batch = []
            if progress is not None:
                progress(tally.line)
    if batch:
        yield _without_opted_out(account, batch, tally)
    if progress is not None:
        progress(tally.line)


def _without_opted_out(account: Account, batch: list[Found], tally: _Tally) -> list[Found]:
    opted_out = _opted_out(account, [number for _, number, _ in batch])
    if opted_out:
        tally.opted_out += len(opted_out)
        batch = [found for found in batch if found[1] not in opted_out]
    return batch


def _opted_out(account: Account, numbers: list[str]) -> set[str]:
    """Which of `numbers` opted out of the account. On PostgreSQL the numbers go as one array
    parameter: `number IN (%s, ...)` of a thousand placeholders is split again by the driver
    on every batch (a tenth of a campaign's import)."""
    if connection.vendor != "postgresql":
        return set(
            OptOut.objects.filter(account=account, number__in=numbers).values_list(
                "number", flat=True
            )
        )
    table = connection.ops.quote_name(OptOut._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT number FROM {table} WHERE account_id = %s "  # noqa: S608 (names only)
            "AND number = ANY(%s::varchar[])",
            [account.pk, numbers],
        )
        return {row[0] for row in cursor.fetchall()}


def _written(
    batch: list[Found], personaliser: personal.Personaliser, tally: _Tally
) -> list[personal.Written]:
    """The batch's texts; a recipient whose text comes out empty is left out as invalid."""
    written = []
    for (line, _, _), text in zip(batch, personaliser.write(batch_pairs(batch)), strict=True):
        if not text.text.strip():
            fields = ", ".join(f"{{{key}}}" for key in text.missing)
            tally.reject(
                line,
                text.number,
                gettext("The text is empty for this recipient: %(fields)s.") % {"fields": fields},
            )
            continue
        written.append(text)
        tally.costs.add(text)
    tally.recipients += len(written)
    missing = 5 - len(tally.first_recipients)
    if missing > 0:
        tally.first_recipients.extend(text.number for text in written[:missing])
    return written


def batch_pairs(batch: list[Found]) -> list[tuple[str, dict | None]]:
    return [(number, values) for _, number, values in batch]


def preview(
    account: Account,
    *,
    text: str,
    recipients: Iterable[Recipient],
    values: dict | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Preview:
    """Scan the recipients as `create_campaign` would, writing nothing, and say what it costs,
    recipient by recipient when the text has merge fields.

    `progress`, if given, is called with the line number reached after each batch.
    """
    tally = _Tally()
    personaliser = personal.Personaliser(account, text, values)
    for batch in _scan(account, recipients, tally, batch_size=batch_size, progress=progress):
        _written(batch, personaliser, tally)
    analysis = gsm.analyze(text)
    segments = max(analysis.segments, 1)
    total_segments = tally.costs.total_segments
    price = account.price_per_segment
    return Preview(
        rows=tally.rows,
        recipients=tally.recipients,
        duplicates=tally.duplicates,
        opted_out=tally.opted_out,
        rejected=tally.rejected,
        rejected_count=tally.rejected_count,
        encoding=analysis.encoding,
        segments=segments,
        total_segments=total_segments,
        price_per_segment=price,
        currency=account.price_currency if price is not None else "",
        estimated_cost=tally.costs.cost(price),
        first_recipients=tally.first_recipients,
        costs=tally.costs,
        personal=personaliser.personal,
    )


def create_campaign(
    account: Account,
    *,
    name: str,
    text: str,
    recipients: Iterable[Recipient],
    values: dict | None = None,
    sender: str = "",
    category: Category | None = None,
    send_at: datetime | None = None,
    window_end: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
    source: str = MessageEvent.Source.STAFF,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> CampaignResult:
    """Create a campaign and one message per distinct valid number that has not opted out.

    Scheduling is `compose.enqueue_message`'s: a `send_at` in the future makes the messages
    `scheduled` (and the campaign too), else they are `queued`; `send_at` and `window_end`
    bound each message's send window. A text with merge fields is written out for each
    recipient (`personal`), `values` filling them for every one. `progress`, if given, is
    called with the line number reached after each batch is written.
    """
    now = timezone.now()
    personaliser = personal.Personaliser(account, text, values)
    scheduled = send_at is not None and send_at > now
    fields: dict = {}
    if scheduled:
        status, detail = Message.Status.SCHEDULED, f"Scheduled for {send_at.isoformat()}."
        fields["scheduled_at"] = send_at
    else:
        status, detail = Message.Status.QUEUED, "Queued to send now."
    if send_at is not None or window_end is not None:
        fields.update(window_start=send_at, window_end=window_end)

    campaign = Campaign.objects.create(
        account=account,
        name=name,
        category=category,
        sender=sender,
        text=text,
        # Held while its messages are written: the dispatcher leaves importing campaigns alone.
        status=Campaign.Status.IMPORTING,
        created_by=created_by,
    )
    tally = _Tally()
    queued = 0
    try:
        for batch in _scan(account, recipients, tally, batch_size=batch_size, progress=progress):
            if not batch:
                continue
            if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.CANCELED).exists():
                logger.info("campaign import stopped: campaign=%s canceled", campaign.pk)
                break
            written = _written(batch, personaliser, tally)
            if not written:
                continue
            now = timezone.now()
            first = written[0]
            message = Message(
                account=account,
                campaign=campaign,
                category=category,
                recipient="",
                sender=sender,
                text=first.text,
                encoding=first.encoding,
                segments=first.segments,
                status=status,
                created_by=created_by,
                created_at=now,
                **fields,
            )
            event = MessageEvent(at=now, to_status=status, source=source, detail=detail)
            queued += _write_batch(written, message, event, personaliser.personal)
    except BaseException:
        _discard(campaign)
        raise

    final = Campaign.Status.SCHEDULED if scheduled else Campaign.Status.RUNNING
    with transaction.atomic():
        started = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.IMPORTING).update(
            status=final
        )
        if started:
            campaign.status = final
            if not scheduled and queued:
                transaction.on_commit(lambda: compose.nudge_dispatcher(), robust=True)
    if not queued and started:
        # Nothing to send: the campaign is over before it started.
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
        campaign.status = Campaign.Status.COMPLETED
    logger.info(
        "campaign created: campaign=%s account=%s queued=%s duplicates=%s opted_out=%s "
        "rejected=%s status=%s",
        campaign.pk,
        account.pk,
        queued,
        tally.duplicates,
        tally.opted_out,
        tally.rejected_count,
        campaign.status,
    )
    return CampaignResult(
        campaign=campaign,
        queued=queued,
        duplicates=tally.duplicates,
        opted_out=tally.opted_out,
        rejected=tally.rejected,
        rejected_count=tally.rejected_count,
    )


def _write_batch(
    written: list[personal.Written], message: Message, event: MessageEvent, personalised: bool
) -> int:
    """One batch of messages, copies of `message` to each number (each with its own text when
    `personalised`), and their first events (copies of `event`), in one transaction."""
    varying = {"recipient": [w.number for w in written]}
    if personalised:
        varying.update(
            text=[w.text for w in written],
            encoding=[w.encoding for w in written],
            segments=[w.segments for w in written],
        )
    with transaction.atomic():
        ids = rows.insert_alike(message, varying)
        rows.insert_alike(event, {"message": ids})
    return len(ids)


def _discard(campaign: Campaign) -> None:
    """Remove a campaign whose import failed, if none of it can have been sent (still
    importing)."""
    try:
        with transaction.atomic():
            deleted, _ = Campaign.objects.filter(
                pk=campaign.pk, status=Campaign.Status.IMPORTING
            ).delete()
        if deleted:
            logger.warning("campaign import failed, campaign removed: campaign=%s", campaign.pk)
        else:
            logger.warning("campaign import failed half-way: campaign=%s", campaign.pk)
    except Exception:
        logger.exception("campaign import failed and could not be undone: campaign=%s", campaign.pk)


# --- where recipients come from ----------------------------------------------------------------

SEPARATORS = re.compile(r"[,;\t]")


def pasted_recipients(text: str) -> Iterator[tuple[int, str]]:
    """Numbers typed or pasted: one per line, or separated by commas, semicolons or tabs."""
    for line, content in enumerate(text.splitlines(), start=1):
        for part in SEPARATORS.split(content):
            if part.strip():
                yield line, part


def column_keys(headers: list[str]) -> list[str]:
    """The merge field key of each column: its header's (`First name` → `{first_name}`), or
    `column_1`, `column_2`... for a column without one; a key met twice keeps its first
    column."""
    keys, seen = [], set()
    for index, header in enumerate(headers, start=1):
        key = merge.column_key(header) or f"column_{index}"
        keys.append("" if key in seen else key)
        seen.add(key)
    return keys


class CsvError(ValueError):
    """The file cannot be read as CSV; the message says why and what to do."""


def _unreadable(line: int, error: csv.Error) -> str:
    return gettext("Line %(line)s cannot be read as CSV: %(error)s.") % {
        "line": line,
        "error": error,
    }


@dataclass
class CsvInfo:
    """What the first lines of a CSV file say: enough to pick the column with the numbers."""

    delimiter: str
    headers: list[str]  # cells of line 1
    sample: list[str]  # cells of the first line after the header (or line 1 again)
    has_header: bool  # guessed: no cell of line 1 is a phone number
    column: int  # guessed: the column that holds the numbers
    lines: int  # lines in the file (for progress)

    @property
    def columns(self) -> int:
        return max(len(self.headers), len(self.sample), 1)


NUMBER_HEADERS = re.compile(
    r"phone|mobile|mobil|cell|number|num[eé]ro|tel|msisdn|gsm|recipient|to\b|destinat", re.I
)
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    # Numbers are ASCII: a stray byte that is not UTF-8 becomes U+FFFD (and is shown as such)
    # rather than stopping the whole import.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")


def _is_number(value: str, region: str | None) -> bool:
    try:
        phone.normalize(value, region)
    except ValidationError:
        return False
    return True


def _delimiter(sample: str) -> str:
    """The delimiter of the header line (or first line): the candidate it holds most of,
    outside quotes. A single column has none: a comma then."""
    first = next((line for line in sample.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {candidate: unquoted.count(candidate) for candidate in DELIMITERS}
    best = max(DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def inspect_csv(stream: IO[bytes], region: str | None = None) -> CsvInfo:
    """Read the start of a CSV file (binary, seekable): its delimiter, header, likely column.

    Raises CsvError for what is not a CSV file (empty, a spreadsheet, binary data).
    """
    head = stream.read(SNIFF_BYTES)
    if not head.strip():
        raise CsvError(gettext("The file is empty."))
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvError(
            gettext(
                "This is a spreadsheet workbook, not CSV: save it as “CSV UTF-8” and upload that."
            )
        )
    if b"\x00" in head:
        raise CsvError(gettext("This is not a text file: upload the numbers as CSV (UTF-8)."))
    lines = head.count(b"\n")
    last = head[-1:]
    while chunk := stream.read(1024 * 1024):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    if last != b"\n":
        lines += 1
    stream.seek(0)
    delimiter = _delimiter(head.decode("utf-8-sig", errors="replace"))
    text = _text(stream)
    try:
        reader = csv.reader(text, delimiter=delimiter)
        first = next(reader, [])
        second = next(reader, [])
    except csv.Error as error:
        raise CsvError(_unreadable(reader.line_num, error)) from None
    finally:
        text.detach()
    stream.seek(0)
    has_header = not any(_is_number(cell, region) for cell in first)
    data = second if has_header else first
    column = next((i for i, h in enumerate(first) if has_header and NUMBER_HEADERS.search(h)), None)
    if column is None:
        column = next((i for i, cell in enumerate(data) if _is_number(cell, region)), 0)
    return CsvInfo(
        delimiter=delimiter,
        headers=first,
        sample=second if has_header else first,
        has_header=has_header,
        column=column,
        lines=lines,
    )


def csv_recipients(
    stream: IO[bytes],
    *,
    column: int,
    has_header: bool,
    delimiter: str = ",",
    with_values: bool = False,
) -> Iterator[Recipient]:
    """The values of one column of a CSV file (binary), row by row, with each row's line
    number in the file. Blank lines are skipped; a row too short for the column gives "".
    `with_values` adds each row's cells by merge field key (`column_keys`) for personalised
    texts.

    Raises CsvError when the file stops being readable as CSV.
    """
    text = _text(stream)
    reader = csv.reader(text, delimiter=delimiter)
    first = True
    keys: list[str] = []
    try:
        for row in reader:
            if first:
                first = False
                keys = column_keys(row if has_header else [""] * len(row))
                if has_header:
                    continue
            if not any(cell.strip() for cell in row):
                continue
            value = row[column] if column < len(row) else ""
            if with_values:
                values = {key: cell for key, cell in zip(keys, row, strict=False) if key}
                yield reader.line_num, value, values
            else:
                yield reader.line_num, value
    except csv.Error as error:
        raise CsvError(_unreadable(reader.line_num, error)) from None
    finally:
        text.detach()
