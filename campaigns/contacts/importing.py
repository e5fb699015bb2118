"""Many contacts at once: a CSV import, a pasted list, the API's bulk upsert.

Rows come as a stream (`ContactRow`, each with its line number); they are read in batches, so
memory stays flat however long the file. A bad row (a number that cannot be read, a value not
of its field's type) is listed with its line and reason and loses nothing else; a number seen
earlier in the same import counts as a duplicate and is left out.

On PostgreSQL a batch travels as one JSON document (a list per column: a short statement, quick
to write) and is written by one `INSERT ... ON CONFLICT DO UPDATE`, list memberships included;
a batch that removes values, or leaves existing contacts alone, takes an `INSERT ... ON
CONFLICT DO NOTHING` and an `UPDATE` (or a lookup) of the others. Outside a transaction of the
caller's, batches are written by a thread of their own while the next one is read: the database
and Python work at the same time. Elsewhere (SQLite) a batch is one read, then an insert and an
update each run over the rows (`executemany`). bench/contacts_import.py measures it all beside
PostgreSQL's COPY of the same rows.

Numbers are read by `Numbers` (phone.normalize's answers, a short way for plain numbers); files
by `inspect_file` and `CsvRows`.
"""

import codecs
import contextlib
import csv
import functools
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, NamedTuple

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy
from phonenumbers.phonemetadata import PhoneMetadata

from campaigns import phone
from campaigns.models import Account

from .fields import MAX_TEXT, cast
from .models import Contact, ContactField, ContactList, Membership
from .services import LANGUAGE_MAX, field_types, merged_values

BATCH = 1000  # rows per transaction (SQLite, and PostgreSQL below)
POSTGRES_BATCH = 5000  # PostgreSQL: fewer, larger statements; memory stays a few MB
MAX_REJECTED = 1000  # rows listed with their reason; the rest are counted
MAX_VALUE_SHOWN = 60
NAME_MAX = 200
# A contact may be neither created nor updated when another import adds or deletes it at the
# same moment: its row is written again, this many times at most.
ATTEMPTS = 3
CHANGED_MEANWHILE = gettext_lazy("Changed by another import at the same time: import it again.")


@dataclass
class ContactRow:
    line: int
    number: str
    name: str | None = None  # None: not given (an existing contact keeps its own)
    language: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # raw, by custom field key
    error: str | None = None  # the row could not be read (listed with this reason)


@dataclass
class RejectedRow:
    line: int
    value: str
    reason: str


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0  # existing contacts left as they were (update_existing off)
    duplicates: int = 0
    rejected_count: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    added_to_list: int = 0
    rows: int = 0
    ids: list[int] = field(default_factory=list)  # the contacts written, in row order (API)

    def reject(self, line: int, value: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTED:
            if len(value) > MAX_VALUE_SHOWN:
                value = value[: MAX_VALUE_SHOWN - 1] + "…"
            self.rejected.append(RejectedRow(line, value, reason))


@dataclass
class _Batch:
    """Rows ready to write, by column. `names` and `languages` hold None where the row gives
    none (an existing contact keeps its own); `values` hold None for a value to remove."""

    numbers: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)
    values: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    removes: bool = False  # some value is None: to be removed
    _document: str | None = None

    def __len__(self) -> int:
        return len(self.numbers)

    def document(self) -> str:
        """The batch as one JSON document, a list per column (quicker to write than arrays);
        made once."""
        if self._document is None:
            self._document = json.dumps([self.numbers, self.names, self.languages, self.values])
        return self._document

    def only(self, numbers: set[str]) -> "_Batch":
        kept = _Batch()
        for i, number in enumerate(self.numbers):
            if number in numbers:
                kept.numbers.append(number)
                kept.names.append(self.names[i])
                kept.languages.append(self.languages[i])
                kept.values.append(self.values[i])
                kept.lines.append(self.lines[i])
        kept.removes = self.removes
        return kept


def upsert_rows(
    account: Account,
    rows: Iterable[ContactRow],
    *,
    update_existing: bool = True,
    contact_list: ContactList | None = None,
    progress: Callable[[UpsertResult], None] | None = None,
    keep_ids: bool = False,
) -> UpsertResult:
    """Create the contacts of `rows`, and update those that exist (their name, language and
    the values given; other values kept) unless `update_existing` is off; add every contact of
    the rows to `contact_list` if given. Each batch is one transaction; `progress` is called
    after each."""
    result = UpsertResult()
    postgres = connection.vendor == "postgresql"
    batches = _Reader(account, field_types(account), result).batches(
        rows, POSTGRES_BATCH if postgres else BATCH
    )
    if postgres:
        write = functools.partial(
            _write_postgres,
            account,
            update=update_existing,
            contact_list=contact_list,
            keep_ids=keep_ids,
        )
        if connection.in_atomic_block or not connection.get_autocommit():
            # Inside the caller's transaction: on its connection.
            written = ((batch, write(batch)) for batch in batches)
        else:
            written = _beside(_documented(batches), write)
    else:
        write = functools.partial(
            _write_portable, account, update=update_existing, contact_list=contact_list
        )
        written = ((batch, _atomic(write, batch)) for batch in batches)
    with contextlib.closing(written):
        for batch, outcome in written:
            result.created += outcome.created
            result.updated += outcome.updated
            result.skipped += outcome.skipped
            result.added_to_list += outcome.added
            for line, value, reason in outcome.rejected:
                result.reject(line, value, reason)
            if keep_ids:
                ids = outcome.ids
                result.ids.extend(ids[number] for number in batch.numbers if number in ids)
            if progress is not None:
                progress(result)
    return result


@dataclass
class _Outcome:
    """What writing one batch did."""

    ids: dict[str, int] = field(default_factory=dict)  # by number
    created: int = 0
    updated: int = 0
    skipped: int = 0
    added: int = 0  # joined the list
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _atomic(write: Callable[["_Batch"], _Outcome], batch: "_Batch") -> _Outcome:
    with transaction.atomic():
        return write(batch)


def _documented(batches: Iterator["_Batch"]) -> Iterator["_Batch"]:
    """The batches with their JSON made here (not in the writing thread)."""
    for batch in batches:
        batch.document()
        yield batch


def _beside(
    batches: Iterator["_Batch"], write: Callable[["_Batch"], _Outcome]
) -> Iterator[tuple["_Batch", _Outcome]]:
    """Write each batch in a thread of its own (on its own connection, in autocommit: each
    batch committed) while this one reads the next: the database and Python work at the same
    time. Yields each batch with what writing it did, in order; an error in either thread
    stops both."""
    todo: queue.Queue = queue.Queue(maxsize=1)
    done: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            while (batch := todo.get()) is not None:
                done.put((batch, write(batch), None))
        except BaseException as error:
            done.put((None, None, error))
        finally:
            connection.close()  # this thread's own

    writer = threading.Thread(target=work, name="contacts-import-writer", daemon=True)
    writer.start()
    waiting = 0
    try:
        for batch in batches:  # reads the next batch while the writer writes the last one
            if waiting:
                yield _take(done)
                waiting = 0
            todo.put(batch)
            waiting = 1
        if waiting:
            yield _take(done)
    finally:
        todo.put(None)
        writer.join()


def _take(done: queue.Queue) -> tuple["_Batch", _Outcome]:
    batch, outcome, error = done.get()
    if error is not None:
        raise error
    return batch, outcome


# --- reading rows -------------------------------------------------------------------------


class _Reader:
    """Checks rows and gathers them in batches: numbers read in the account's country, values
    cast to their field's type, duplicates left out, bad rows listed."""

    def __init__(self, account: Account, types: dict[str, str], result: UpsertResult) -> None:
        self.result = result
        self.region = account.region
        self.number = Numbers(self.region)
        self.casts = {key: _caster(type_) for key, type_ in types.items()}
        self.seen: set[str] = set()

    def batches(self, rows: Iterable[ContactRow], size: int) -> Iterator[_Batch]:
        result, seen, casts = self.result, self.seen, self.casts
        number_of = self.number
        batch = _Batch()
        numbers, names, languages, values_list, lines = (
            batch.numbers,
            batch.names,
            batch.languages,
            batch.values,
            batch.lines,
        )
        for row in rows:
            result.rows += 1
            raw = (row.number or "").strip()
            if row.error is not None:
                result.reject(row.line, raw, row.error)
                continue
            if not raw:
                result.reject(row.line, "", gettext("No number on this line."))
                continue
            try:
                number = number_of(raw)
            except ValidationError as error:
                result.reject(row.line, raw, error.messages[0])
                continue
            try:
                values = {}
                for key, value in row.values.items():
                    caster = casts.get(key)
                    if caster is None:
                        raise ValidationError(
                            gettext("No custom field “%(key)s” in this account.") % {"key": key}
                        )
                    values[key] = caster(key, value)
                name = _name(row.name)
                language = _language(row.language)
            except ValidationError as error:
                result.reject(row.line, raw, " ".join(error.messages))
                continue
            if number in seen:
                result.duplicates += 1
                continue
            seen.add(number)
            numbers.append(number)
            names.append(name)
            languages.append(language)
            values_list.append(values)
            lines.append(row.line)
            if values and None in values.values():
                batch.removes = True
            if len(numbers) >= size:
                yield batch
                batch = _Batch()
                numbers, names, languages, values_list, lines = (
                    batch.numbers,
                    batch.names,
                    batch.languages,
                    batch.values,
                    batch.lines,
                )
        if numbers:
            yield batch


def _text_ok(value: str) -> bool:
    """Text a database keeps: no NUL, no lone surrogate (which JSON can carry in)."""
    if "\x00" in value:
        return False
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
    return True


def _name(raw: str | None) -> str | None:
    """The name to store, or None to keep an existing contact's (none given, or empty)."""
    if raw is None:
        return None
    name = raw.strip()
    if len(name) > NAME_MAX:
        raise ValidationError(gettext("name: at most %(count)s characters.") % {"count": NAME_MAX})
    if not _text_ok(name):
        raise ValidationError(gettext("name: not valid text."))
    return name or None


def _language(raw: str | None) -> str | None:
    if raw is None:
        return None
    language = raw.strip().lower()
    if len(language) > LANGUAGE_MAX:
        raise ValidationError(
            gettext("language: at most %(count)s characters, e.g. fr or ro.")
            % {"count": LANGUAGE_MAX}
        )
    if not _text_ok(language):
        raise ValidationError(gettext("language: not valid text."))
    return language or None


# Values cast per field type; a number or date column repeats its values, so each distinct
# text is cast once (this many kept per field).
CAST_MEMO = 20_000


def _keyed(key: str, message: str) -> str:
    return gettext("%(key)s: %(error)s") % {"key": key, "error": message}


def _caster(type_: str) -> Callable[[str, object], object]:
    def slow(key: str, raw) -> object:
        text = "" if raw is None else raw if isinstance(raw, str) else str(raw)
        try:
            return cast(text, type_)
        except ValidationError as error:
            raise ValidationError(_keyed(key, error.messages[0])) from None

    if type_ == ContactField.Type.TEXT:

        def text(key: str, raw) -> object:
            if raw.__class__ is not str:
                return slow(key, raw)
            value = raw.strip()
            if not value:
                return None
            if len(value) > MAX_TEXT or not _text_ok(value):
                return slow(key, raw)  # its message
            return value

        return text

    memo: dict = {}

    def memoized(key: str, raw) -> object:
        found = memo.get(raw, memo)
        if found is memo:
            if raw.__class__ is not str:
                return slow(key, raw)
            try:
                found = cast(raw, type_)
            except ValidationError as error:
                found = ValidationError(error.messages[0])
            if len(memo) >= CAST_MEMO:
                memo.clear()
            memo[raw] = found
        if found.__class__ is ValidationError:
            raise ValidationError(_keyed(key, found.messages[0]))
        return found

    return memoized


class Numbers:
    """`phone.normalize(value, region)`, faster for the numbers files are made of.

    Reading a number with phonenumbers' `parse` costs about 40 µs, as much as writing its row.
    A number of digits (spaces, dots and dashes aside), given with + (or 00) and its country
    code or in the national form of `region`, is split here as `parse` splits it and checked
    against the same metadata as `is_valid_number`. What `parse` might read otherwise (a
    national prefix after the country code, an international prefix, a leading zero) and any
    number found invalid go to `phone.normalize`, whose answer and message are the reference;
    tests compare the two on many countries' numbers.
    """

    def __init__(self, region: str | None) -> None:
        self.region = region or None
        self.home = _home(self.region) if self.region else None

    def __call__(self, value: str) -> str:
        number = self.fast(value)
        return number if number is not None else phone.normalize(value, self.region)

    def fast(self, value: str) -> str | None:
        """The E.164 form of `value` when it is a valid number read the simple way; else None
        (`phone.normalize` then decides)."""
        if len(value) > 40:
            return None
        if value[:1] == "+":
            return _international(_digits(value[1:]))
        if value[:2] == "00":
            return _international(_digits(value[2:]))
        if self.home is None:
            return None
        return _national(_digits(value), self.home)


SEPARATORS = re.compile(r"[ .\-]")


def _digits(value: str) -> str:
    """`value` without separators if only ASCII digits remain, else ""."""
    if not (value.isdigit() and value.isascii()):
        value = SEPARATORS.sub("", value)
        if not (value.isdigit() and value.isascii()):
            return ""
    return value


def _international(digits: str) -> str | None:
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = _CODES.get(digits[:size])
        if code is not None:
            break
    else:
        return None
    country = _country(code)
    national = digits[size:]
    if country is None or not 2 <= len(national) <= 17 or national[0] == "0":
        return None
    _, valid, prefix = country
    if prefix is not None and prefix.match(national):
        return None
    return "+" + digits if valid(code, national) else None


_CODES = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


class _Home(NamedTuple):
    """What reading a national number of a region takes, compiled once."""

    code: int
    prefix: str  # the country code, as written
    international: re.Pattern | None  # the prefix dialled to call abroad
    national: re.Pattern | None  # the national prefix for parsing (0 in France)
    transforms: bool  # the national prefix is rewritten, not only dropped
    general: re.Pattern | None
    lengths: frozenset[int]
    local_lengths: frozenset[int]


@functools.cache
def _home(region: str) -> _Home | None:
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None
    general = meta.general_desc
    pattern = general.national_number_pattern if general is not None else None
    return _Home(
        code=meta.country_code,
        prefix=str(meta.country_code),
        international=re.compile(meta.international_prefix) if meta.international_prefix else None,
        national=(
            re.compile(meta.national_prefix_for_parsing)
            if meta.national_prefix_for_parsing
            else None
        ),
        transforms=bool(meta.national_prefix_transform_rule),
        general=re.compile(pattern) if pattern else None,
        lengths=frozenset(general.possible_length if general is not None else ()),
        local_lengths=frozenset(general.possible_length_local_only if general is not None else ()),
    )


def _national(digits: str, home: _Home) -> str | None:
    """`parse`'s reading of a national number (digits only) of the home region: its national
    prefix dropped when what remains is viable, as `_maybe_strip_national_prefix_carrier_code`
    and `parse` decide."""
    if (
        not 2 <= len(digits) <= 17
        or (home.international is not None and home.international.match(digits))
        or digits.startswith(home.prefix)
    ):
        return None
    national = digits
    match = home.national.match(digits) if home.national is not None else None
    if match:
        if home.transforms or match.groups():
            return None
        general = home.general
        stripped = digits[match.end() :]
        if general is None:
            return None
        if general.fullmatch(stripped) is not None or general.fullmatch(digits) is None:
            size = len(stripped)
            if size not in home.lengths or size in home.local_lengths:
                return None
            national = stripped
    country = _country(home.code)
    if not national or national[0] == "0" or country is None:
        return None
    return f"+{home.prefix}{national}" if country.valid(home.code, national) else None


class _Country(NamedTuple):
    meta: PhoneMetadata
    valid: Callable[[int, str], bool]
    national_prefix: re.Pattern | None  # for parsing


@functools.cache
def _country(code: int) -> _Country | None:
    """The metadata `parse` reads a number of country `code` with, how to check a number, and
    its national prefix (None: left to `phone.normalize`)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    if regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return None
    meta = PhoneMetadata.metadata_for_region(regions[0])
    if meta is None:
        return None
    prefix = meta.national_prefix_for_parsing
    return _Country(
        meta,
        _region_validator(meta) if len(regions) == 1 else _library_validator,
        re.compile(prefix) if prefix else None,
    )


def _library_validator(code: int, national: str) -> bool:
    return phonenumbers.is_valid_number(
        phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    )


def _region_validator(meta: PhoneMetadata) -> Callable[[int, str], bool]:
    """phonenumbers' `is_valid_number` for a country code of one region: the number matches
    the general description and one of the types (mobile and fixed line tried first)."""

    def compiled(desc) -> tuple[frozenset, re.Pattern] | None:
        if desc is None or not desc.national_number_pattern:
            return None
        return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)

    general = compiled(meta.general_desc)
    kinds = [
        compiled(desc)
        for desc in (
            meta.mobile,
            meta.fixed_line,
            meta.premium_rate,
            meta.toll_free,
            meta.shared_cost,
            meta.voip,
            meta.personal_number,
            meta.pager,
            meta.uan,
            meta.voicemail,
        )
    ]
    kinds = [kind for kind in kinds if kind is not None]

    def valid(code: int, national: str) -> bool:
        if general is None:
            return False
        size = len(national)
        lengths, pattern = general
        if (lengths and size not in lengths) or pattern.fullmatch(national) is None:
            return False
        for lengths, pattern in kinds:
            if (not lengths or size in lengths) and pattern.fullmatch(national) is not None:
                return True
        return False

    return valid


# --- writing batches ----------------------------------------------------------------------


def _write_postgres(
    account: Account,
    batch: _Batch,
    *,
    update: bool,
    contact_list: ContactList | None,
    keep_ids: bool,
) -> _Outcome:
    """Write one batch on PostgreSQL.

    Updating, a batch that removes no value is one `INSERT ... ON CONFLICT DO UPDATE` (which
    tells created from updated by `xmax`), answering with counts unless ids are asked for.
    Otherwise, in one transaction, new contacts are inserted first (`ON CONFLICT DO NOTHING`),
    then the others updated or looked up: a contact another import adds or deletes between the
    two is written again by the next round."""
    now = timezone.now()
    statements = _statements(contact_list is not None)
    outcome = _Outcome()
    if update and not batch.removes:
        params = [account.pk, now, now, batch.document()]
        if not keep_ids:
            total, outcome.created, outcome.added = _run(
                statements["upsert_count"], params, contact_list, now
            )[0]
            outcome.updated = total - outcome.created
            return outcome
        rows = _run(statements["upsert"], params, contact_list, now)
        outcome.ids = {row[0]: row[1] for row in rows}
        outcome.created = sum(1 for row in rows if row[2])
        outcome.updated = len(rows) - outcome.created
        outcome.added = rows[0][-1] if contact_list and rows else 0
        return outcome
    with transaction.atomic():
        return _insert_then_update(account, batch, now, update, contact_list, outcome)


def _insert_then_update(
    account: Account,
    batch: _Batch,
    now,
    update: bool,
    contact_list: ContactList | None,
    outcome: _Outcome,
) -> _Outcome:
    statements = _statements(contact_list is not None)
    pending = batch
    for _ in range(ATTEMPTS):
        created = _written(
            _run(
                statements["insert"], [account.pk, now, now, pending.document()], contact_list, now
            ),
            contact_list,
        )
        outcome.ids.update(created.ids)
        outcome.created += len(created.ids)
        outcome.added += created.added
        if len(created.ids) == len(pending):
            return outcome
        rest = pending.only(set(pending.numbers) - created.ids.keys())
        if update:
            found = _written(
                _run(statements["update"], [now, rest.document(), account.pk], contact_list, now),
                contact_list,
            )
            outcome.updated += len(found.ids)
        else:
            numbers = json.dumps(rest.numbers)
            found = _written(
                _run(statements["existing"], [account.pk, numbers], contact_list, now),
                contact_list,
            )
            outcome.skipped += len(found.ids)
        outcome.ids.update(found.ids)
        outcome.added += found.added
        if len(found.ids) == len(rest):
            return outcome
        # Added or deleted by another import meanwhile: the next statement sees it.
        pending = rest.only(set(rest.numbers) - found.ids.keys())
    for number, line in zip(pending.numbers, pending.lines, strict=True):
        outcome.rejected.append(
            # Lazy: written by the writing thread, which has no language; shown in the user's.
            (line, number, CHANGED_MEANWHILE)
        )
    return outcome


@dataclass
class _Written:
    ids: dict[str, int]  # by number
    added: int  # joined the list


def _written(rows: list[tuple], contact_list: ContactList | None) -> _Written:
    return _Written({row[0]: row[1] for row in rows}, rows[0][-1] if contact_list and rows else 0)


def _run(sql: str, params: list, contact_list: ContactList | None, now) -> list[tuple]:
    if contact_list is not None:
        params = [*params, contact_list.pk, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@functools.cache
def _statements(with_list: bool) -> dict[str, str]:
    """The SQL of a batch: `upsert`, `upsert_count` and `insert` (parameters: account, now,
    now, the rows as JSON), `update` (now, rows, account) and `existing` (account, numbers).
    Each returns the contacts' (number, id), `upsert` also whether it created them, and
    `upsert_count` one row of counts (contacts, created). With a list, they are also added to
    it (two more parameters: list, now) and the last column says how many joined it."""
    quote = connection.ops.quote_name
    contacts, memberships = quote(Contact._meta.db_table), quote(Membership._meta.db_table)
    field = {f.name: quote(f.column) for f in Contact._meta.concrete_fields}
    member = {f.name: quote(f.column) for f in Membership._meta.concrete_fields}
    pk, account, number, name, language, values, created_at, updated_at = (
        field[n]
        for n in (
            "id",
            "account",
            "number",
            "name",
            "language",
            "values",
            "created_at",
            "updated_at",
        )
    )
    # A list per column in one JSON document; a value of null in `vals` removes the field.
    rows = (
        "(SELECT %s::jsonb AS d) AS doc, ROWS FROM (jsonb_array_elements_text(doc.d->0), "
        "jsonb_array_elements_text(doc.d->1), jsonb_array_elements_text(doc.d->2), "
        "jsonb_array_elements(doc.d->3)) AS i(number, name, language, vals)"
    )
    insert = (
        f"INSERT INTO {contacts} AS c ({number}, {name}, {language}, {values}, {account}, "  # noqa: S608 (names from the models)
        f"{created_at}, {updated_at}) SELECT i.number, coalesce(i.name, ''), "
        f"coalesce(i.language, ''), jsonb_strip_nulls(i.vals), %s, %s, %s FROM {rows} "
        f"ON CONFLICT ({account}, {number}) "
    )
    written = {
        "upsert": (
            f"{insert}DO UPDATE SET {name} = coalesce(nullif(EXCLUDED.{name}, ''), c.{name}), "
            f"{language} = coalesce(nullif(EXCLUDED.{language}, ''), c.{language}), "
            f"{values} = c.{values} || EXCLUDED.{values}, "
            f"{updated_at} = EXCLUDED.{updated_at} "
            f"RETURNING c.{number}, c.{pk}, (c.xmax = 0)"
        ),
        "insert": f"{insert}DO NOTHING RETURNING {number}, {pk}",
        "update": (
            f"UPDATE {contacts} AS c SET {name} = coalesce(i.name, c.{name}), "  # noqa: S608
            f"{language} = coalesce(i.language, c.{language}), "
            f"{values} = jsonb_strip_nulls(c.{values} || i.vals), {updated_at} = %s "
            f"FROM {rows} WHERE c.{account} = %s AND c.{number} = i.number "
            f"RETURNING c.{number}, c.{pk}"
        ),
        "existing": (
            f"SELECT {number}, {pk} FROM {contacts} "  # noqa: S608 (names from the models)
            f"WHERE {account} = %s "
            f"AND {number} = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))"
        ),
    }
    statements = {}
    upsert = written["upsert"].replace(f"RETURNING c.{number}, c.{pk},", f"RETURNING c.{pk},")
    counts = "SELECT count(*), count(*) FILTER (WHERE created), "
    if with_list:
        statements["upsert_count"] = (
            f"WITH w (id, created) AS ({upsert}), added AS ({_joining(memberships, member)}) "  # noqa: S608
            f"{counts}(SELECT count(*) FROM added) FROM w"
        )
    else:
        statements["upsert_count"] = f"WITH w (id, created) AS ({upsert}) {counts}0 FROM w"
    for kind, sql in written.items():
        columns = "number, id, created" if kind == "upsert" else "number, id"
        if not with_list:
            statements[kind] = sql
            continue
        statements[kind] = (
            f"WITH w ({columns}) AS ({sql}), added AS ({_joining(memberships, member)}) "  # noqa: S608
            f"SELECT {columns}, (SELECT count(*) FROM added) FROM w"
        )
    return statements


def _joining(memberships: str, member: dict[str, str]) -> str:
    """The contacts of `w` added to the list (two parameters: list, now), each once."""
    return (
        f"INSERT INTO {memberships} ({member['contact']}, {member['contact_list']}, "  # noqa: S608
        f"{member['added_at']}) SELECT id, %s, %s FROM w "
        f"ON CONFLICT ({member['contact_list']}, {member['contact']}) DO NOTHING RETURNING 1"
    )


def _write_portable(
    account: Account,
    batch: _Batch,
    *,
    update: bool,
    contact_list: ContactList | None,
) -> _Outcome:
    """Write one batch elsewhere (SQLite: writers take turns, so nothing changes between the
    read and the writes): the contacts there read in one query, new ones inserted and others
    updated with one statement each run over the rows (`executemany`)."""
    now = timezone.now()
    existing = {
        number: (pk, name, language, values)
        for pk, number, name, language, values in Contact.objects.filter(
            account=account, number__in=batch.numbers
        ).values_list("pk", "number", "name", "language", "values")
    }
    prepare = Contact._meta.get_field("values").get_db_prep_save
    stamp = Contact._meta.get_field("updated_at").get_db_prep_save(now, connection)
    new, changed = [], []
    for number, name, language, values in zip(
        batch.numbers, batch.names, batch.languages, batch.values, strict=True
    ):
        found = existing.get(number)
        if found is None:
            kept = {key: value for key, value in values.items() if value is not None}
            new.append((account.pk, number, name or "", language or "", prepare(kept, connection)))
        elif update:
            pk, old_name, old_language, old_values = found
            merged = merged_values(old_values or {}, values)
            changed.append(
                (name or old_name, language or old_language, prepare(merged, connection), pk)
            )
    sql = _portable_statements()
    with connection.cursor() as cursor:
        if new:
            cursor.executemany(sql["insert"], [(*row, stamp, stamp) for row in new])
        if changed:
            cursor.executemany(sql["update"], [(*row[:3], stamp, row[3]) for row in changed])
    outcome = _Outcome(created=len(new), updated=len(changed))
    if not update:
        outcome.skipped = len(existing)
    outcome.ids = ids = {number: found[0] for number, found in existing.items()}
    if new:
        ids.update(
            Contact.objects.filter(account=account, number__in=[row[1] for row in new]).values_list(
                "number", "pk"
            )
        )
    if contact_list is not None:
        members = set(
            Membership.objects.filter(
                contact_list=contact_list, contact_id__in=list(ids.values())
            ).values_list("contact_id", flat=True)
        )
        joining = [pk for pk in ids.values() if pk not in members]
        Membership.objects.bulk_create(
            (Membership(contact_list=contact_list, contact_id=pk, added_at=now) for pk in joining),
            ignore_conflicts=True,
            batch_size=BATCH,
        )
        outcome.added = len(joining)
    return outcome


@functools.cache
def _portable_statements() -> dict[str, str]:
    quote = connection.ops.quote_name
    table = quote(Contact._meta.db_table)
    column = {f.name: quote(f.column) for f in Contact._meta.concrete_fields}
    names = ("account", "number", "name", "language", "values", "created_at", "updated_at")
    return {
        "insert": (
            f"INSERT INTO {table} ({', '.join(column[n] for n in names)}) "  # noqa: S608 (names from the model)
            f"VALUES ({', '.join(['%s'] * len(names))})"
        ),
        "update": (
            f"UPDATE {table} SET {column['name']} = %s, {column['language']} = %s, "  # noqa: S608
            f"{column['values']} = %s, {column['updated_at']} = %s WHERE {column['id']} = %s"
        ),
    }


# --- reading a file -----------------------------------------------------------------------

SNIFF_BYTES = 64 * 1024
MAX_LINE = 100_000  # characters on one line; a longer line is a bad row, skipped
MAX_COLUMNS = 100  # columns offered in the mapping; more are ignored
SAMPLE_ROWS = 3
DELIMITERS = ",;\t|"
NUMBER_HEADERS = re.compile(
    r"phone|mobile|mobil|cell|number|num[eé]ro|tel|msisdn|gsm|recipient|to\b|destinat", re.I
)
NAME_KEYS = {"name", "full_name", "nom", "nom_complet", "contact", "contact_name"}
LANGUAGE_KEYS = {"language", "lang", "langue", "locale"}


class FileError(ValueError):
    """The file cannot be read as CSV; the message says why and what to do."""


@dataclass
class FileInfo:
    """What a file's first lines say: enough to map its columns."""

    delimiter: str
    encoding: str  # utf-8-sig, or cp1252 (Excel's "CSV" on Windows) when not UTF-8
    headers: list[str]  # cells of the first row
    samples: list[list[str]]  # the next rows (or the first ones, without a header)
    has_header: bool  # guessed: no cell of the first row is a phone number
    lines: int  # lines in the file (for progress)

    @property
    def columns(self) -> int:
        return min(MAX_COLUMNS, max([len(self.headers), *map(len, self.samples), 1]))


def inspect_file(stream: IO[bytes], region: str | None = None) -> FileInfo:
    """Read the start of a CSV file (binary, seekable): its delimiter, encoding, header and
    first rows. Raises FileError for what is not a CSV file (empty, a spreadsheet, binary)."""
    head = stream.read(SNIFF_BYTES)
    if not head.strip():
        raise FileError(gettext("The file is empty."))
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FileError(
            gettext(
                "This is a spreadsheet workbook, not CSV: save it as “CSV UTF-8” and upload that."
            )
        )
    if b"\x00" in head:
        raise FileError(gettext("This is not a text file: upload the contacts as CSV (UTF-8)."))
    # One pass over the file: its lines, and whether it is UTF-8.
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, lines, last = True, 0, b""
    chunk = head
    while chunk:
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        chunk = stream.read(1024 * 1024)
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if last != b"\n":
        lines += 1
    encoding = "utf-8-sig" if utf8 else "cp1252"
    stream.seek(0)
    delimiter = _delimiter(head.decode(encoding, errors="replace"))
    first, rows = [], []
    try:
        for row in _records(stream, delimiter, encoding):
            if row.cells is None or not any(cell.strip() for cell in row.cells):
                continue
            if not first:
                first = row.cells
            else:
                rows.append(row.cells)
            if len(rows) >= SAMPLE_ROWS:
                break
    finally:
        stream.seek(0)
    number = Numbers(region)
    has_header = not any(is_number(number, cell) for cell in first)
    return FileInfo(
        delimiter=delimiter,
        encoding=encoding,
        headers=first if has_header else [],
        samples=rows if has_header else [first, *rows][:SAMPLE_ROWS],
        has_header=has_header,
        lines=lines,
    )


def is_number(number: Numbers, value: str) -> bool:
    """Whether `value` reads as a phone number (`number`: the account's reader)."""
    try:
        number(value.strip())
    except ValidationError:
        return False
    return bool(value.strip())


def _delimiter(sample: str) -> str:
    """The delimiter of the first line: the candidate it holds most of, outside quotes (a
    single column has none: a comma then)."""
    first = next((line for line in sample.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {candidate: unquoted.count(candidate) for candidate in DELIMITERS}
    best = max(DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


@dataclass
class _Record:
    line: int  # where it starts
    cells: list[str] | None  # None: unreadable
    error: str = ""


class _Lines:
    """A text file's lines for the csv module, each cut at MAX_LINE characters: a longer line
    is read past (in pieces, never whole) and given as an empty line, its number kept."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.number = 0
        self.too_long: set[int] = set()

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.text.readline(MAX_LINE)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) >= MAX_LINE and not line.endswith(("\n", "\r")):
            while (rest := self.text.readline(MAX_LINE)) and not rest.endswith(("\n", "\r")):
                pass
            self.too_long.add(self.number)
            return "\n"
        return line


def _records(stream: IO[bytes], delimiter: str, encoding: str) -> Iterator[_Record]:
    """The CSV records of a binary file, each with the line it starts on; one that cannot be
    read comes with `cells` None and the reason, and reading goes on after it."""
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    try:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield _Record(
                    start,
                    None,
                    gettext("This line cannot be read as CSV: %(error)s.") % {"error": error},
                )
            else:
                if start in lines.too_long:
                    yield _Record(
                        start,
                        None,
                        gettext("Longer than %(count)s characters: left out.")
                        % {"count": number_format(MAX_LINE, force_grouping=True)},
                    )
                else:
                    yield _Record(start, cells)
            start = lines.number + 1
    finally:
        text.detach()


@dataclass
class Mapping:
    """Which column (0-based) holds what."""

    number: int
    name: int | None = None
    language: int | None = None
    fields: list[tuple[int, str]] = field(default_factory=list)  # (column, custom field key)


class CsvRows:
    """The contacts of a CSV file as `ContactRow`s, read as they are consumed; `line` is the
    last line read (for progress). Empty cells are left out: an existing contact keeps its
    value."""

    def __init__(self, path, mapping: Mapping, info: FileInfo) -> None:
        self.path, self.mapping, self.info = path, mapping, info
        self.line = 0

    def __iter__(self) -> Iterator[ContactRow]:
        mapping = self.mapping
        number, name, language, fields = (
            mapping.number,
            mapping.name,
            mapping.language,
            mapping.fields,
        )
        with open(self.path, "rb") as stream:
            skip = self.info.has_header
            for record in _records(stream, self.info.delimiter, self.info.encoding):
                self.line = record.line
                cells = record.cells
                if cells is None:
                    yield ContactRow(record.line, "", error=record.error)
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                if skip:
                    skip = False
                    continue
                size = len(cells)
                values = {}
                for column, key in fields:
                    if column < size and cells[column].strip():
                        values[key] = cells[column]
                yield ContactRow(
                    record.line,
                    cells[number] if number < size else "",
                    cells[name] if name is not None and name < size else None,
                    cells[language] if language is not None and language < size else None,
                    values,
                )
