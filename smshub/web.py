"""SMS Hub's web server in production: granian (HTTP parsed and answered in Rust) running the
Django application (`smshub.wsgi`) in threads. `python -m smshub.web` from the project's
directory. Every value can be changed through the environment (and `.env`):

- `WEB_BIND` (default `127.0.0.1:8000`; on a platform that sets `PORT`, `0.0.0.0:$PORT`;
  `unix:/path` for a Unix socket)
- `WEB_CONCURRENCY`: worker processes (default: 1 per CPU + 1)
- `WEB_THREADS`: threads per worker running the application, each with its own database
  connection (default 4)
- `WEB_MAX_RSS`: MiB of memory after which a worker is replaced, gracefully (default 1024;
  0: never), which bounds what a leak could take
- `WEB_GRACEFUL_TIMEOUT`: seconds given to running requests on reload or stop (default 30)
- `WEB_ACCESS_LOG`: false writes no access log, where the proxy's is enough (default true)
- `LOG_FORMAT`, `LOG_LEVEL`, `DEBUG`: as for the application; the access log goes through the
  same JSON formatter (method, path, status, duration_ms, request_id, ...) and masking.

SIGHUP replaces the workers one after the other (new code, no request dropped); SIGTERM or
SIGINT stop them after their running requests. A worker that dies is started again.

Why granian rather than gunicorn (which served the hub before, with the same processes and
threads; measured on 2 CPUs with PostgreSQL and Redis, runs alternated): bench/webhooks.py's
minimal Django application answered 5,395 requests/s against 2,671, the bare view 4,448
against 2,738, and delivery reports were applied 733 against 587/s, for 0.24-0.26 against
0.39-0.56 ms of web CPU a minimal request; bench/peer.py's single sends went 13-45 % faster
for 14-30 % less web CPU. Gunicorn's HTTP parsing, its threads' queue and its access log are
Python; granian's are Rust, and only the application runs in Python.

The proxy's connections are kept alive between requests; one idle for 60 s is closed (granian's
header read timeout, at its maximum), so the proxy must close its idle ones sooner, or it may
send a request on a connection being closed and answer 502 for it (deploy/nginx.conf: 50 s).
"""

import os
import sys
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
TARGET = "smshub.web:application"

# The application's WSGI environ is the request's alone: granian starts every environ from a
# copy of the process's environment (secrets included), which this removes.
_REQUEST_KEYS = frozenset(
    {
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "GATEWAY_INTERFACE",
        "PATH_INFO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
    }
)

# Gunicorn's settings of earlier versions, and what replaced them.
RENAMED = {
    "GUNICORN_BIND": "WEB_BIND",
    "GUNICORN_THREADS": "WEB_THREADS",
    "GUNICORN_GRACEFUL_TIMEOUT": "WEB_GRACEFUL_TIMEOUT",
    "GUNICORN_ACCESS_LOG": "WEB_ACCESS_LOG",
    "GUNICORN_MAX_REQUESTS": "WEB_MAX_RSS (MiB of memory, not a number of requests)",
    "GUNICORN_TIMEOUT": None,
    "GUNICORN_KEEPALIVE": None,
    "GUNICORN_CONTROL_SOCKET": None,
}

# The access log's line; its atoms become the JSON fields (smshub.logging.ContextFilter), the
# one request header, the proxy's X-Request-ID, as granian's `_h0`.
ACCESS_LOG_FORMAT = (
    '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms %(header{x-request-id})s'
)


def _env() -> environ.Env:
    environ.Env.read_env(ROOT / ".env")
    return environ.Env()


def renamed_settings(names: set[str]) -> list[str]:
    """What to say of each gunicorn setting still set: the web server is granian now."""
    problems = []
    for name in sorted(names & set(RENAMED)):
        new = RENAMED[name]
        problems.append(
            f"{name} is set, but the web server is granian now: "
            + (f"use {new}." if new else "it has no equivalent; remove it (docs/deploy.md).")
        )
    return problems


def options() -> dict:
    """granian's server settings, from the environment (see the module's docstring)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from smshub.logging import web_config

    env = _env()
    port = os.environ.get("PORT")
    bind = env.str("WEB_BIND", default=f"0.0.0.0:{port}" if port else "127.0.0.1:8000")
    if bind.startswith("unix:"):
        where = {"uds": Path(bind.removeprefix("unix:"))}
    else:
        host, _, number = bind.rpartition(":")
        if not host or not number.isdigit():
            raise ValueError(f"WEB_BIND must be host:port or unix:/path, not {bind!r}")
        where = {"address": host.strip("[]"), "port": int(number)}
    debug = env.bool("DEBUG", default=False)
    level = env.str("LOG_LEVEL", default="INFO").lower()
    if level not in set(LogLevels):
        raise ValueError(
            f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {level.upper()!r}"
        )
    access_log = env.bool("WEB_ACCESS_LOG", default=True)
    max_rss = env.int("WEB_MAX_RSS", default=1024)
    return {
        "target": TARGET,
        **where,
        "interface": Interfaces.WSGI,
        "http": HTTPModes.http1,  # the proxy speaks HTTP/1.1 to its upstreams
        "websockets": False,
        "workers": env.int("WEB_CONCURRENCY", default=(os.cpu_count() or 1) + 1),
        "blocking_threads": env.int("WEB_THREADS", default=4),
        # Threads (and their database connections) kept while idle for up to 10 minutes.
        "blocking_threads_idle_timeout": 600,
        # A connection idle (or sending its headers) for 60 s is closed: the most granian allows.
        "http1_settings": HTTP1Settings(header_read_timeout=60_000),
        "respawn_failed_workers": True,
        "workers_max_rss": max_rss or None,
        "workers_kill_timeout": env.int("WEB_GRACEFUL_TIMEOUT", default=30),
        "log_level": level,
        "log_dictconfig": web_config(
            level=level.upper(),
            fmt=env.str("LOG_FORMAT", default="plain" if debug else "json"),
            numbers=not debug,
        ),
        "log_access": access_log,
        "log_access_format": ACCESS_LOG_FORMAT,
    }


def without_server_environ(app):
    """`app` given each request's environ without the process's environment variables."""
    server_keys = frozenset(os.environ) - _REQUEST_KEYS

    def application(environ, start_response):
        for key in server_keys & environ.keys():
            del environ[key]
        return app(environ, start_response)

    return application


def __getattr__(name: str):
    """`application`, built when granian's workers load it (not when this module is run)."""
    if name == "application":
        from smshub.wsgi import application as django_application

        globals()["application"] = app = without_server_environ(django_application)
        return app
    raise AttributeError(name)


def main() -> None:
    _env()  # what .env sets counts too
    if problems := renamed_settings(set(os.environ)):
        sys.exit("\n".join(problems))
    from granian.server import Server

    try:
        settings = options()
    except ValueError as error:
        sys.exit(str(error))
    Server(**settings).serve()


if __name__ == "__main__":
    main()
