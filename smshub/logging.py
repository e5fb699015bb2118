"""Logs: one JSON object per line in production, a request id on every record, secrets masked.

- `JsonFormatter` writes `time`, `level`, `logger`, `message` and, when known, `request_id`,
  `message_id`, `account`, `provider`, `task` and `task_id`, plus anything passed as `extra`.
  The web server's access log becomes `method`, `path`, `status`, `duration_ms`, ...
- `RequestIdMiddleware` takes the request's `X-Request-ID` (or makes one), echoes it in the
  response and puts it on every record logged while serving the request (`ContextFilter`).
- `MaskingFilter` masks secrets (Authorization headers, `api_key=`, `token=`, `password=`
  values, API keys `smsh_…` anywhere, credentials in URLs, webhook tokens in `/hooks/` paths)
  and, unless told not to (development), phone numbers down to their last four digits:
  `+33•••••5678`.
- `config()` is Django's LOGGING: Django's own handlers (DEBUG's console, runserver's
  `django.server`) are replaced by the masking one, and Celery workers and beat log through it
  too (see `_celery_logs_through_django`).
- `log_context(message_id=..., account=..., provider=...)` adds fields to every record logged
  inside it (worker code that handles one message at a time).

Both filters sit on the handlers, so records of every logger pass through them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.config
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from celery.signals import setup_logging
from django.core.signals import request_finished
from django.dispatch import receiver

# --- context -------------------------------------------------------------------------------

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "smshub_request_id", default=None
)
_fields: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "smshub_log_fields", default=None
)

# A request id from outside is kept only if it is this tame (else one is made): it goes into
# logs and a response header.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
REQUEST_ID_HEADER = "X-Request-ID"


def current_request_id() -> str | None:
    return _request_id.get()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add these fields (e.g. `message_id`, `account`, `provider`) to every record logged inside."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


class RequestIdMiddleware:
    """First in MIDDLEWARE: every record logged while serving a request carries its id, and the
    response says it in `X-Request-ID` (a proxy's id is kept, so one id follows the request).

    The id stays set until the response is closed (`request_finished`), not only while the
    middleware runs: Django logs 4xx and 5xx answers after the middleware chain returns.
    """

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if REQUEST_ID_RE.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


@receiver(request_finished, dispatch_uid="smshub.logging.forget_request_id")
def _forget_request_id(**kwargs: Any) -> None:
    _request_id.set(None)


# Records leave out what no formatter here writes, as the logging HOWTO's "Optimization"
# section allows: where the call was made (a walk up the stack for every record), the thread,
# the multiprocessing process name and the asyncio task: 10 µs of an access line's 64. The
# process id stays (`process`).
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False
logging.logAsyncioTasks = False

# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Set by ContextFilter; written under these names by JsonFormatter.
CONTEXT_FIELDS = ("request_id", "message_id", "account", "provider", "task", "task_id")


def _celery_task() -> tuple[str, str] | None:
    if "celery" not in sys.modules:
        return None
    # The task itself rather than `celery.current_task`, a proxy that costs a web process, where
    # no task runs, 9 µs a record to find that out.
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or task.request.id is None:
        return None
    return task.name, task.request.id


ACCESS_LOGGER = "granian.access"


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """The web server's access-log atoms (granian's, smshub.web's format) as fields."""

    def atom(key: str) -> Any:
        value = atoms.get(key, "-")
        return None if value in ("-", "", None) else value

    duration = atom("dt_ms")
    fields = {
        "method": atom("method"),
        "path": atom("path"),
        "query": atom("query_string"),
        "status": atom("status"),
        "duration_ms": round(duration, 1) if isinstance(duration, float) else None,
        "remote_addr": atom("addr"),
        "request_id": atom("_h0"),  # the one header of smshub.web's format: X-Request-ID
    }
    return {key: value for key, value in fields.items() if value is not None}


class ContextFilter(logging.Filter):
    """Puts the request id, `log_context` fields and the Celery task on the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
            record.http = _access_fields(record.args)
            if "request_id" in record.http:
                record.request_id = record.http.pop("request_id")
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        for key, value in (_fields.get() or {}).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        if getattr(record, "task_id", None) is None and (task := _celery_task()):
            record.task, record.task_id = task
        return True


# --- masking -------------------------------------------------------------------------------

BULLET = "•"
# E.164-looking: a plus (or %2B in a URL) then 8 to 15 digits, single spaces, dots or dashes
# allowed between them ("+33 6 12 34 56 78").
PHONE_RE = re.compile(r"(?<![\w+%])(?:\+|%2B)\d(?:[ .-]?\d){7,14}(?![\d])", re.IGNORECASE)


def _last_four(secret: str) -> str:
    """`***` and, for a long secret, its last 4 characters (as admin shows webhook tokens)."""
    return "***" + secret[-4:] if len(secret) >= 12 else "***"


_COLON_OR_EQUALS = re.compile(r"[:=]")

# Each pattern, its replacement, and what it needs somewhere in a text to match it: a pattern
# runs only on a text holding its needle (a webhook path, "/hooks/…", is searched for its token
# alone, not with all six).
SECRET_PATTERNS: list[
    tuple[re.Pattern[str], str | Callable[[re.Match[str]], str], re.Pattern[str]]
] = [
    # Authorization: Bearer abc / "Authorization": "Basic abc" / authorization=abc
    (
        re.compile(
            r"""(?i)((?<![a-z])(?:proxy-)?authorization["']?\s*[:=]\s*["']?"""
            r"""(?:(?:bearer|basic|token|digest)\s+)?)[^\s"',;&]+"""
        ),
        r"\1***",
        re.compile("authorization", re.IGNORECASE),
    ),
    # api_key=..., "token": "...", password: ..., webhook_token=..., SECRET_KEY=...
    (
        re.compile(
            r"""(?i)((?<![\w.-])[\w.-]*?(?:api[_-]?key|apikey|secret[_-]?key|private[_-]?key|"""
            r"""access[_-]?key|token|password|passwd|secret|signature)["']?\s*[:=]\s*["']?)"""
            r"""(?!\*\*\*)[^\s"',;&}\]]+"""
        ),
        r"\1***",
        _COLON_OR_EQUALS,
    ),
    # The hub's API keys, wherever they appear: kept to the prefix the API keys page shows.
    (
        re.compile(r"(?<![\w-])(smsh_[A-Za-z0-9_-]{8})[A-Za-z0-9_-]+"),
        r"\1***",
        re.compile("smsh_"),
    ),
    # scheme://user:password@host, and scheme://token@host
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE),
        r"\1***@",
        re.compile("://"),
    ),
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://)(?!\*\*\*@)[^/\s:@]+@", re.IGNORECASE),
        r"\1***@",
        re.compile("://"),
    ),
    # /hooks/<provider>/<token>/... (or percent-encoded, inside another URL): the token is the
    # webhook's secret; the provider and the kind stay readable.
    (
        re.compile(
            r"((?:/|%2F)hooks(?:/|%2F)[\w-]+(?:/|%2F))(?!\*\*\*)((?:(?!%2F)[^/\s?#\"'&])+)",
            re.IGNORECASE,
        ),
        lambda match: match.group(1) + _last_four(match.group(2)),
        re.compile("hooks", re.IGNORECASE),
    ),
]
PHONE_NEEDLE = re.compile(r"\+|%2B", re.IGNORECASE)


def mask_number(match: re.Match[str]) -> str:
    text = match.group(0)
    prefix = "+" if text.startswith("+") else text[:3]
    digits = re.sub(r"\D", "", text[len(prefix) :])
    return f"{prefix}{digits[:2]}{BULLET * (len(digits) - 6)}{digits[-4:]}"


# What every pattern above needs somewhere in a text to match it: `:` or `=` (a header or a
# `key=value`, a URL's `://`), `smsh_`, `hooks`, or a number's `+` / `%2B`. A text with none of
# them (most fields of a record: a method, a status, a path) is left as it is without running
# the patterns, which were most of the cost of an access-log line.
MAYBE_SECRET_RE = re.compile(r"[:=+]|smsh_|hooks|%2B", re.IGNORECASE)


def mask(text: str, numbers: bool = True) -> str:
    """`text` with secrets masked, and phone numbers too unless `numbers` is false."""
    if not MAYBE_SECRET_RE.search(text):
        return text
    for pattern, replacement, needle in SECRET_PATTERNS:
        if needle.search(text):
            text = pattern.sub(replacement, text)
    if numbers and PHONE_NEEDLE.search(text):
        text = PHONE_RE.sub(mask_number, text)
    return text


class MaskingFilter(logging.Filter):
    """Masks the message, the traceback and string `extra` fields of every record (see `mask`).

    `numbers=False` (development) leaves phone numbers readable; secrets are always masked.
    """

    def __init__(self, name: str = "", numbers: bool = True) -> None:
        super().__init__(name)
        self.numbers = numbers

    def filter(self, record: logging.LogRecord) -> bool:
        done = getattr(record, "_smshub_masked", None)  # by another handler's filter
        if done is not None and (done or not self.numbers):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        record.msg, record.args = mask(message, self.numbers), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, self.numbers)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, self.numbers)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask(value, self.numbers))
        if isinstance(getattr(record, "http", None), dict):
            record.http = {
                k: mask(v, self.numbers) if isinstance(v, str) else v
                for k, v in record.http.items()
            }
        record._smshub_masked = record._smshub_numbers = self.numbers
        return True


# --- formatting ----------------------------------------------------------------------------


# Record attributes that are not `extra` fields to write.
_NOT_EXTRA = frozenset(
    {"http", "color_message", "_smshub_masked", "_smshub_numbers", *CONTEXT_FIELDS}
)
_JSON_NATIVE = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        entry.update(getattr(record, "http", None) or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and key not in _NOT_EXTRA:
                # An object (Django's `request`): its text, masked like the rest.
                numbers = getattr(record, "_smshub_numbers", True)
                entry[key] = value if isinstance(value, _JSON_NATIVE) else mask(str(value), numbers)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        entry["process"] = record.process
        return json.dumps(entry, default=str, ensure_ascii=False)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def config(level: str = "INFO", fmt: str = "json", numbers: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` for Django's LOGGING: everything to stderr, through the
    context and masking filters, as JSON (`fmt="json"`) or plain text."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "smshub.logging.ContextFilter"},
            "mask": {"()": "smshub.logging.MaskingFilter", "numbers": numbers},
        },
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {"()": "smshub.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context", "mask"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give these loggers handlers of their own, which print paths and
            # headers unmasked: without them their records reach the console handler above.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "django.db.backends": {"level": "INFO"},
        },
    }


def web_config(level: str = "INFO", fmt: str = "json", numbers: bool = True) -> dict:
    """The web server's logging (smshub.web): its own records to stderr and its access log to
    stdout, in the same format and through the same filters as the application's records."""
    base = config(level, fmt, numbers)
    base["handlers"]["access"] = {**base["handlers"]["console"], "stream": "ext://sys.stdout"}
    base["loggers"] = {
        "_granian": {"handlers": ["console"], "level": level, "propagate": False},
        ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
    }
    return base


@setup_logging.connect(dispatch_uid="smshub.logging.celery")
def _celery_logs_through_django(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Celery workers and beat log through Django's LOGGING (masked, in LOG_FORMAT and at
    LOG_LEVEL): any receiver of this signal stops Celery from installing handlers of its own,
    which would print secrets unmasked. Their `--loglevel` still sets Celery's own loggers (a
    worker says it is ready at INFO, whatever LOG_LEVEL says of the hub's loggers)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)
