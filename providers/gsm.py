"""GSM 03.38 analysis of SMS text: encoding, length and how it splits into parts.

Text made only of the GSM 03.38 default alphabet and its extension table is sent as
GSM-7: 160 septets in a single SMS, 153 per part once it has to be concatenated (the
User Data Header takes the rest). Extension characters cost two septets (escape plus
character). Any other character forces UCS-2 for the whole message: 70 UTF-16 code
units in a single SMS, 67 per part; characters outside the BMP (emoji) cost two.

Neither an extension character nor a surrogate pair is ever split across parts, so a
part can end up a unit short and the number of parts is found by filling them greedily,
not by dividing.
"""

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The default alphabet in table order, one row per 16 code points (0x00-0x7F).
# 0x1B is the escape to the extension table, not a character, so it is left out.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x10, without the escape at 0x1B
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)

# Reached through the escape, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_CHARACTERS = GSM7_BASIC | GSM7_EXTENSION

_SINGLE = {GSM7: 160, UCS2: 70}
_MULTI = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class Analysis:
    """What sending a text as SMS costs."""

    encoding: str  # GSM7 or UCS2
    characters: int  # characters as the user sees them (len(text))
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int  # 0 for empty text, else number of SMS parts
    per_segment: int  # capacity of one part: 160/153 (GSM-7) or 70/67 (UCS-2)
    remaining: int  # units still free in the last segment
    ucs2_characters: tuple[str, ...]  # distinct characters forcing UCS-2, first seen first


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent as GSM-7."""
    return all(char in GSM7_CHARACTERS for char in text)


def _cost(char: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _parts(text: str, encoding: str) -> list[tuple[str, int]]:
    """Split ``text`` into (part, units) pairs, never splitting a character."""
    costs = [_cost(char, encoding) for char in text]
    total = sum(costs)
    if total <= _SINGLE[encoding]:
        return [(text, total)] if text else []
    limit = _MULTI[encoding]
    parts: list[tuple[str, int]] = []
    start = used = 0
    for index, cost in enumerate(costs):
        if used + cost > limit:
            parts.append((text[start:index], used))
            start, used = index, 0
        used += cost
    parts.append((text[start:], used))
    return parts


def analyze(text: str) -> Analysis:
    """Encoding, length and segment count of ``text`` as an SMS."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    parts = _parts(text, encoding)
    per_segment = _MULTI[encoding] if len(parts) > 1 else _SINGLE[encoding]
    ucs2_characters = tuple(dict.fromkeys(char for char in text if char not in GSM7_CHARACTERS))
    return Analysis(
        encoding=encoding,
        characters=len(text),
        units=sum(units for _, units in parts),
        segments=len(parts),
        per_segment=per_segment,
        remaining=per_segment - (parts[-1][1] if parts else 0),
        ucs2_characters=ucs2_characters,
    )


def split(text: str) -> list[str]:
    """The parts ``text`` would be sent as; empty for empty text."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    return [part for part, _ in _parts(text, encoding)]
