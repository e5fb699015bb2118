"""Phone numbers: everything the hub stores is E.164 (`+33612345678`), checked with phonenumbers."""

import functools
import re

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from phonenumbers.geocoder import _region_display_name


def normalize(value: str, region: str | None = None) -> str:
    """Return `value` as E.164, or raise ValidationError saying what is wrong with it and what
    was expected.

    Without `region`, a number must start with + (or 00) and its country code. With `region`
    (an account's country, `FR`), a national number of that country is read too:
    `06 12 34 56 78`, `0612345678` and `+33 6 12 34 56 78` are the same number. A number
    already in E.164 is checked once however often it comes (the API checks a campaign's
    numbers, then writing them reads them again): the last `_VALID_SIZE` valid ones are
    remembered.
    """
    if value in _valid:
        return value
    number = _check(value, region or None)
    if value == number:
        if len(_valid) >= _VALID_SIZE:
            _valid.clear()
        _valid.add(number)
    return number


_VALID_SIZE = 100_000
_valid: set[str] = set()


def expected(region: str | None = None) -> str:
    """What a number may look like, for error messages and help texts."""
    if not region:
        return gettext("Start it with + and the country code.")
    return gettext(
        "Write it with + and the country code, or as a number of %(country)s (%(example)s)."
    ) % {"country": country_name(region), "example": example(region)}


def help_text(region: str | None = None) -> str:
    """The help beside a number field."""
    if not region:
        return gettext("With + and the country code, e.g. +33 6 12 34 56 78.")
    return gettext("e.g. %(example)s, or any number with + and its country code.") % {
        "example": example(region)
    }


def example(region: str) -> str:
    """A mobile number of `region` as its people write it (`06 12 34 56 78`)."""
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if number is None:
        return "+" + str(phonenumbers.country_code_for_region(region))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def country_name(region: str, language: str | None = None) -> str:
    """`France` for `FR` (in `language`, by default the active one, where phonenumbers knows
    it), else the code itself."""
    language = (language or get_language() or "en").split("-")[0]
    return _region_display_name(region, language) or _region_display_name(region, "en") or region


def country_choices() -> list[tuple[str, str]]:
    """Every country phonenumbers knows, as `(FR, France (+33))`, by name: for an account's
    default country."""
    return sorted(
        (
            (region, f"{country_name(region)} (+{phonenumbers.country_code_for_region(region)})")
            for region in phonenumbers.SUPPORTED_REGIONS
        ),
        key=lambda choice: choice[1],
    )


def _check(value: str, region: str | None) -> str:
    raw = (value or "").strip()
    if not raw:
        raise ValidationError(_("Enter a phone number."), code="required")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if (number := _mobile_e164(raw)) is not None:
        return number
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        hint = "" if raw.startswith("+") else " " + expected(region)
        raise ValidationError(
            _("“%(value)s” is not a phone number.%(hint)s"),
            code="invalid_phone",
            params={"value": value, "hint": hint},
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        if region and not raw.startswith("+"):
            raise ValidationError(
                _("“%(value)s” is not a valid number of %(country)s.%(hint)s"),
                code="invalid_national_phone",
                params={
                    "value": value,
                    "country": country_name(region),
                    "hint": " " + expected(region),
                },
            )
        raise ValidationError(
            _("“%(value)s” is not a valid phone number for its country."),
            code="invalid_phone",
            params={"value": value},
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _mobile_e164(raw: str) -> str | None:
    """`raw` itself when it is already the E.164 form of a valid mobile number of a country code
    that only one region uses (+33, +40...): what the full check would return, found without
    parsing, three times faster; None when phonenumbers must decide (another number type, a
    shared country code, a national prefix it might strip, Italy's leading zero).

    Valid is what `phonenumbers.is_valid_number` says: the number matches its region's general
    description and one of its types; mobile, the type an SMS goes to, is the last it tries."""
    digits = raw[1:]
    if not (raw.startswith("+") and digits.isascii() and digits.isdigit()):
        return None
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions:
            break
    else:
        return None
    national = digits[size:]
    if len(regions) != 1 or national.startswith("0"):
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and _compiled(prefix).match(national):  # parsing may strip it: not this path
        return None
    if _matches(national, metadata.general_desc) and _matches(national, metadata.mobile):
        return raw
    return None


def _matches(national: str, desc) -> bool:
    """As phonenumbers matches a national number against a number description."""
    if desc is None or not desc.national_number_pattern:
        return False
    if desc.possible_length and len(national) not in desc.possible_length:
        return False
    return _compiled(desc.national_number_pattern).fullmatch(national) is not None


@functools.cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def normalize_msisdn(value: str) -> str:
    """Like `normalize`, also accepting the international form without + that providers send
    (an MSISDN such as 584141234567)."""
    try:
        return normalize(value)
    except ValidationError:
        digits = (value or "").strip()
        if digits.isdigit() and not digits.startswith("0"):
            return normalize("+" + digits)
        raise


class PhoneNumberFormField(forms.CharField):
    def __init__(self, *, region: str | None = None, **kwargs) -> None:
        self.region = region
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        return normalize(value, self.region)


class PhoneNumberField(models.CharField):
    """A CharField that holds E.164; `full_clean()` normalises what it is given."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 16:
            del kwargs["max_length"]
        return name, path, args, kwargs

    def clean(self, value, model_instance):
        # Normalise on validation only: lookups (search, filters) must accept any text.
        if value not in self.empty_values:
            value = normalize(value)
        return super().clean(value, model_instance)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": PhoneNumberFormField, **kwargs})
