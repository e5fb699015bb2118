"""Gunicorn's configuration for SMS Hub's web processes: `gunicorn -c smshub/gunicorn.conf.py`
from the project's directory. Every value can be changed through the environment (and `.env`):

- `GUNICORN_BIND` (default `127.0.0.1:8000`; on a platform that sets `PORT`, `0.0.0.0:$PORT`)
- `WEB_CONCURRENCY`: worker processes (default: 2 per CPU + 1)
- `GUNICORN_THREADS`: threads per worker (default 1; more makes them threaded workers)
- `GUNICORN_TIMEOUT`: seconds a request may take before its worker is restarted (default 30)
- `GUNICORN_GRACEFUL_TIMEOUT`: seconds to finish requests on restart/stop (default 30)
- `GUNICORN_KEEPALIVE`: seconds to keep an idle connection from the proxy (default 5)
- `GUNICORN_MAX_REQUESTS`: requests after which a worker is replaced (default 1000, 0: never)
- `FORWARDED_ALLOW_IPS`: proxies trusted for X-Forwarded-* (default localhost); the hub takes
  the client's address for its lock-outs from the X-Forwarded-For they add (smshub.lockout)
- `GUNICORN_CONTROL_SOCKET`: where `gunicornc` may reach it (default: no control socket)
- `LOG_FORMAT`, `LOG_LEVEL`, `DEBUG`: as for the application; the access log goes through the
  same JSON formatter (method, path, status, duration_ms, request_id, ...) and masking.
"""

import multiprocessing
import os
from pathlib import Path

import environ

from smshub.logging import gunicorn_config

environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env")
env = environ.Env()

wsgi_app = "smshub.wsgi:application"
proc_name = "smshub-web"

_port = os.environ.get("PORT")
_default_bind = f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000"
bind = [env.str("GUNICORN_BIND", default=_default_bind)]
workers = env.int("WEB_CONCURRENCY", default=multiprocessing.cpu_count() * 2 + 1)
threads = env.int("GUNICORN_THREADS", default=1)
timeout = env.int("GUNICORN_TIMEOUT", default=30)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)
keepalive = env.int("GUNICORN_KEEPALIVE", default=5)
# Replacing workers now and then bounds the memory a leak could take; the jitter keeps them from
# restarting all at once.
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=1000)
max_requests_jitter = max_requests // 10
# Workers' heartbeat files in memory: a slow disk never gets a busy worker killed.
_SHM = "/dev/shm"  # noqa: S108 (gunicorn's own files, not shared data)
if Path(_SHM).is_dir():
    worker_tmp_dir = _SHM

# Gunicorn's control socket (`gunicornc`) only where asked for: by default it is one path per
# user, which two servers on one machine would fight over.
_control_socket = env.str("GUNICORN_CONTROL_SOCKET", default="")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

# Read here too, so that a value in .env counts for gunicorn as it does for the hub.
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1,::1")

_debug = env.bool("DEBUG", default=False)
loglevel = env.str("LOG_LEVEL", default="INFO").lower()
accesslog = None  # the access log is configured below, with the error log
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
logconfig_dict = gunicorn_config(
    level=loglevel.upper(),
    fmt=env.str("LOG_FORMAT", default="plain" if _debug else "json"),
    numbers=not _debug,
)
