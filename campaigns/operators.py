"""Country and mobile operator of a number, read from its digits, for reports.

- Country: the calling code (`+33` → France), from phonenumbers' table of the countries the hub
  knows (`campaigns.phone`). A calling code shared by several countries (+1, +7, +44) is shown
  as its main country.
- Operator: the operator a mobile number *range* was allocated to (ARCEP in France, ANCOM in
  Romania), for France and Romania, the seed markets: libphonenumber's carrier tables, which
  phonenumbers ships. Anything outside those ranges is "Other operator"; numbers of other
  countries are "Unknown operator".

Numbers move between operators (portability), so the operator is an estimate: the range's
holder, not necessarily the number's operator today. Pages say so.

Both are also given as SQL expressions (`country_code_expression`, `operator_expression`), so a
report groups in the database: a few comparisons per row, never one Python call per message.
"""

from bisect import bisect_right
from functools import cache

import phonenumbers
from django.db.models import CharField, F, Func
from django.utils.translation import gettext as _
from phonenumbers.carrierdata import CARRIER_DATA

from .phone import country_name

# Countries whose mobile ranges are mapped to operators.
OPERATOR_COUNTRIES = ("FR", "RO")
# The operators' names as people know them (libphonenumber spells some as companies do).
OPERATOR_NAMES = {
    "Orange France": "Orange",
    "Bouygues": "Bouygues Telecom",
    "Digi Mobil": "Digi",
}
OTHER = "other"  # a number of FR or RO outside the mapped mobile ranges
UNKNOWN = ""  # a number of another country
# The longest prefix of the tables, in digits after the +: `operator_expression` reads that many.
PREFIX_DIGITS = 8


@cache
def calling_codes() -> dict[int, str]:
    """Calling code → its main country (`33` → `FR`), for every code phonenumbers knows."""
    return {
        code: regions[0]
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        if regions and regions[0] != "001"  # 001: non-geographic (satellite, UIFN)
    }


def country_code(number: str) -> str:
    """The calling code of an E.164 number (`+33612345678` → `33`), or "" if none is known.
    Calling codes are prefix-free: at most one of the first 1, 2 or 3 digits is one."""
    codes = calling_codes()
    digits = number.removeprefix("+")
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in codes:
            return digits[:length]
    return ""


def country_label(code: str) -> str:
    """`France (+33)` for `33`; "Unknown country" for ""."""
    region = calling_codes().get(int(code)) if code.isdigit() else None
    if region is None:
        return _("Unknown country")
    return f"{country_name(region)} (+{code})"


@cache
def _ranges() -> tuple[list[str], list[str]]:
    """The operator tables as sorted, non-overlapping ranges of `PREFIX_DIGITS`-digit strings:
    (starts, operators), where operator i holds starts[i] up to starts[i + 1] (excluded).
    A longer prefix wins over a shorter one (`33634` SFR inside `3363` Orange)."""
    codes = {str(phonenumbers.country_code_for_region(region)) for region in OPERATOR_COUNTRIES}
    prefixes = sorted(
        (prefix, OPERATOR_NAMES.get(names["en"], names["en"]))
        for prefix, names in CARRIER_DATA.items()
        if any(prefix.startswith(code) for code in codes) and names.get("en")
    )
    # Paint each prefix's span in order of length: longer ones overwrite the shorter.
    points: dict[str, str] = {}
    spans: list[tuple[str, str, str]] = []
    for prefix, name in sorted(prefixes, key=lambda item: len(item[0])):
        start = prefix.ljust(PREFIX_DIGITS, "0")
        end = str(int(prefix) + 1).ljust(PREFIX_DIGITS, "0")
        spans.append((start, end, name))
    for start, end, _name in spans:
        points.setdefault(start, OTHER)
        points.setdefault(end, OTHER)
    bounds = sorted(points)
    labels = [OTHER] * len(bounds)
    for start, end, name in spans:
        lo, hi = bounds.index(start), bounds.index(end)
        for i in range(lo, hi):
            labels[i] = name
    # Merge neighbours with the same operator.
    starts, operators = [], []
    for bound, label in zip(bounds, labels, strict=True):
        if not operators or operators[-1] != label:
            starts.append(bound)
            operators.append(label)
    return starts, operators


def operator(number: str) -> str:
    """The operator the number's range was allocated to: a name, `OTHER` (a number of a mapped
    country outside its mobile ranges) or `UNKNOWN` (another country)."""
    digits = number.removeprefix("+")
    if country_code(number) not in _mapped_codes():
        return UNKNOWN
    starts, operators = _ranges()
    key = digits[:PREFIX_DIGITS]
    index = bisect_right(starts, key) - 1
    return operators[index] if index >= 0 else OTHER


@cache
def _mapped_codes() -> frozenset[str]:  # calling codes of the same length (33, 40)
    return frozenset(
        str(phonenumbers.country_code_for_region(region)) for region in OPERATOR_COUNTRIES
    )


def operator_label(code: str) -> str:
    if code == OTHER:
        return _("Other operator")
    return code or _("Unknown operator")


# --- the same, as SQL expressions over a number column -----------------------------------------
# Written as SQL text once (cached): built from Django expressions, a tree of a few hundred
# CASEs costs more to compile on every query than the database takes to run it.


def _literal(text: str) -> str:
    """A string literal of our own tables (never user input): quotes doubled, and % doubled
    for the database driver's parameter style."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


@cache
def _country_code_sql() -> str:
    by_length: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for code in calling_codes():
        by_length[len(str(code))].append(str(code))
    whens = " ".join(
        f"WHEN SUBSTR({{column}}, 2, {length}) IN ({', '.join(map(_literal, sorted(codes)))}) "
        f"THEN SUBSTR({{column}}, 2, {length})"
        for length, codes in by_length.items()
    )
    return f"(CASE {whens} ELSE '' END)"


@cache
def _operator_sql(collate: str, key: str = "") -> str:
    """With `key`, the tree compares that SQL (a column holding the number's `key_sql`,
    computed once per row) rather than cutting the number again at each of its levels."""
    starts, names = _ranges()
    starts, names = [starts[0], *starts], [OTHER, *names]  # below the first start: OTHER
    key = key or f"SUBSTR({{column}}, 2, {PREFIX_DIGITS}){collate}"

    def tree(lo: int, hi: int) -> str:
        # A balanced tree of `key < start`: about log2(n) comparisons of short digit strings.
        if hi - lo == 1:
            return _literal(names[lo])
        mid = (lo + hi) // 2
        below, above = tree(lo, mid), tree(mid, hi)
        return f"(CASE WHEN {key} < {_literal(starts[mid])} THEN {below} ELSE {above} END)"

    codes = ", ".join(_literal(code) for code in sorted(_mapped_codes()))
    length = len(next(iter(_mapped_codes())))
    return (
        f"(CASE WHEN SUBSTR({{column}}, 2, {length}) IN ({codes}) "
        f"THEN {tree(0, len(starts))} ELSE {_literal(UNKNOWN)} END)"
    )


class _NumberExpression(Func):
    """SQL text of this module over a number column (`{column}` in the text)."""

    output_field = CharField()

    def __init__(self, field: str) -> None:
        super().__init__(F(field))

    def text(self, connection) -> str:
        raise NotImplementedError

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return self.text(connection).replace("{column}", column), params * self.text(
            connection
        ).count("{column}")


class _CountryCode(_NumberExpression):
    def text(self, connection) -> str:
        return _country_code_sql()


class _Operator(_NumberExpression):
    def text(self, connection) -> str:
        # Digit strings compared byte by byte, whatever the database's locale.
        return _operator_sql(' COLLATE "C"' if connection.vendor == "postgresql" else "")


def country_code_expression(field: str = "recipient") -> Func:
    """The calling code of `field` (digits, "" when none), as `country_code` reads it."""
    return _CountryCode(field)


def operator_expression(field: str = "recipient") -> Func:
    """The operator of `field` as `operator` reads it: a name, `OTHER` or `UNKNOWN`."""
    return _Operator(field)


# --- the same as SQL text, for a query written by hand (PostgreSQL) ----------------------------


class _Key(_NumberExpression):
    def text(self, connection) -> str:
        return f'SUBSTR({{column}}, 2, {PREFIX_DIGITS}) COLLATE "C"'


def key_expression(field: str = "recipient") -> Func:
    """The digits of `field` that its operator is read from, to compare byte by byte
    (PostgreSQL), for `operator_sql`."""
    return _Key(field)


def country_code_sql(column: str) -> str:
    """`country_code_expression` over the SQL `column` (parameters' % doubled)."""
    return _country_code_sql().replace("{column}", column)


def operator_sql(column: str, key: str) -> str:
    """`operator_expression` over the SQL `column` (PostgreSQL), reading the digits from `key`:
    a column of the same query holding `key_expression`'s value. A report computes the key once per
    message in a subquery: the tree compares it some eight times."""
    return _operator_sql(' COLLATE "C"', key).replace("{column}", column)
