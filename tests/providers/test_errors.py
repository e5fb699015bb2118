"""Error codes in words: every code the hub stores has a sentence; others say whose code it is."""

import re
from pathlib import Path

import pytest
from django.template import Context, Template

from providers import registry
from providers.errors import known, meaning

ROOT = Path(__file__).resolve().parents[2]
# Literal codes in the code that raises errors or records them on messages.
CODE_LITERAL = re.compile(r"""\b(?:error_)?code=["']([^"']+)["']""")


def stored_codes() -> set[str]:
    """Every literal error code the hub and its adapters write (`code="…"`, `error_code="…"`)."""
    files = [*ROOT.glob("providers/*.py"), *ROOT.glob("providers/simulator/adapter.py")]
    files += [*ROOT.glob("campaigns/services/**/*.py"), *ROOT.glob("campaigns/api/routes/*.py")]
    codes = set()
    for path in files:
        # Form validation codes are not error codes.
        if path.name != "forms.py":
            codes |= set(CODE_LITERAL.findall(path.read_text()))
    return codes - {"", "out_of_range"}  # campaigns/services/reports.py: a form's ValidationError


def test_the_scan_finds_the_codes_users_meet():
    assert {"opted_out", "no_route", "window_ended", "network", "timeout", "config"} <= (
        stored_codes()
    )


@pytest.mark.parametrize("code", sorted(stored_codes()))
def test_every_code_the_hub_stores_has_a_sentence(code):
    assert known(code), code
    assert "(provider's code)" not in meaning(code)


# SMSAdvert's "FIELD ERRORS" is a reading, stored as the fields' names; its other words are
# looked for in its errorMessage, stored as "errorMessage".
NOT_STORED = {"FIELD ERRORS", "TOKEN", "AUTH", "CREDIT"}


@pytest.mark.parametrize(
    "code",
    sorted({word for cls in registry.adapters().values() for word in cls.errors} - NOT_STORED),
)
def test_every_word_of_the_adapters_error_tables_has_a_sentence(code):
    assert known(code)


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        ("UNREACHABLE", "The recipient's phone could not be reached (off or out of coverage)."),
        ("unreachable", "The recipient's phone could not be reached (off or out of coverage)."),
        ("opted_out", "The recipient opted out (or the number is blocked): nothing was sent."),
        ("401", "The provider refused the credentials (HTTP 401): check them in admin."),
        ("418", "The provider refused the request (HTTP 418)."),
        ("507", "The provider had an error (HTTP 507); tried again later."),
        ("BAD_SIGNATURE", "Ogangi refused the signature"),
        ("30003", "The recipient's phone could not be reached (Twilio 30003)."),
    ],
)
def test_meanings(code, sentence):
    assert meaning(code).startswith(sentence)


def test_smsadverts_field_errors_get_each_fields_sentence():
    assert meaning("phone,shortTextMessage") == (
        "The phone number is not in international form (+ and country code). "
        "SMSAdvert takes a text of 3 to 480 characters."
    )


@pytest.mark.parametrize("code", ["E_WEIRD_42", "3.7.1", "phone,E_WEIRD"])
def test_an_unknown_code_is_itself_and_said_to_be_the_providers(code):
    assert not known(code)
    assert meaning(code) == f"{code} (provider's code)"


def test_no_code_no_sentence():
    assert meaning("") == "" and meaning(None) == "" and meaning("  ") == ""


def test_the_template_filter_escapes_and_explains():
    template = Template("{% load provider_errors %}{{ a|error_meaning }} | {{ b|error_meaning }}")
    rendered = template.render(Context({"a": "window_ended", "b": "<b>X</b>"}))
    assert rendered == (
        "The send window ended before the message could be sent. | "
        "&lt;b&gt;X&lt;/b&gt; (provider&#x27;s code)"
    )
