"""Gunicorn's configuration for SMS Hub's web processes: `gunicorn -c smshub/gunicorn.conf.py`
from the project's directory. Every value can be changed through the environment (and `.env`):

- `GUNICORN_BIND` (default `127.0.0.1:8000`; on a platform that sets `PORT`, `0.0.0.0:$PORT`)
- `WEB_CONCURRENCY`: worker processes (default: 1 per CPU + 1)
- `GUNICORN_THREADS`: threads per worker (default 4: threaded workers; 1 makes them sync ones)
- `GUNICORN_TIMEOUT`: seconds a worker may stay silent before it is restarted (default 30;
  with sync workers that bounds each request, with threaded ones only a stuck worker)
- `GUNICORN_GRACEFUL_TIMEOUT`: seconds to finish requests on restart/stop (default 30)
- `GUNICORN_KEEPALIVE`: seconds to keep an idle connection from the proxy (default 75)
- `GUNICORN_MAX_REQUESTS`: requests after which a worker is replaced (default 1000, 0: never)
- `FORWARDED_ALLOW_IPS`: proxies trusted for X-Forwarded-* (default localhost); the hub takes
  the client's address for its lock-outs from the X-Forwarded-For they add (smshub.lockout)
- `GUNICORN_CONTROL_SOCKET`: where `gunicornc` may reach it (default: no control socket)
- `GUNICORN_ACCESS_LOG`: false writes no access log, where the proxy's is enough (default true;
  under single API sends the access log costs about 9 % of the web processes' CPU)
- `LOG_FORMAT`, `LOG_LEVEL`, `DEBUG`: as for the application; the access log goes through the
  same JSON formatter (method, path, status, duration_ms, request_id, ...) and masking.

Why threaded workers (measured with bench/webhooks.py on 2 CPUs, PostgreSQL and Redis, one
client keeping 16 connections alive as the proxy does): sync workers answer one request per
connection and close it, so the proxy's kept-alive connections (deploy/nginx.conf) are opened
again for every request, and a worker waits idle while PostgreSQL commits. Against 2 sync
workers (bare view 591 requests/s, delivery reports applied 214/s), 2 workers of 4 threads
answered the bare view at 1,607/s and applied 371/s, 5 workers of 4 threads applied 410/s (the
difference between 2 and 5 workers is within the machine's noise; earlier runs found sync
workers slower with 5 than with 2).

Why one process per CPU plus one, not gunicorn's usual 2 per CPU plus 1 (a rule for sync
workers, which answer one request at a time): each threaded worker already serves 4 requests,
and every further process shares the same CPUs with PostgreSQL and the Celery worker, each
switch between them costing CPU. On 2 CPUs, runs alternated between 5 and 3 workers of 4
threads: bench/webhooks.py applied 481 and 539 reports/s with 5, 582 and 637 with 3, for
2.07 and 1.89 against 1.57 and 1.35 ms of web CPU a report; bench/peer.py's single sends at
50 ms went 485, 455 and 438/s with 5 against 632, 564 and 447/s with 3, for 2.19-2.79 against
1.68-2.30 ms of web CPU a send (2 workers were no better than 3). Each thread keeps its own
database connection (docs/deploy.md, *Database connections*).

The keep-alive outlasts the proxy's (nginx closes idle upstream connections after 60 s by
default): whoever closes an idle connection first must be the proxy, or it may send a request
on a connection gunicorn is closing and answer 502 for it.
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
workers = env.int("WEB_CONCURRENCY", default=multiprocessing.cpu_count() + 1)
threads = env.int("GUNICORN_THREADS", default=4)
timeout = env.int("GUNICORN_TIMEOUT", default=30)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)
keepalive = env.int("GUNICORN_KEEPALIVE", default=75)
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
# Builds only the atoms that line and the JSON fields use (smshub/gunicorn_logging.py); with
# GUNICORN_ACCESS_LOG=false, no access log (the proxy's is enough).
_access_log = env.bool("GUNICORN_ACCESS_LOG", default=True)
logger_class = "smshub.gunicorn_logging." + ("AccessLogger" if _access_log else "WithoutAccessLog")
logconfig_dict = gunicorn_config(
    level=loglevel.upper(),
    fmt=env.str("LOG_FORMAT", default="plain" if _debug else "json"),
    numbers=not _debug,
)
