"""Tests for GSM 03.38 analysis and splitting of SMS text."""

import pytest

from providers.gsm import GSM7, UCS2, analyze, is_gsm7, split

# 3GPP TS 23.038 default alphabet, all 128 positions, written out by name so it is an
# independent check of the table in the module. 0x1B is the escape, not a character.
BASIC_TABLE = (
    "@\N{POUND SIGN}$\N{YEN SIGN}"
    "\N{LATIN SMALL LETTER E WITH GRAVE}\N{LATIN SMALL LETTER E WITH ACUTE}"
    "\N{LATIN SMALL LETTER U WITH GRAVE}\N{LATIN SMALL LETTER I WITH GRAVE}"
    "\N{LATIN SMALL LETTER O WITH GRAVE}\N{LATIN CAPITAL LETTER C WITH CEDILLA}"
    "\n\N{LATIN CAPITAL LETTER O WITH STROKE}\N{LATIN SMALL LETTER O WITH STROKE}"
    "\r\N{LATIN CAPITAL LETTER A WITH RING ABOVE}\N{LATIN SMALL LETTER A WITH RING ABOVE}"
    "\N{GREEK CAPITAL LETTER DELTA}_\N{GREEK CAPITAL LETTER PHI}"
    "\N{GREEK CAPITAL LETTER GAMMA}\N{GREEK CAPITAL LETTER LAMDA}"
    "\N{GREEK CAPITAL LETTER OMEGA}\N{GREEK CAPITAL LETTER PI}"
    "\N{GREEK CAPITAL LETTER PSI}\N{GREEK CAPITAL LETTER SIGMA}"
    "\N{GREEK CAPITAL LETTER THETA}\N{GREEK CAPITAL LETTER XI}\x1b"
    "\N{LATIN CAPITAL LETTER AE}\N{LATIN SMALL LETTER AE}"
    "\N{LATIN SMALL LETTER SHARP S}\N{LATIN CAPITAL LETTER E WITH ACUTE}"
    " !\"#\N{CURRENCY SIGN}%&'()*+,-./"
    "0123456789:;<=>?"
    "\N{INVERTED EXCLAMATION MARK}ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "\N{LATIN CAPITAL LETTER A WITH DIAERESIS}\N{LATIN CAPITAL LETTER O WITH DIAERESIS}"
    "\N{LATIN CAPITAL LETTER N WITH TILDE}\N{LATIN CAPITAL LETTER U WITH DIAERESIS}"
    "\N{SECTION SIGN}"
    "\N{INVERTED QUESTION MARK}abcdefghijklmnopqrstuvwxyz"
    "\N{LATIN SMALL LETTER A WITH DIAERESIS}\N{LATIN SMALL LETTER O WITH DIAERESIS}"
    "\N{LATIN SMALL LETTER N WITH TILDE}\N{LATIN SMALL LETTER U WITH DIAERESIS}"
    "\N{LATIN SMALL LETTER A WITH GRAVE}"
)
BASIC = BASIC_TABLE.replace("\x1b", "")
EXTENSION = "\f^{}\\[~]|\N{EURO SIGN}"
EMOJI = "\N{GRINNING FACE}"
RSQUO = "\N{RIGHT SINGLE QUOTATION MARK}"
LDQUO = "\N{LEFT DOUBLE QUOTATION MARK}"
RDQUO = "\N{RIGHT DOUBLE QUOTATION MARK}"
# Romanian uses the comma-below forms; none of these is in GSM 03.38.
A_BREVE = "\N{LATIN SMALL LETTER A WITH BREVE}"
S_COMMA = "\N{LATIN SMALL LETTER S WITH COMMA BELOW}"
CAP_S_COMMA = "\N{LATIN CAPITAL LETTER S WITH COMMA BELOW}"
T_COMMA = "\N{LATIN SMALL LETTER T WITH COMMA BELOW}"


def units_of(part: str, encoding: str) -> int:
    """Units of ``part`` counted independently of the module under test."""
    if encoding == GSM7:
        return sum(2 if char in EXTENSION else 1 for char in part)
    return len(part.encode("utf-16-le")) // 2


def test_basic_table_is_complete() -> None:
    assert len(BASIC_TABLE) == 128
    assert len(set(BASIC)) == 127


@pytest.mark.parametrize("char", list(BASIC), ids=lambda c: f"U+{ord(c):04X}")
def test_every_basic_character_is_one_septet(char: str) -> None:
    assert is_gsm7(char)
    result = analyze(char)
    assert (result.encoding, result.units, result.ucs2_characters) == (GSM7, 1, ())


@pytest.mark.parametrize("char", list(EXTENSION), ids=lambda c: f"U+{ord(c):04X}")
def test_every_extension_character_is_two_septets(char: str) -> None:
    assert is_gsm7(char)
    result = analyze(char)
    assert (result.encoding, result.characters, result.units) == (GSM7, 1, 2)
    assert result.remaining == 158


def test_whole_basic_table_in_one_message() -> None:
    result = analyze(BASIC)
    assert (result.encoding, result.units, result.segments) == (GSM7, 127, 1)


@pytest.mark.parametrize(
    "char",
    [
        A_BREVE,
        "\N{LATIN SMALL LETTER A WITH CIRCUMFLEX}",
        "\N{LATIN SMALL LETTER I WITH CIRCUMFLEX}",
        S_COMMA,
        "\N{LATIN SMALL LETTER S WITH CEDILLA}",
        T_COMMA,
        "\N{LATIN SMALL LETTER A WITH ACUTE}",
        "\N{LATIN SMALL LETTER E WITH CIRCUMFLEX}",
        "\N{CYRILLIC SMALL LETTER ZHE}",
        RSQUO,
        LDQUO,
        "`",
        "\t",
        "\x1b",
        EMOJI,
    ],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_characters_outside_gsm7_force_ucs2(char: str) -> None:
    text = f"Hello {char} world"
    assert not is_gsm7(text)
    result = analyze(text)
    assert result.encoding == UCS2
    assert result.ucs2_characters == (char,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Bun{A_BREVE} ziua", (A_BREVE,)),
        (f"{CAP_S_COMMA}i {S_COMMA}i {CAP_S_COMMA}{T_COMMA}", (CAP_S_COMMA, S_COMMA, T_COMMA)),
        (f"It{RSQUO}s {LDQUO}fine{RDQUO}, isn{RSQUO}t it", (RSQUO, LDQUO, RDQUO)),
        ("Привет, мир", (*"Привет", "м")),
        (f"Price 5€ {EMOJI}{EMOJI}", (EMOJI,)),
    ],
)
def test_ucs2_characters_lists_offenders_once_in_order(
    text: str, expected: tuple[str, ...]
) -> None:
    assert analyze(text).ucs2_characters == expected


def test_empty_text() -> None:
    result = analyze("")
    assert result.encoding == GSM7
    assert (result.characters, result.units, result.segments) == (0, 0, 0)
    assert (result.per_segment, result.remaining) == (160, 160)
    assert split("") == []


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment", "remaining"),
    [
        ("Hello", GSM7, 5, 1, 160, 155),
        ("a" * 160, GSM7, 160, 1, 160, 0),
        ("a" * 161, GSM7, 161, 2, 153, 145),
        ("a" * 306, GSM7, 306, 2, 153, 0),
        ("a" * 307, GSM7, 307, 3, 153, 152),
        ("€" * 80, GSM7, 160, 1, 160, 0),
        ("€" * 81, GSM7, 162, 2, 153, 143),
        ("a" * 159 + "€", GSM7, 161, 2, 153, 145),
        ("ă" * 70, UCS2, 70, 1, 70, 0),
        ("ă" * 71, UCS2, 71, 2, 67, 63),
        ("ă" * 134, UCS2, 134, 2, 67, 0),
        ("ă" * 135, UCS2, 135, 3, 67, 66),
        # GSM characters cost one unit each once the message is UCS-2.
        ("€" * 69 + "ă", UCS2, 70, 1, 70, 0),
        (EMOJI, UCS2, 2, 1, 70, 68),
        (EMOJI * 35, UCS2, 70, 1, 70, 0),
        (EMOJI * 36, UCS2, 72, 2, 67, 61),
    ],
    ids=[
        "hello",
        "gsm-160",
        "gsm-161",
        "gsm-306",
        "gsm-307",
        "euro-80",
        "euro-81",
        "euro-last",
        "ucs2-70",
        "ucs2-71",
        "ucs2-134",
        "ucs2-135",
        "ucs2-gsm-chars",
        "emoji",
        "emoji-35",
        "emoji-36",
    ],
)
def test_analyze(
    text: str, encoding: str, units: int, segments: int, per_segment: int, remaining: int
) -> None:
    result = analyze(text)
    assert result.encoding == encoding
    assert result.characters == len(text)
    assert result.units == units
    assert result.segments == segments
    assert result.per_segment == per_segment
    assert result.remaining == remaining


def test_extension_character_at_boundary_moves_to_next_part() -> None:
    # 306 septets would fit two parts by division, but the euro cannot straddle them.
    text = "a" * 152 + "€" + "b" * 152
    parts = split(text)
    assert parts == ["a" * 152, "€" + "b" * 151, "b"]
    result = analyze(text)
    assert (result.units, result.segments, result.remaining) == (306, 3, 152)


def test_extension_character_that_just_fits_stays() -> None:
    text = "a" * 151 + "€" + "b" * 10
    assert split(text) == ["a" * 151 + "€", "b" * 10]


def test_emoji_at_boundary_is_not_split() -> None:
    # 134 code units would fit two parts by division, but the pair cannot straddle them.
    text = "ă" * 66 + EMOJI + "ă" * 66
    parts = split(text)
    assert parts == ["ă" * 66, EMOJI + "ă" * 65, "ă"]
    result = analyze(text)
    assert (result.units, result.segments, result.remaining) == (134, 3, 66)


SPLIT_CASES = [
    "",
    "Hello",
    "a" * 160,
    "a" * 161,
    "a" * 1000,
    "€" * 81,
    "{x}" * 100,
    "a" * 152 + "€" + "b" * 400,
    "ă" * 71,
    "ă" * 500,
    EMOJI * 36,
    "a" * 66 + EMOJI * 100 + "a",
    ("Hello " + EMOJI + " Привет € {} ") * 20,
    (BASIC + EXTENSION) * 5,
]


@pytest.mark.parametrize("text", SPLIT_CASES, ids=range(len(SPLIT_CASES)))
def test_split_round_trips_within_capacity(text: str) -> None:
    result = analyze(text)
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == result.segments
    assert all(parts)
    sizes = [units_of(part, result.encoding) for part in parts]
    assert sum(sizes) == result.units
    assert all(size <= result.per_segment for size in sizes)
    if parts:
        assert result.remaining == result.per_segment - sizes[-1]
    for part in parts:
        part.encode("utf-16-le")  # no lone surrogates: no pair was cut in two


@pytest.mark.parametrize(("text", "segments"), [("a" * 153, 1), ("ă" * 67, 1)])
def test_single_part_capacity_is_not_the_multipart_one(text: str, segments: int) -> None:
    assert analyze(text).segments == segments
