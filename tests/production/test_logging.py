"""Logs: JSON lines with the request id and context, secrets and phone numbers masked.

The handler here is built as LOGGING builds the console handler (its filters and the JSON
formatter) and writes to a buffer, so what is asserted is the line an operator would read.
"""

import io
import json
import logging
import re

import pytest
from django.conf import settings
from django.urls import reverse

from smshub.logging import (
    ContextFilter,
    JsonFormatter,
    MaskingFilter,
    current_request_id,
    log_context,
    mask,
)

NUMBER = "+33612345678"
SECRET = "s3cr3t-value-42"


@pytest.fixture
def json_lines():
    """A handler on the root logger like the production console one; yields the lines read."""

    def attach(numbers: bool = True):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(MaskingFilter(numbers=numbers))
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.addHandler(handler)
        handlers.append(handler)

        def lines() -> list[dict]:
            return [json.loads(line) for line in stream.getvalue().splitlines()]

        return lines

    handlers: list[logging.Handler] = []
    yield attach
    for handler in handlers:
        logging.getLogger().removeHandler(handler)


def test_the_console_handler_is_built_with_these_filters_and_the_chosen_format():
    console = settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["context", "mask"]
    assert settings.LOGGING["filters"]["mask"]["()"] == "smshub.logging.MaskingFilter"
    assert settings.LOGGING["filters"]["context"]["()"] == "smshub.logging.ContextFilter"
    assert settings.LOGGING["formatters"]["json"]["()"] == "smshub.logging.JsonFormatter"
    assert console["formatter"] == settings.LOG_FORMAT


def test_a_record_with_a_number_and_secrets_is_written_masked_with_its_context(json_lines):
    lines = json_lines(numbers=True)
    logger = logging.getLogger("campaigns.services.dispatch")
    with log_context(message_id=4711, account="Acme", provider="Simulator"):
        logger.warning(
            "send failed to %s: headers {'Authorization': 'Bearer %s'} body api_key=%s&x=1 "
            "token: %s password=%s via https://user:%s@provider.example/send",
            NUMBER,
            SECRET,
            SECRET,
            SECRET,
            SECRET,
            SECRET,
        )
    [entry] = lines()
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "campaigns.services.dispatch"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert entry["message_id"] == 4711
    assert entry["account"] == "Acme"
    assert entry["provider"] == "Simulator"
    message = entry["message"]
    assert SECRET not in message
    assert NUMBER not in message and "612345678" not in message
    assert "+33•••••5678" in message
    assert "'Authorization': 'Bearer ***'" in message
    assert "api_key=***&x=1" in message
    assert "token: ***" in message and "password=***" in message
    assert "https://user:***@provider.example/send" in message


def test_a_request_id_is_on_every_record_of_the_request_and_in_the_answer(client, json_lines, db):
    lines = json_lines()
    token = "the-webhook-token-is-a-secret"
    response = client.post(
        reverse("webhook", args=["simulator", token, "dlr"]),
        data="{}",
        content_type="application/json",
        headers={"X-Request-ID": "req-2024-abc"},
    )
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-2024-abc"
    [entry] = [e for e in lines() if e["logger"] == "django.request"]
    assert entry["request_id"] == "req-2024-abc"
    assert entry["status_code"] == 404
    # Django logs the path, which holds the webhook's secret token.
    assert token not in json.dumps(entry)
    assert "/hooks/simulator/***/dlr/" in entry["message"]
    assert current_request_id() is None  # forgotten once the answer was sent


def test_a_request_without_a_usable_id_gets_one_made(client, db):
    made = client.get(reverse("healthz"))["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    unsafe = client.get(reverse("healthz"), headers={"X-Request-ID": 'x" injected\tvalue'})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe["X-Request-ID"])
    assert client.get(reverse("healthz"))["X-Request-ID"] != made


def test_gunicorn_access_records_become_fields(json_lines):
    lines = json_lines()
    atoms = {
        "h": "10.0.0.5",
        "r": f"POST /hooks/vortext/{SECRET}/dlr/?to=%2B33612345678 HTTP/1.1",
        "s": "200",
        "b": "2",
        "B": 2,
        "m": "POST",
        "U": f"/hooks/vortext/{SECRET}/dlr/",
        "q": "to=%2B33612345678",
        "D": 12345,
        "M": 12,
        "a": "curl/8",
        "{x-request-id}o": "from-nginx-1",
    }
    logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s %(b)s %(M)sms', atoms)
    [entry] = lines()
    assert entry["request_id"] == "from-nginx-1"
    assert entry["method"] == "POST"
    assert entry["status"] == 200
    assert entry["duration_ms"] == 12.3
    assert entry["path"] == "/hooks/vortext/***/dlr/"
    assert entry["query"] == "to=%2B33•••••5678"
    assert SECRET not in json.dumps(entry)
    assert "612345678" not in json.dumps(entry)


def test_tracebacks_are_masked_too(json_lines):
    lines = json_lines()
    try:
        raise ValueError(f"provider refused {NUMBER} with password={SECRET}")
    except ValueError:
        logging.getLogger("campaigns").exception("send crashed")
    [entry] = lines()
    assert "Traceback" in entry["exception"]
    assert "+33•••••5678" in entry["exception"] and "password=***" in entry["exception"]
    assert SECRET not in entry["exception"] and NUMBER not in entry["exception"]


def test_in_development_numbers_stay_readable_but_secrets_never(json_lines):
    lines = json_lines(numbers=False)
    logging.getLogger("campaigns").warning("to %s with token=%s", NUMBER, SECRET)
    [entry] = lines()
    assert entry["message"] == f"to {NUMBER} with token=***"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+33 6 12 34 56 78", "+33•••••5678"),
        ("+40712345678.", "+40•••••5678."),
        ("call +1 415 555 2671 now", "call +14•••••2671 now"),
        ("2026-01-01T10:00:00+01:00 +12 ids 1234567890", None),  # not numbers to mask
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        (
            '{"webhook_token": "abc", "SECRET_KEY": "def"}',
            '{"webhook_token": "***", "SECRET_KEY": "***"}',
        ),
        ("GET /hooks/ogangi/AbC-123_x/inbound/", "GET /hooks/ogangi/***/inbound/"),
    ],
)
def test_what_is_masked(text, masked):
    assert mask(text) == (text if masked is None else masked)
