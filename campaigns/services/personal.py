"""Personalised texts: a campaign's text with merge fields (`{first_name|there}`) written out
for each recipient, and what that costs, recipient by recipient.

A recipient's values are those its source gave (the columns of an uploaded CSV row, the API's
`values`), completed by the account's contact with that number (`name`, `number`, `language`
and custom fields). One query per batch finds the contacts; a text without merge fields skips
all of it.
"""

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from campaigns.contacts import merge
from campaigns.contacts.models import Contact
from campaigns.models import Account
from providers import gsm

SAMPLES = 3
MISSING_EXAMPLES = 5
# Texts analysed (encoding, segments) kept per campaign: most recipients share a few texts.
_ANALYSES_KEPT = 10_000


@dataclass(frozen=True)
class Written:
    number: str
    text: str
    encoding: str
    segments: int
    missing: tuple[str, ...]  # merge fields with no value and no fallback (left empty)


@dataclass
class Costs:
    """What the recipients' texts come to: shown in the preview."""

    recipients: int = 0
    total_segments: int = 0
    by_segments: Counter = field(default_factory=Counter)  # segments per message → messages
    ucs2: int = 0  # messages sent as UCS-2
    missing: int = 0  # recipients with at least one empty merge field
    missing_examples: list[Written] = field(default_factory=list)
    samples: list[Written] = field(default_factory=list)

    def add(self, written: Written) -> None:
        self.recipients += 1
        self.total_segments += written.segments
        self.by_segments[written.segments] += 1
        self.ucs2 += written.encoding == gsm.UCS2
        if written.missing:
            self.missing += 1
            if len(self.missing_examples) < MISSING_EXAMPLES:
                self.missing_examples.append(written)
        if len(self.samples) < SAMPLES:
            self.samples.append(written)

    @property
    def distribution(self) -> list[tuple[int, int]]:
        """(segments per message, messages), fewest segments first."""
        return sorted(self.by_segments.items())

    def cost(self, price: Decimal | None) -> Decimal | None:
        return None if price is None else price * self.total_segments


class Personaliser:
    """Writes `text` for batches of recipients of one account."""

    def __init__(self, account: Account, text: str, values: dict | None = None) -> None:
        self.account, self.text = account, text
        self.personal = merge.has_fields(text)
        self.common = values or {}  # given for every recipient (the API's `values`)
        self._analyses: dict[str, gsm.Analysis] = {}
        if not self.personal:
            self._plain = self._analysis(text)

    def _analysis(self, text: str) -> gsm.Analysis:
        analysis = self._analyses.get(text)
        if analysis is None:
            if len(self._analyses) >= _ANALYSES_KEPT:
                self._analyses.clear()
            analysis = self._analyses[text] = gsm.analyze(text)
        return analysis

    def write(self, batch: list[tuple[str, dict | None]]) -> list[Written]:
        """Each `(number, values given)` of a batch, with its text."""
        if not self.personal:
            analysis = self._plain
            segments = max(analysis.segments, 1)
            return [Written(n, self.text, analysis.encoding, segments, ()) for n, _ in batch]
        contacts = {
            row["number"]: row
            for row in Contact.objects.filter(
                account=self.account, number__in=[number for number, _ in batch]
            ).values("number", "name", "language", "values")
        }
        written = []
        for number, given in batch:
            values = {"number": number}
            if (contact := contacts.get(number)) is not None:
                values.update(contact["values"] or {})
                values.update(name=contact["name"], language=contact["language"])
            values.update({k: v for k, v in self.common.items() if v not in (None, "")})
            values.update({k: v for k, v in (given or {}).items() if v not in (None, "")})
            merged = merge.render(self.text, values)
            analysis = self._analysis(merged.text)
            written.append(
                Written(
                    number,
                    merged.text,
                    analysis.encoding,
                    max(analysis.segments, 1),
                    merged.missing,
                )
            )
        return written
