"""A number already in E.164 that is a mobile of a one-region country code is taken as it is,
without phonenumbers' parsing: the answer must be exactly the full check's, for every region's
numbers and their near misses, and the common mobiles must take that path."""

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from campaigns import phone


def full_check(raw: str) -> str | None:
    """What phonenumbers says of `raw`: its E.164 form when valid, else None."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def e164(number) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def examples() -> list[str]:
    """Every region's example numbers of every type, and their near misses: a digit changed,
    added or taken off."""
    found = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE,
            phonenumbers.PhoneNumberType.TOLL_FREE,
            phonenumbers.PhoneNumberType.PREMIUM_RATE,
            phonenumbers.PhoneNumberType.VOIP,
        ):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            raw = e164(number)
            found |= {raw, raw + "7", raw[:-1]}
            found |= {raw[:-i] + d + raw[len(raw) - i + 1 :] for i in (1, 2, 4) for d in "0594"}
    return sorted(found)


EXAMPLES = examples()


def test_every_regions_numbers_read_as_the_full_check_reads_them():
    taken = 0
    for raw in EXAMPLES:
        fast = phone._mobile_e164(raw)
        if fast is not None:
            taken += 1
            assert fast == full_check(raw) == raw, raw
    assert taken > 200  # the path serves: most regions' mobiles go through it


@given(st.sampled_from(EXAMPLES), st.text(alphabet="0123456789", min_size=0, max_size=3))
def test_any_digits_read_as_the_full_check_reads_them(raw, tail):
    number = raw[: max(2, len(raw) - len(tail))] + tail
    fast = phone._mobile_e164(number)
    assert fast is None or fast == full_check(number) == number


@pytest.mark.parametrize(
    "number",
    ["+33612345678", "+40712345678", "+4915123456789", "+34612345678", "+31612345678"],
)
def test_common_mobiles_take_the_fast_path(number):
    assert phone._mobile_e164(number) == number
    assert phone.normalize(number) == number


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("+33140000000", "a fixed line: phonenumbers decides"),
        ("+12015550123", "+1 is shared by the NANP's regions"),
        ("+447400123456", "+44 is shared by GB, GG, IM and JE"),
        ("+390612345678", "Italy's leading zero"),
        ("+393123456789", "+39 is shared by Italy and the Vatican"),
        ("+3361234567", "a digit short"),
        ("+33 6 12 34 56 78", "not E.164 as written"),
        ("+" + "".join(chr(0xFF10 + int(d)) for d in "33612345678"), "full-width digits"),
    ],
)
def test_other_numbers_are_left_to_phonenumbers(number, why):
    assert phone._mobile_e164(number) is None, why


def test_what_phonenumbers_decides_is_unchanged():
    phone._valid.clear()
    assert phone.normalize("+33140000000") == "+33140000000"
    assert phone.normalize("0033612345678") == "+33612345678"
    with pytest.raises(ValidationError):
        phone.normalize("+3361234567")
