"""Merge fields and custom field values."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.contacts import fields, merge


def test_values_fallbacks_and_missing_fields():
    text = "Hi {first_name|there}, see you in {city}! {unknown} {Not_a_field} {}"
    merged = merge.render(text, {"first_name": "Ann", "city": ""})
    assert merged.text == "Hi Ann, see you in !  {Not_a_field} {}"
    assert merged.missing == ("city", "unknown")
    assert merge.render(text, {"city": "Lyon"}).text.startswith("Hi there, see you in Lyon!")


def test_placeholders_and_keys():
    text = "{a} {b|x} {a} {b|x}"
    assert [(p.key, p.fallback) for p in merge.placeholders(text)] == [("a", None), ("b", "x")]
    assert merge.keys(text) == {"a", "b"}
    assert merge.has_fields("A {brace} is text") is not False


def test_numbers_and_dates_read_as_people_write_them():
    assert fields.cast("1 234,50", "number") == 1234.5
    assert fields.cast("42", "number") == 42
    assert fields.cast("31/05/2026", "date") == "2026-05-31"
    assert fields.cast("  ", "text") is None
    assert fields.shown(1234.5) == "1234.5" and fields.shown(42) == "42"
    with pytest.raises(ValidationError, match="is not a date"):
        fields.cast("tomorrow", "date")
    with pytest.raises(ValidationError, match="is not a number"):
        fields.cast("12a", "number")


def test_csv_headers_become_keys():
    assert merge.column_key("First name") == "first_name"
    assert merge.column_key(" Ville / City ") == "ville_city"
    assert merge.column_key("2nd") == "c_2nd"
    assert merge.column_key("Prénom") == "prenom"
