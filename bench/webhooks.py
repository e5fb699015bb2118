"""Delivery reports applied per second through the real webhook view, over HTTP, against a bare
Django view that only answers 200, served by the same gunicorn in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhooks.py [N]

It creates a throwaway database (Django's test-database machinery) with N sent messages, starts
gunicorn on it, posts N requests to the bare view, then one delivery report per message to the
webhook while an applier (what a Celery worker runs) applies them, and times until every message
is delivered. Prints the figures; the last line is one JSON object.
"""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3000
CLIENTS = 16
# gunicorn's own recommendation: 2 x cores + 1 sync workers.
WORKERS = 2 * (os.cpu_count() or 1) + 1
PORT = 8765


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def hammer(session_urls: list[tuple[str, str]]) -> float:
    """POST every (url, body) with CLIENTS concurrent keep-alive sessions; returns seconds."""
    local = threading.local()

    def post(item):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        url, body = item
        response = local.session.post(url, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, session_urls))
    return time.perf_counter() - started


def apply_until(count: int) -> None:
    """The worker's side: apply stored reports until `count` messages are delivered."""
    from campaigns.models import Message
    from campaigns.services.webhook_log import apply_received

    while Message.objects.filter(status="delivered").count() < count:
        if not apply_received(limit=500):
            time.sleep(0.02)


def main() -> None:
    from campaigns.models import Account, Message
    from providers.models import ProviderAccount

    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    server = None
    try:
        provider = ProviderAccount.objects.create(
            name="Bench",
            slug="simulator",
            base_url="http://127.0.0.1:9",
            credentials={"api_key": "k"},
        )
        account = Account.objects.create(name="Bench")
        Message.objects.bulk_create(
            Message(
                account=account,
                recipient="+33612345678",
                text="bench",
                status="sent",
                provider_account=provider,
                provider_message_id=f"b{i}",
            )
            for i in range(N)
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": "memory://localhost/",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
        }
        server = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                "-m",
                "gunicorn",
                "smshub.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{PORT}"
        for _ in range(100):
            try:
                requests.get(base + "/bare/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        path = provider.webhook_url("dlr").removeprefix(settings.PUBLIC_BASE_URL)
        bodies = [json.dumps({"id": f"b{i}", "status": "delivered"}) for i in range(N)]
        hammer([(base + "/bare/", body) for body in bodies[:200]])  # warm up

        bare_seconds = hammer([(base + "/bare/", body) for body in bodies])

        # The applier runs in its own process, as a Celery worker would.
        applier = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, __file__, "--applier", str(N)], cwd=ROOT, env=env
        )
        started = time.perf_counter()
        post_seconds = hammer([(base + path, body) for body in bodies])
        applier.wait(timeout=600)
        applied_seconds = time.perf_counter() - started
        assert Message.objects.filter(status="delivered").count() == N
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        connection.close()
        teardown_databases(old, verbosity=0)

    bare_rate, stored_rate, applied_rate = N / bare_seconds, N / post_seconds, N / applied_seconds
    ratio = applied_rate / bare_rate
    print(f"database:             {connection.vendor}")
    print(
        f"reports:              {N} ({CLIENTS} concurrent clients, gunicorn with {WORKERS} workers)"
    )
    print(f"bare view:            {bare_rate:,.0f} requests/s")
    print(f"webhook answered:     {stored_rate:,.0f} reports/s (stored, 200)")
    print(f"webhook applied:      {applied_rate:,.0f} reports/s (message delivered)")
    print(f"ratio applied / bare: {ratio:.2f} (target at least 0.5)")
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "database": connection.vendor,
                "reports": N,
                "bare_per_s": round(bare_rate),
                "answered_per_s": round(stored_rate),
                "applied_per_s": round(applied_rate),
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--applier"]:
        apply_until(int(sys.argv[2]))
    else:
        main()
