"""Opt-outs added by staff: one number, or a pasted list or CSV file of them.

Messages to an opted-out number are blocked when they are dispatched (see `dispatch`).
"""

import csv
import io
import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext

from campaigns.audit.recorder import record_created
from campaigns.models import Account, OptOut
from campaigns.phone import normalize

logger = logging.getLogger(__name__)

MAX_IMPORT_LINES = 100_000
HEADER_WORDS = {"number", "numbers", "phone", "phone number", "mobile", "msisdn", "to", "tel"}


@dataclass
class Parsed:
    numbers: list[str] = field(default_factory=list)  # E.164, without duplicates, in file order
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)
    duplicates: int = 0  # lines repeating a number seen earlier in the same list


def parse_numbers(text: str, region: str | None = None) -> Parsed:
    """Read one number per line, or a CSV: the column headed "number" (or "phone", "mobile",
    ...) when the first line is a header, else the first column.

    Lines are numbered from 1 as a spreadsheet shows them; blank lines are ignored. National
    numbers are read in `region` (the account's country).
    """
    parsed = Parsed()
    seen: set[str] = set()
    column = 0
    for line_number, row in enumerate(csv.reader(io.StringIO(text), _dialect(text)), start=1):
        if line_number > MAX_IMPORT_LINES:
            parsed.errors.append(
                (
                    line_number,
                    gettext("Too many lines: at most %(count)s at a time.")
                    % {"count": number_format(MAX_IMPORT_LINES, force_grouping=True)},
                )
            )
            break
        if line_number == 1:
            header = [cell.strip().lower() for cell in row]
            named = [i for i, cell in enumerate(header) if cell in HEADER_WORDS]
            if named:
                column = named[0]
                continue
        value = row[column].strip() if len(row) > column else ""
        if not value:
            continue
        try:
            number = normalize(value, region)
        except ValidationError as exc:
            parsed.errors.append((line_number, exc.messages[0]))
            continue
        if number in seen:
            parsed.duplicates += 1
            continue
        seen.add(number)
        parsed.numbers.append(number)
    return parsed


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """Commas, semicolons or tabs, as spreadsheets write them; plain lines read as one column."""
    sample = text[:4096]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def add(account: Account, numbers: list[str], source: str = OptOut.Source.STAFF) -> int:
    """Opt `numbers` (E.164) out of `account`; returns how many were not opted out already."""
    started = timezone.now()
    existing: set[str] = set()
    for start in range(0, len(numbers), 1000):
        existing.update(
            OptOut.objects.filter(
                account=account, number__in=numbers[start : start + 1000]
            ).values_list("number", flat=True)
        )
    new = [OptOut(account=account, number=n, source=source) for n in numbers if n not in existing]
    with transaction.atomic():
        # A concurrent request may add the same number: the unique constraint keeps one.
        OptOut.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        # bulk_create sends no signal: the audit trail is told of the new rows (read back).
        created = []
        for start in range(0, len(new), 1000):
            created += OptOut.objects.filter(
                account=account,
                number__in=[o.number for o in new[start : start + 1000]],
                created_at__gte=started,
            )
        record_created(created)
    if new:
        logger.info("opt-outs added: account=%s count=%s source=%s", account.pk, len(new), source)
    return len(new)
