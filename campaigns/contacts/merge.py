"""Merge fields: `{first_name}` in a text is replaced by each recipient's value, and
`{city|our shop}` by the fallback when the recipient has none.

A merge field is a key (lowercase letters, digits, _) between braces, with an optional `|` and
fallback; any other brace is text. The values are a contact's (`name`, `number`, `language`
and its custom fields) or, for an uploaded CSV, the row's columns by their header.
"""

import re
import unicodedata
from dataclasses import dataclass

from .fields import shown

FIELD = re.compile(r"\{([a-z][a-z0-9_]{0,39})(?:\|([^{}]*))?\}")


@dataclass(frozen=True)
class Placeholder:
    key: str
    fallback: str | None  # None: no fallback given


def placeholders(text: str) -> list[Placeholder]:
    """The merge fields of `text`, in order, each once."""
    found: dict[tuple[str, str | None], Placeholder] = {}
    for match in FIELD.finditer(text or ""):
        found.setdefault(match.groups(), Placeholder(match.group(1), match.group(2)))
    return list(found.values())


def keys(text: str) -> set[str]:
    return {placeholder.key for placeholder in placeholders(text)}


def has_fields(text: str) -> bool:
    return FIELD.search(text or "") is not None


@dataclass(frozen=True)
class Merged:
    text: str
    missing: tuple[str, ...]  # keys with no value and no fallback: left empty


def render(text: str, values: dict) -> Merged:
    """`text` for one recipient: each merge field replaced by its value (text as shown), else
    its fallback, else nothing (and named in `missing`)."""
    missing: list[str] = []

    def replace(match: re.Match) -> str:
        key, fallback = match.group(1), match.group(2)
        value = shown(values.get(key)).strip()
        if value:
            return value
        if fallback is not None:
            return fallback
        if key not in missing:
            missing.append(key)
        return ""

    return Merged(FIELD.sub(replace, text or ""), tuple(missing))


def column_key(header: str) -> str:
    """The merge field key of a CSV column: `First name` → `first_name`, `Prénom` → `prenom`."""
    plain = unicodedata.normalize("NFKD", (header or "").strip().lower())
    plain = plain.encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    if key and not key[0].isalpha():
        key = "c_" + key
    return key[:40]
