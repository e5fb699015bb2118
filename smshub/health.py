"""Health endpoints for load balancers, orchestrators and monitoring.

- `/healthz` (liveness): the process answers; nothing else is checked, so a database outage
  never gets web processes restarted.
- `/readyz` (readiness): the database, the broker, the cache, and beat's heartbeat (recent:
  written within `SMSHUB_HEARTBEAT_MAX_AGE` seconds, see `smshub.heartbeat`). Each check is
  reported with its state in JSON; any failure makes it a 503 naming the failing checks.
  `?checks=database,cache` runs only those (a load balancer may not want web processes taken
  out because beat is down).
"""

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from . import heartbeat
from .logging import mask

logger = logging.getLogger(__name__)


def check_database() -> dict[str, Any]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_broker() -> dict[str, Any]:
    timeout = settings.SMSHUB_READYZ_TIMEOUT
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=timeout
    ) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=timeout
        )
    return {}


CACHE_PROBE_KEY = "smshub:readyz-probe"


def check_cache() -> dict[str, Any]:
    token = secrets.token_hex(8)
    cache.set(CACHE_PROBE_KEY, token, timeout=60)
    if cache.get(CACHE_PROBE_KEY) != token:
        raise RuntimeError("the cache did not give back what was just written")
    return {}


class Stale(Exception):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def check_beat() -> dict[str, Any]:
    max_age = settings.SMSHUB_HEARTBEAT_MAX_AGE
    last = heartbeat.last_beat()
    if last is None:
        raise Stale(
            "no heartbeat yet: is `celery beat` running, and a worker taking its tasks?",
            max_age_seconds=max_age,
        )
    age = round(time.time() - last, 1)
    if age > max_age:
        raise Stale(
            f"the last heartbeat is {age:g} s old (at most {max_age:g} s): is `celery beat` "
            "running, and a worker taking its tasks?",
            age_seconds=age,
            max_age_seconds=max_age,
        )
    return {"age_seconds": age, "max_age_seconds": max_age}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
    "beat": check_beat,
}


def run_check(name: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        details = CHECKS[name]()
    except Exception as exc:
        result = {"ok": False, "error": mask(f"{type(exc).__name__}: {exc}".strip())[:500]}
        result.update(getattr(exc, "details", {}))
    else:
        result = {"ok": True, **details}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    wanted = [n.strip() for n in request.GET.get("checks", "").split(",") if n.strip()]
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        return JsonResponse(
            {"error": f"unknown check {', '.join(unknown)}; the checks are {', '.join(CHECKS)}"},
            status=400,
        )
    checks = {name: run_check(name) for name in wanted or CHECKS}
    failing = [name for name, result in checks.items() if not result["ok"]]
    if failing:
        logger.warning(
            "readyz: failing %s",
            "; ".join(f"{name}: {checks[name]['error']}" for name in failing),
        )
        body = {"status": "failing", "failing": failing, "checks": checks}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": checks})
