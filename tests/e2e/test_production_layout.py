"""The production layout on one machine: the production Procfile run by honcho (granian with
two web workers, two Celery workers, beat) with DEBUG off, on PostgreSQL and Redis, the
simulator standing in for the provider. A campaign created through the JSON API over HTTP
goes all the way to delivered; /readyz, /metrics and the JSON logs say so.

The processes use a Redis database of their own for broker and cache, and a queue of their own,
so no other test's worker takes their tasks (nor they another's).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.db import connection

from campaigns.models import Message
from smshub import crypto

from ..conftest import database_url_for_subprocess
from ..factories import AccountFactory, ApiKeyFactory, ProviderAccountFactory
from ..production.test_serving import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
OUTPUT = ROOT / "test-output"
METRICS_TOKEN = "layout-metrics-token"
# Redis databases of these processes alone (others: 1 and 2 for CI's suite, 3 and 4 for
# `make run-prod`).
BROKER_DB, CACHE_DB = 13, 14
RECIPIENTS = [f"+3361234{n:04d}" for n in range(1, 21)]


def redis_server() -> str | None:
    """host:port of the Redis this run uses (broker or cache), if it uses one."""
    for url in (settings.CELERY_BROKER_URL, os.environ.get("CACHE_URL", "")):
        if url.startswith("redis://"):
            parts = urlsplit(url)
            return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
    return None


@pytest.fixture
def layout(simulator, django_db_blocker, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip(
            "the production layout runs on PostgreSQL and Redis: skipped on the SQLite leg "
            "(CI's PostgreSQL leg runs it)"
        )
    redis = redis_server()
    if redis is None:
        pytest.skip("the production layout needs Redis: set CELERY_BROKER_URL=redis://...")
    import redis as redis_client

    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    static_root = tmp_path / "static"
    static_root.mkdir()
    variables = {
        "DJANGO_SETTINGS_MODULE": "smshub.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "SMSHUB_ENCRYPTION_KEYS": ",".join(crypto.configured_keys()),
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": f"redis://{redis}/{BROKER_DB}",
        "CACHE_URL": f"redis://{redis}/{CACHE_DB}",
        "CELERY_TASK_DEFAULT_QUEUE": f"production-layout-{os.getpid()}",
        "CELERY_WORKER_CONCURRENCY": "2",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PUBLIC_BASE_URL": url,
        "SECURE_SSL_REDIRECT": "false",  # no TLS proxy in front here
        "STATIC_ROOT": str(static_root),
        "SMSHUB_METRICS_TOKEN": METRICS_TOKEN,
        "SMSHUB_SWEEP_INTERVAL": "1",
        "SMSHUB_HEARTBEAT_INTERVAL": "1",
    }
    env_file = tmp_path / "layout.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))
    for db in (BROKER_DB, CACHE_DB):
        redis_client.Redis.from_url(f"redis://{redis}/{db}").flushdb()
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "production-layout.log"
    with open(log, "w") as out:
        honcho = [sys.executable, "-m", "honcho", "-f", "Procfile", "-e", str(env_file)]
        process = subprocess.Popen(
            [*honcho, "start", "--concurrency", "worker=2", "--no-colour"],
            cwd=ROOT,
            env={
                **os.environ,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "PYTHONUNBUFFERED": "1",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Ready means every check passed, beat's heartbeat included: web, broker, cache, beat
        # and a worker are all up.
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"honcho exited:\n{log.read_text()[-4000:]}")
            try:
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still starting
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the layout did not get ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        yield url, log
    finally:
        process.send_signal(signal.SIGTERM)  # honcho stops every process
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for db in (BROKER_DB, CACHE_DB):
            redis_client.Redis.from_url(f"redis://{redis}/{db}").flushdb()


def metrics(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def test_a_campaign_goes_to_delivered_in_the_production_layout(layout, simulator):
    url, log = layout
    provider = ProviderAccountFactory(name="Simulator", base_url=simulator.url)
    account = AccountFactory(name="Acme", route=[provider])
    api_key = ApiKeyFactory(account=account, name="Booking site")
    api = {"Authorization": f"Bearer {api_key.secret}"}

    response = requests.post(
        f"{url}/api/v1/messages",
        json={"to": RECIPIENTS, "text": "Your parcel arrives today.", "campaign": "Parcels"},
        headers={**api, "X-Request-ID": "layout-create-1"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == "layout-create-1"
    campaign = response.json()["campaign"]
    assert response.json()["queued"] == len(RECIPIENTS)

    deadline = time.monotonic() + 30
    while True:
        counts = requests.get(
            f"{url}/api/v1/campaigns/{campaign['id']}", headers=api, timeout=10
        ).json()["counts"]
        if counts["delivered"] == len(RECIPIENTS):
            break
        assert time.monotonic() < deadline, f"not all delivered in time: {counts}"
        time.sleep(0.5)

    messages = list(Message.objects.filter(campaign_id=campaign["id"]).order_by("id"))
    assert sorted(m.recipient for m in messages) == RECIPIENTS
    for message in messages:
        assert message.status == Message.Status.DELIVERED
        assert message.provider_message_id.startswith("sim-")
        steps = [e.to_status for e in message.events.order_by("at", "id")]
        assert steps == ["queued", "sending", "sent", "delivered"], steps

    ready = requests.get(f"{url}/readyz", timeout=10).json()
    assert ready["status"] == "ok"
    assert ready["checks"]["beat"]["age_seconds"] < 3

    # Whichever web worker answers, the figures are the database's.
    for _ in range(2):
        values = metrics(url)
        delivered = (
            "smshub_messages{provider=simulator,provider_account=Simulator,status=delivered}"
        )
        assert values[delivered] == len(RECIPIENTS)
        assert values["smshub_queue_messages{status=queued}"] == 0
        assert values["smshub_queue_messages{status=sending}"] == 0
        count = "smshub_send_latency_seconds_gcount{provider=simulator,provider_account=Simulator}"
        assert values[count] == len(RECIPIENTS)
        assert values["smshub_webhook_lag_seconds{}"] == 0

    # Two Celery workers, granian and beat ran; their logs are JSON lines, with the request's
    # id on the access log, and no phone number in full anywhere.
    text = log.read_text()
    assert len(re.findall(r"worker\.\d +\| .*worker-\d+@\S+ ready\.", text)) == 2
    records = []
    for line in text.splitlines():
        _, _, rest = line.partition("| ")
        if rest.startswith("{"):
            records.append(json.loads(rest))
    assert {r["logger"] for r in records} >= {"granian.access", "celery.app.trace", "celery.beat"}
    created = {r["logger"]: r for r in records if r.get("request_id") == "layout-create-1"}
    assert created["campaigns.services.bulk"]["message"].startswith("campaign created")
    access = created["granian.access"]
    assert access["path"] == "/api/v1/messages" and access["status"] == 201
    assert not [number for number in RECIPIENTS if number in text]
