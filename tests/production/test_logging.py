"""Logs: JSON lines with the request id and context, secrets and phone numbers masked.

The handler here is built as LOGGING builds the console handler (its filters and the JSON
formatter) and writes to a buffer, so what is asserted is the line an operator would read.
"""

import contextvars
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import hypothesis
import pytest
import requests
from django.conf import settings
from django.urls import reverse
from django.utils.log import configure_logging
from hypothesis import strategies as st

from smshub.logging import (
    MAYBE_SECRET_RE,
    PHONE_NEEDLE,
    PHONE_RE,
    SECRET_PATTERNS,
    ContextFilter,
    JsonFormatter,
    MaskingFilter,
    current_request_id,
    log_context,
    mask,
)
from smshub.logging import config as logging_config

NUMBER = "+33612345678"
SECRET = "s3cr3t-value-42"
TOKEN = "Hk3v9QpL2mN8sT4uV6wX1yZ0aB5cD7eFgHiJkWXyz"  # a webhook token's shape
API_KEY = "smsh_Q9xv2Lk7Rt5Wz8Yb3Nc6Md1Pf4Gh0Js2Kv7Lx9Qa1Z"


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
    # Built by the function the tests below configure logging with (in each mode). The tests
    # run with DEBUG off, whatever DEBUG the settings were read with.
    built = [logging_config(settings.LOG_LEVEL, settings.LOG_FORMAT, n) for n in (True, False)]
    assert settings.LOGGING in built


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


def test_a_record_logged_while_a_task_runs_names_the_task(json_lines):
    from smshub.celery import app

    lines = json_lines()
    logger = logging.getLogger("campaigns.tasks")

    @app.task(name="tests.logging.says_hello", shared=False)
    def says_hello():
        logger.warning("hello from a task")

    result = says_hello.apply(task_id="task-4711")  # run here, as a worker runs it
    assert result.successful()
    logger.warning("hello from outside")
    by_message = {entry["message"]: entry for entry in lines()}  # Celery logs the task too
    inside, outside = by_message["hello from a task"], by_message["hello from outside"]
    assert (inside["task"], inside["task_id"]) == ("tests.logging.says_hello", "task-4711")
    assert "task" not in outside and "task_id" not in outside


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
    assert "/hooks/simulator/***cret/dlr/" in entry["message"]
    assert current_request_id() is None  # forgotten once the answer was sent


def test_a_request_without_a_usable_id_gets_one_made(client, db):
    made = client.get(reverse("healthz"))["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    unsafe = client.get(reverse("healthz"), headers={"X-Request-ID": 'x" injected\tvalue'})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe["X-Request-ID"])
    assert client.get(reverse("healthz"))["X-Request-ID"] != made


def access_request(path: str, query: str, request_id: str | None) -> dict:
    """A request as granian's WSGI worker hands it to its access logger."""
    headers = {"x-request-id": request_id}
    return {
        "addr_remote": "10.0.0.5",
        "protocol": "HTTP/1.1",
        "path": path,
        "qs": query,
        "method": "POST",
        "scheme": "http",
        "headers": headers.get,
    }


def test_access_records_become_fields(json_lines):
    """The web server's access log (granian's logger, smshub.web's format) as JSON fields."""
    from granian.log import log_request_builder

    from smshub.web import ACCESS_LOG_FORMAT

    lines = json_lines()
    log_request = log_request_builder(ACCESS_LOG_FORMAT)
    request = access_request(f"/hooks/vortext/{SECRET}/dlr/", "to=%2B33612345678", "from-nginx-1")
    log_request(time.time(), time.perf_counter() - 0.0123, request, 200)
    [entry] = lines()
    assert entry["logger"] == "granian.access"
    assert entry["request_id"] == "from-nginx-1"
    assert entry["method"] == "POST"
    assert entry["status"] == 200
    assert 12.3 <= entry["duration_ms"] < 100
    assert entry["path"] == "/hooks/vortext/***e-42/dlr/"
    assert entry["query"] == "to=%2B33•••••5678"
    assert entry["remote_addr"] == "10.0.0.5"
    assert SECRET not in json.dumps(entry)
    assert "612345678" not in json.dumps(entry)
    # Without an X-Request-ID from the proxy, the line says `-` and the record has none.
    # (In a context of its own: no request's id is being served.)
    contextvars.Context().run(
        log_request, time.time(), time.perf_counter(), access_request("/healthz", "", None), 200
    )
    entry = lines()[-1]
    assert entry["message"].endswith("ms -") and "request_id" not in entry
    assert "query" not in entry


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
        (f"POST /hooks/vortext/{TOKEN}/dlr/", "POST /hooks/vortext/***WXyz/dlr/"),
        (
            f"callback=https%3A%2F%2Fhub%2Fhooks%2Fsmsadvert%2F{TOKEN}%2Fdlr%2F&to=1",
            "callback=https%3A%2F%2Fhub%2Fhooks%2Fsmsadvert%2F***WXyz%2Fdlr%2F&to=1",
        ),
        (f"Unexpected auth - 'Token {API_KEY}'", "Unexpected auth - 'Token smsh_Q9xv2Lk7***'"),
        (f"GET /api/v1/messages?key={API_KEY}", "GET /api/v1/messages?key=smsh_Q9xv2Lk7***"),
        ("POST https://hubtoken42@hooks.example/in", "POST https://***@hooks.example/in"),
    ],
)
def test_what_is_masked(text, masked):
    assert mask(text) == (text if masked is None else masked)
    assert mask(mask(text)) == mask(text)


# Pieces of the texts above, and of texts with nothing to mask, for the check below to combine.
PIECES = [
    "Authorization",
    "authorization",
    "Bearer ",
    "Basic ",
    "token",
    "api_key",
    "password",
    "SECRET_KEY",
    ": ",
    "=",
    '"',
    "'",
    " ",
    "/",
    "%2F",
    "%2b",
    "+",
    "+33",
    "+40712345678",
    "612345678",
    "hooks",
    "HOOKS",
    "smsh_",
    "Q9xv2Lk7abcdef",
    "https://",
    "user@",
    "POST",
    "/api/v1/messages",
    "201",
    "127.0.0.1",
    "python-requests/2.32",
    "-",
]


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_texts_skipped_by_the_quick_checks_have_nothing_to_mask(text):
    # mask() leaves a text with none of MAYBE_SECRET_RE's characters as it is, unread by the
    # patterns, and runs a pattern only on a text holding its needle: no pattern may find
    # anything in a text it is not run on.
    for pattern, _, needle in SECRET_PATTERNS:
        if MAYBE_SECRET_RE.search(text) is None or needle.search(text) is None:
            assert pattern.search(text) is None, pattern.pattern
    if MAYBE_SECRET_RE.search(text) is None or PHONE_NEEDLE.search(text) is None:
        assert PHONE_RE.search(text) is None


# --- what really gets written: Django's start-up configuration, runserver, granian, Celery --

MODES = [(True, "plain"), (True, "json"), (False, "plain"), (False, "json")]
ROOT = Path(__file__).resolve().parent.parent.parent


def _loggers() -> list[logging.Logger]:
    named = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(lg for lg in named if isinstance(lg, logging.Logger))]


@pytest.fixture
def real_logging(capsys, settings):
    """Configures logging as Django does when a process starts (its defaults, then LOGGING as
    `smshub.logging.config` builds it for a mode), writing to this test's stdout and stderr;
    `configure(debug, fmt)` returns a function giving what was written since. The suite's own
    logging is put back afterwards."""
    saved = {
        lg: (lg.handlers[:], lg.level, lg.propagate, lg.disabled, lg.filters[:])
        for lg in _loggers()
    }
    settings.SECURE_SSL_REDIRECT = False

    def configure(debug: bool, fmt: str):
        settings.DEBUG = debug
        configure_logging(settings.LOGGING_CONFIG, logging_config("INFO", fmt, numbers=not debug))
        capsys.readouterr()
        return lambda: "".join(capsys.readouterr())

    yield configure
    for lg in _loggers():
        handlers, level, propagate, disabled, filters = saved.get(
            lg, ([], logging.NOTSET, True, False, [])
        )
        lg.handlers[:], lg.filters[:] = handlers, filters
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled


def test_requests_leave_no_webhook_token_or_api_key_in_the_logs_in_any_mode(
    client, db, real_logging
):
    for debug, fmt in MODES:
        written = real_logging(debug, fmt)
        hook = client.post(f"/hooks/simulator/{TOKEN}/dlr/", "{}", "application/json")
        # The wrong scheme: django-ninja logged this header in full with DEBUG on.
        other_scheme = client.get("/api/v1/messages", headers={"Authorization": f"Token {API_KEY}"})
        wrong_key = client.get(
            "/api/v1/messages", headers={"X-API-Key": API_KEY}, REMOTE_ADDR="192.0.2.44"
        )
        assert (hook.status_code, other_scheme.status_code, wrong_key.status_code) == (
            404,
            401,
            401,
        )
        text = written()
        assert "Not Found: /hooks/simulator/***WXyz/dlr/" in text, (debug, fmt, text)
        assert "Unauthorized: /api/v1/messages" in text
        assert TOKEN not in text and TOKEN[:12] not in text, (debug, fmt)
        assert API_KEY not in text and API_KEY[13:] not in text, (debug, fmt)


def test_runserver_request_lines_are_masked_in_any_mode(real_logging):
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.core.wsgi import get_wsgi_application

    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for debug, fmt in MODES:
            written = real_logging(debug, fmt)
            # A path no view serves: the server thread needs no database.
            response = requests.get(f"{url}/hooks/vortext/{TOKEN}/inbound/x?key={API_KEY}")
            assert response.status_code == 404
            # runserver's own line (django.server), written once the answer has been sent.
            text = ""
            for _ in range(100):
                text += written()
                if "django.server" in text:
                    break
                time.sleep(0.02)
            line = next(line for line in text.splitlines() if "django.server" in line)
            assert "/hooks/vortext/***WXyz/inbound/x?key=smsh_Q9xv2Lk7***" in line, line
            assert " 404 " in line or '"status_code": 404' in line, line
            assert TOKEN not in text and API_KEY not in text, (debug, fmt, text)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def web_server_logging(monkeypatch, **environment: str) -> dict:
    """Logging as `python -m smshub.web` configures it in a worker, then its options."""
    from granian.log import configure_logging as configure_granian

    from smshub import web

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    options = web.options()
    configure_granian(options["log_level"], options["log_dictconfig"])
    return options


class Proto:
    """What granian's WSGI worker gives the Python side of a request to answer through."""

    def response_bytes(self, status, headers, body):
        self.answer = (status, headers, body)

    def response_iter(self, status, headers, body):
        self.answer = (status, headers, b"".join(iter(body.__next__, None)))


def served(options: dict, scope: dict) -> None:
    """One request through granian's WSGI wrapper (with its access logger, when on) and the
    hub's application."""
    from granian.wsgi import _callback_wrapper

    from smshub.web import without_server_environ
    from smshub.wsgi import application

    fmt = options["log_access_format"] if options["log_access"] else None
    _callback_wrapper(without_server_environ(application), {}, fmt)(Proto(), scope)


def request_scope(path: str, query: str = "", **headers: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "10.0.0.5",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        **{"HTTP_" + name.upper(): value for name, value in headers.items()},
    }


@pytest.mark.django_db(transaction=True)  # a request's start and end close old connections
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_access_lines_are_masked(real_logging, monkeypatch, fmt):
    written = real_logging(False, fmt)  # Django's, then the web server's own loggers
    options = web_server_logging(monkeypatch, LOG_FORMAT=fmt, WEB_ACCESS_LOG="true")
    path = f"/hooks/expertflow/{TOKEN}/dlr/more/"  # no such page: nothing read from the database
    served(options, request_scope(path, f"key={API_KEY}", X_REQUEST_ID="req-web-1"))
    [line] = [line for line in written().splitlines() if "granian.access" in line]
    assert "/hooks/expertflow/***WXyz/dlr/" in line, line
    text = json.loads(line)["message"] if fmt == "json" else line
    assert re.search(r'10\.0\.0\.5 "GET /hooks/\S+ HTTP/1\.1" 404 [\d.]+ms req-web-1', text), line
    if fmt == "json":
        entry = json.loads(line)
        assert entry["path"] == "/hooks/expertflow/***WXyz/dlr/more/"
        assert entry["query"] == "key=smsh_Q9xv2Lk7***"
        assert entry["request_id"] == "req-web-1"
        assert (entry["method"], entry["status"]) == ("GET", 404)
        assert entry["remote_addr"] == "10.0.0.5" and entry["level"] == "INFO"
    assert TOKEN not in line and API_KEY not in line


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_celery_workers_log_through_the_masking_handler(fmt):
    """What a worker does at start: Django set up first (its loader), then Celery's logging."""
    url = f"https://hub:pa55-w0rd-secret@hub.example/hooks/simulator/{TOKEN}/dlr/"
    code = (
        "import logging, django; django.setup()\n"
        "from celery.utils.log import get_task_logger\n"
        "from smshub.celery import app\n"
        "app.log.setup(loglevel='INFO', redirect_stdouts=True)\n"
        f"logging.getLogger('campaigns.services.forwarding').warning('forward to {url} failed')\n"
        f"get_task_logger('campaigns.tasks').warning('task saw {url}')\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DEBUG": "true",
        "LOG_FORMAT": fmt,
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert text.count("/hooks/simulator/***WXyz/dlr/") == 2, text
    assert "https://hub:***@hub.example" in text
    assert TOKEN not in text and "pa55-w0rd-secret" not in text, text


def test_a_workers_loglevel_still_sets_celerys_own_loggers():
    """A worker started with `--loglevel INFO` says it is ready (what scripts wait for), however
    quiet LOG_LEVEL makes the hub's own loggers."""
    code = (
        "import logging, django; django.setup()\n"
        "from smshub.celery import app\n"
        "app.log.setup(loglevel='INFO')\n"
        "logging.getLogger('celery.apps.worker').info('celery@test ready.')\n"
        "logging.getLogger('campaigns.services.dispatch').info('not shown at WARNING')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "celery@test ready." in done.stderr
    assert "not shown at WARNING" not in done.stderr


@pytest.mark.django_db(transaction=True)
def test_without_the_access_log_requests_write_no_line_and_errors_still_do(
    real_logging, monkeypatch
):
    """`WEB_ACCESS_LOG=false` (the proxy logs the requests): no access-log line; the web
    server's own records are written as ever."""
    written = real_logging(False, "json")
    options = web_server_logging(monkeypatch, LOG_FORMAT="json", WEB_ACCESS_LOG="false")
    served(options, request_scope("/healthz"))
    logging.getLogger("_granian").error("Unexpected exit from worker-%s", 2)
    lines = written().splitlines()
    assert not [line for line in lines if "granian.access" in line]
    [error] = [json.loads(line) for line in lines if '"_granian"' in line]
    assert error["message"] == "Unexpected exit from worker-2" and error["level"] == "ERROR"
