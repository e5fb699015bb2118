"""Prometheus metrics of the messaging domain, computed from the database and the cache at
scrape time (so every web process answers the same, whichever one Prometheus reaches).

Every query is bounded: recent windows (`SMSHUB_METRICS_WINDOW` seconds) over indexed columns,
or partial indexes of the few rows still on their way; never a count of the whole table.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from providers import circuit
from providers.models import ProviderAccount

from .models import Account, Message, WebhookRequest
from .services.dispatch import HOUR, MINUTE, due_filter

Status = Message.Status

# Upper bounds (seconds) of the send-latency buckets: claim → the provider's answer.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
NONE = "none"


def _window(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.SMSHUB_METRICS_WINDOW)


def _providers() -> dict[int, ProviderAccount]:
    return {
        p.pk: p for p in ProviderAccount.objects.only("id", "name", "slug", "enabled", "held_since")
    }


def _labels(provider: ProviderAccount | None) -> list[str]:
    return [provider.name, provider.slug] if provider else [NONE, NONE]


def messages_by_status(now: datetime, providers: dict[int, ProviderAccount]) -> Metric:
    family = GaugeMetricFamily(
        "smshub_messages",
        f"Messages created in the last {settings.SMSHUB_METRICS_WINDOW:g} s, by their status "
        "now and the provider account they went through (none: not claimed yet).",
        labels=["status", "provider_account", "provider"],
    )
    rows = (
        Message.objects.filter(created_at__gte=_window(now))
        .values_list("status", "provider_account_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, provider_id, n in sorted(rows, key=lambda r: (r[0], r[1] or 0)):
        family.add_metric([status, *_labels(providers.get(provider_id))], n)
    return family


def send_latency(now: datetime, providers: dict[int, ProviderAccount]) -> Metric:
    family = GaugeHistogramMetricFamily(
        "smshub_send_latency_seconds",
        "From a message's claim by a worker to the provider's acceptance (sent_at - "
        f"claimed_at), for messages claimed in the last {settings.SMSHUB_METRICS_WINDOW:g} s: "
        "a histogram of that window (use histogram_quantile on it directly, not on rate()).",
        labels=["provider_account", "provider"],
    )
    if not providers:
        return family
    latency = ExpressionWrapper(F("sent_at") - F("claimed_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(latency__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(LATENCY_BUCKETS)
    }
    rows = (
        Message.objects.filter(
            provider_account_id__in=list(providers),  # the (provider_account, claimed_at) index
            claimed_at__gte=_window(now),
            sent_at__isnull=False,
        )
        .annotate(latency=latency)
        .values("provider_account_id")
        .annotate(count=Count("id"), total=Sum("latency"), **buckets)
        .order_by("provider_account_id")
    )
    for row in rows:
        cumulative = [
            (floatToGoString(bound), row[f"le_{i}"]) for i, bound in enumerate(LATENCY_BUCKETS)
        ]
        total = row["total"]
        seconds = total.total_seconds() if isinstance(total, timedelta) else (total or 0) / 1e6
        family.add_metric(
            _labels(providers.get(row["provider_account_id"])),
            [*cumulative, ("+Inf", row["count"])],
            seconds,
        )
    return family


def queue_depth(now: datetime) -> Metric:
    family = GaugeMetricFamily(
        "smshub_queue_messages",
        "Messages waiting: queued and due now (what workers should be sending), retrying "
        "(waiting for a backoff), scheduled (for later), sending (claimed, no answer yet).",
        labels=["status"],
    )
    account_ids = list(Account.objects.values_list("id", flat=True))
    family.add_metric([Status.QUEUED], Message.objects.filter(due_filter(now)).count())
    # Through the (account, status) index: there is no index on status alone.
    retrying = Message.objects.filter(account_id__in=account_ids, status=Status.RETRYING)
    family.add_metric([Status.RETRYING], retrying.count() if account_ids else 0)
    for status in (Status.SCHEDULED, Status.SENDING):  # partial indexes
        family.add_metric([status], Message.objects.filter(status=status).count())
    return family


def webhooks(now: datetime) -> Iterator[Metric]:
    waiting = WebhookRequest.objects.filter(status=WebhookRequest.Status.RECEIVED)
    oldest = waiting.order_by("id").values_list("received_at", flat=True).first()
    lag = GaugeMetricFamily(
        "smshub_webhook_lag_seconds",
        "Age of the oldest webhook request stored but not applied yet (0: none waits).",
    )
    lag.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    yield lag
    counts = GaugeMetricFamily(
        "smshub_webhook_requests",
        "Webhook requests waiting to be applied (received) and those that failed (replayable "
        "from admin).",
        labels=["status"],
    )
    counts.add_metric(["received"], waiting.count())
    failed = WebhookRequest.objects.filter(status=WebhookRequest.Status.FAILED)
    counts.add_metric(["failed"], failed.count())
    yield counts


def circuits(providers: dict[int, ProviderAccount]) -> Metric:
    family = GaugeMetricFamily(
        "smshub_circuit_state",
        "Circuit breaker of each enabled provider account: 1 for its state now, 0 for the others.",
        labels=["provider_account", "provider", "state"],
    )
    for provider in sorted(providers.values(), key=lambda p: p.name):
        if not provider.enabled:
            continue
        state = circuit.state(provider.pk)
        for candidate in (circuit.CLOSED, circuit.OPEN, circuit.HALF_OPEN):
            family.add_metric([*_labels(provider), candidate], 1 if candidate == state else 0)
    return family


def holds(providers: dict[int, ProviderAccount]) -> Metric:
    family = GaugeMetricFamily(
        "smshub_provider_account_on_hold",
        "1 for an enabled provider account on hold (the provider refused the account itself: "
        "credentials, standing, configuration; nothing is sent through it), else 0.",
        labels=["provider_account", "provider"],
    )
    for provider in sorted(providers.values(), key=lambda p: p.name):
        if provider.enabled:
            family.add_metric(_labels(provider), 1 if provider.on_hold else 0)
    return family


def flood_held(now: datetime) -> Metric:
    """Due messages that wait because their account is over its flood limit (per minute or per
    hour, counted as the dispatcher counts them) or in its quiet hours."""
    family = GaugeMetricFamily(
        "smshub_flood_held_messages",
        "Messages due now but held back: their account spent its per-minute or per-hour flood "
        "limit, or is in its quiet hours.",
        labels=["account", "limit"],
    )
    limited = list(
        Account.objects.filter(
            Q(flood_limit_per_minute__isnull=False)
            | Q(flood_limit_per_hour__isnull=False)
            | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False)
        ).order_by("name")
    )
    if not limited:
        return family
    # Segments claimed in the last minute and hour, for all of them at once (one query over the
    # (account, claimed_at) index).
    used = {
        row["account_id"]: row
        for row in Message.objects.filter(
            account_id__in=[a.pk for a in limited], claimed_at__gt=now - HOUR
        )
        .values("account_id")
        .annotate(
            minute=Sum("segments", filter=Q(claimed_at__gt=now - MINUTE)),
            hour=Sum("segments"),
        )
        .order_by()
    }
    reasons = {}
    for account in limited:
        spent = used.get(account.pk, {})
        if account.in_quiet_hours(now) is not None:
            reasons[account.pk] = "quiet_hours"
        elif account.flood_limit_per_minute and (
            (spent.get("minute") or 0) >= account.flood_limit_per_minute
        ):
            reasons[account.pk] = "per_minute"
        elif account.flood_limit_per_hour and (
            (spent.get("hour") or 0) >= account.flood_limit_per_hour
        ):
            reasons[account.pk] = "per_hour"
    if not reasons:
        return family
    held = dict(
        Message.objects.filter(due_filter(now), account_id__in=list(reasons))
        .values_list("account_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for account in limited:
        if account.pk in reasons:
            family.add_metric([account.name, reasons[account.pk]], held.get(account.pk, 0))
    return family


class DomainCollector:
    """A prometheus_client collector: everything above, computed when collected."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        providers = _providers()
        yield messages_by_status(now, providers)
        yield send_latency(now, providers)
        yield queue_depth(now)
        yield from webhooks(now)
        yield circuits(providers)
        yield holds(providers)
        yield flood_held(now)
