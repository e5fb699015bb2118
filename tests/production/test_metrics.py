"""/metrics: behind its bearer token, and exact values after a known set of messages."""

from datetime import time as clock
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from campaigns.models import Message, WebhookRequest
from providers import circuit
from smshub import heartbeat

from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

TOKEN = "metrics-token-0123456789"
Status = Message.Status


@pytest.fixture
def metrics_on(settings):
    settings.SMSHUB_METRICS_TOKEN = TOKEN
    settings.SMSHUB_METRICS_WINDOW = 300


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get(reverse("metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name, **labels):
    return values[(name, tuple(sorted(labels.items())))]


def test_without_a_token_configured_there_is_no_endpoint(client, db, settings):
    settings.SMSHUB_METRICS_TOKEN = ""
    assert client.get(reverse("metrics")).status_code == 404
    headers = {"Authorization": "Bearer anything"}
    assert client.get(reverse("metrics"), headers=headers).status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"]
)
def test_without_the_right_bearer_token_it_is_a_401(client, db, metrics_on, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(reverse("metrics"), headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"smshub_" not in response.content


@pytest.fixture
def known_state(db, settings):
    """Messages, webhook requests, circuits and flood limits in known states."""
    settings.SMSHUB_CIRCUIT_FAILURES = 3
    now = timezone.now()
    alpha = ProviderAccountFactory(name="Alpha", slug="simulator")
    beta = ProviderAccountFactory(
        name="Beta",
        slug="vortext",
        credentials={"username": "u", "password": "p"},
        held_since=now,
        hold_reason="credentials refused by Vortext (HTTP 401)",
    )
    cache.delete_many([*circuit._keys(alpha.pk), *circuit._keys(beta.pk)])
    circuit.record_batch(beta.pk, [False, False, False])  # Beta's circuit opens
    acme = AccountFactory(name="Acme", route=[alpha, beta])

    def sent(provider, seconds, status=Status.DELIVERED, ago=60):
        claimed = now - timedelta(seconds=ago)
        return MessageFactory(
            account=acme,
            provider_account=provider,
            status=status,
            claimed_at=claimed,
            sent_at=claimed + timedelta(seconds=seconds),
        )

    sent(alpha, 0.2)
    sent(alpha, 0.7)
    sent(alpha, 3.0, status=Status.SENT)
    sent(beta, 0.05, status=Status.UNDELIVERED)
    MessageFactory(
        account=acme, provider_account=alpha, status=Status.FAILED, claimed_at=now, sent_at=None
    )
    MessageFactory(account=acme, provider_account=alpha, status=Status.SENDING, claimed_at=now)
    MessageFactory.create_batch(3, account=acme, status=Status.QUEUED)  # due now
    later = now + timedelta(minutes=5)
    MessageFactory(account=acme, status=Status.QUEUED, next_attempt_at=later)  # not due
    MessageFactory.create_batch(2, account=acme, status=Status.RETRYING, next_attempt_at=later)
    MessageFactory(account=acme, status=Status.SCHEDULED, scheduled_at=later)
    # Out of the window: written long ago.
    MessageFactory(
        account=acme,
        provider_account=alpha,
        status=Status.DELIVERED,
        created_at=now - timedelta(hours=2),
        claimed_at=now - timedelta(hours=2),
        sent_at=now - timedelta(hours=2) + timedelta(seconds=40),
    )
    # Held back: an account whose per-minute limit is spent, one in its quiet hours.
    busy = AccountFactory(name="Busy Ltd", flood_limit_per_minute=2, route=[alpha])
    MessageFactory.create_batch(
        2,
        account=busy,
        provider_account=alpha,
        status=Status.SENT,
        claimed_at=now - timedelta(seconds=10),
        sent_at=now - timedelta(seconds=9),
    )
    MessageFactory.create_batch(4, account=busy, status=Status.QUEUED)
    local = timezone.localtime(now, timezone=timezone.get_fixed_timezone(0))
    quiet = AccountFactory(
        name="Quiet Ltd",
        timezone="UTC",
        quiet_hours_start=clock((local.hour - 1) % 24),
        quiet_hours_end=clock((local.hour + 2) % 24),
    )
    MessageFactory(account=quiet, status=Status.QUEUED)
    # Webhook requests: two waiting (the oldest for two minutes), one failed, one applied.
    for ago, status in ((120, "received"), (10, "received"), (30, "failed"), (500, "applied")):
        WebhookRequest.objects.create(
            provider_account=alpha,
            kind="dlr",
            status=status,
            received_at=now - timedelta(seconds=ago),
        )
    heartbeat.record(at=now.timestamp() - 7)
    return alpha, beta


def test_metrics_after_a_known_run(client, metrics_on, known_state):
    values = scrape(client)

    def messages(status, provider_account="none", provider="none"):
        return value(
            values,
            "smshub_messages",
            status=status,
            provider_account=provider_account,
            provider=provider,
        )

    # Messages written in the window, by status now and provider account.
    assert messages("delivered", "Alpha", "simulator") == 2
    assert messages("sent", "Alpha", "simulator") == 3  # 1 of Acme, 2 of Busy Ltd
    assert messages("failed", "Alpha", "simulator") == 1
    assert messages("sending", "Alpha", "simulator") == 1
    assert messages("undelivered", "Beta", "vortext") == 1
    assert messages("queued") == 3 + 1 + 4 + 1
    assert messages("retrying") == 2
    assert messages("scheduled") == 1
    assert sum(v for (name, _), v in values.items() if name == "smshub_messages") == 20

    # Claim → answer, accepted sends claimed in the window: Alpha 0.2, 0.7, 3.0 and twice 1.0.
    def bucket(provider_account, le):
        return value(
            values,
            "smshub_send_latency_seconds_bucket",
            provider_account=provider_account,
            provider="simulator" if provider_account == "Alpha" else "vortext",
            le=le,
        )

    assert [bucket("Alpha", le) for le in ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0")] == [
        0,
        1,
        1,
        4,
        4,
        5,
    ]
    assert bucket("Alpha", "+Inf") == 5
    labels = {"provider_account": "Alpha", "provider": "simulator"}
    assert value(values, "smshub_send_latency_seconds_gcount", **labels) == 5
    assert value(values, "smshub_send_latency_seconds_gsum", **labels) == pytest.approx(5.9)
    assert bucket("Beta", "0.05") == 1 and bucket("Beta", "+Inf") == 1

    # The queue: due queued (Acme 3, Busy 4, Quiet 1), retrying, scheduled, sending.
    assert value(values, "smshub_queue_messages", status="queued") == 8
    assert value(values, "smshub_queue_messages", status="retrying") == 2
    assert value(values, "smshub_queue_messages", status="scheduled") == 1
    assert value(values, "smshub_queue_messages", status="sending") == 1

    # Webhooks: the oldest waiting one is two minutes old.
    assert 120 <= value(values, "smshub_webhook_lag_seconds") < 130
    assert value(values, "smshub_webhook_requests", status="received") == 2
    assert value(values, "smshub_webhook_requests", status="failed") == 1

    # Circuits: Beta's is open after three failures in a row, Alpha's closed.
    def circuit_state(name, slug, state):
        return value(
            values, "smshub_circuit_state", provider_account=name, provider=slug, state=state
        )

    assert [circuit_state("Alpha", "simulator", s) for s in ("closed", "open", "half-open")] == [
        1,
        0,
        0,
    ]
    assert [circuit_state("Beta", "vortext", s) for s in ("closed", "open", "half-open")] == [
        0,
        1,
        0,
    ]

    # Holds: Beta's credentials were refused.
    on_hold = "smshub_provider_account_on_hold"
    assert value(values, on_hold, provider_account="Beta", provider="vortext") == 1
    assert value(values, on_hold, provider_account="Alpha", provider="simulator") == 0

    # Held back by flood limits and quiet hours; Acme has no limit.
    assert value(values, "smshub_flood_held_messages", account="Busy Ltd", limit="per_minute") == 4
    assert (
        value(values, "smshub_flood_held_messages", account="Quiet Ltd", limit="quiet_hours") == 1
    )
    assert not [k for k in values if k[0] == "smshub_flood_held_messages" and "Acme" in str(k)]

    assert 7 <= value(values, "smshub_beat_heartbeat_age_seconds") < 15
    assert value(values, "smshub_metrics_scrape_seconds") > 0


def test_a_held_account_is_released_when_its_minute_passes(client, metrics_on, known_state):
    """The per-minute budget counts claims of the last minute only (as the dispatcher does)."""
    Message.objects.filter(account__name="Busy Ltd", status=Status.SENT).update(
        claimed_at=timezone.now() - timedelta(minutes=5)
    )
    values = scrape(client)
    assert not [k for k in values if k[0] == "smshub_flood_held_messages" and "Busy" in str(k)]
