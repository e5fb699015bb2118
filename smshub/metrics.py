"""`/metrics`: Prometheus metrics in the text exposition format, behind a bearer token.

With `SMSHUB_METRICS_TOKEN` unset the endpoint does not exist (404); with it set, a request
without `Authorization: Bearer <token>`, or with another token, gets a 401. Everything is
computed from the database and the cache when scraped (`campaigns.metrics`), never counted in
one process's memory, so any web process gives the same figures.
"""

import hmac
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from campaigns.metrics import DomainCollector

from . import heartbeat

# The classic text format: what every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ProcessCollector:
    """What is not the messaging domain's: beat's heartbeat."""

    def collect(self) -> Iterator[Metric]:
        last = heartbeat.last_beat()
        if last is not None:
            age = GaugeMetricFamily(
                "smshub_beat_heartbeat_age_seconds",
                "Seconds since beat's heartbeat task last ran on a worker.",
            )
            age.add_metric([], max(time.time() - last, 0.0))
            yield age


def authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        offered.strip().encode(), token.encode()
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.SMSHUB_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: SMSHUB_METRICS_TOKEN is not set")
    if not authorized(request, token):
        response = HttpResponse(
            "A bearer token is needed: Authorization: Bearer <SMSHUB_METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    started = time.monotonic()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DomainCollector())
    registry.register(ProcessCollector())
    body = generate_latest(registry)
    elapsed = time.monotonic() - started
    body += (
        b"# HELP smshub_metrics_scrape_seconds Time taken to compute these metrics.\n"
        b"# TYPE smshub_metrics_scrape_seconds gauge\n"
        + f"smshub_metrics_scrape_seconds {elapsed:.6f}\n".encode()
    )
    return HttpResponse(body, content_type=CONTENT_TYPE)
