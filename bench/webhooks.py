"""Delivery reports applied per second through the real webhook view, over HTTP, against a bare
Django view that only answers 200 on the same server, and against a minimal Django application
(bench/minimal.py: no apps, no middleware) serving the same view: the floor for any Django view
on this machine. Everything is measured in the same run, with the same client and the same
gunicorn configuration.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhooks.py [N]

It creates a throwaway database (Django's test-database machinery) with N sent messages, starts
gunicorn on the hub (smshub.wsgi, as in production, DEBUG off, plain HTTP on loopback) and on
the minimal app, posts N requests to the minimal app, to the bare view through the webhooks'
middleware (/hooks/bare/) and through the pages' (/bare/), then one delivery report per message
to the webhook while an applier (what a Celery worker runs) applies them, and times until every
message is delivered. Prints the figures; the last line is one JSON object.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# As in production (a development .env may turn DEBUG on), without the TLS proxy in front.
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3000
CLIENTS = 16
# Sync workers per server, as the runs before this one had (whatever they printed): on a 2-core
# machine shared with the client, the applier and PostgreSQL, 2 x cores + 1 measured lower.
WORKERS = 2
PORT, MINIMAL_PORT = 8765, 8766
# Gunicorn's first answer may take seconds (workers import the hub): wait for it this long.
START_DEADLINE = 120


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


def gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """gunicorn serving `app` on `port`, its output in `log`; the same flags for every server."""
    command = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(WORKERS), "--log-level", "warning"]
    with open(log, "w") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until `url` answers 200; exits with the reason and the server's log tail if it never
    does within START_DEADLINE seconds, or if the server exits."""
    deadline = time.monotonic() + START_DEADLINE
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            code = server.returncode
            sys.exit(f"gunicorn for {url} exited ({code}); its log ends with:\n{log_tail(log)}")
        try:
            response = requests.get(url, timeout=(2, 30), allow_redirects=False)
        except requests.RequestException as exc:  # not listening yet, or a worker still booting
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        time.sleep(0.2)
    sys.exit(
        f"{url} did not answer 200 within {START_DEADLINE} s (last: {last}); "
        f"gunicorn's log ends with:\n{log_tail(log)}"
    )


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def short(middleware: list[str]) -> str:
    return ", ".join(name.rsplit(".", 1)[-1] for name in middleware)


def main() -> None:
    from campaigns.models import Account, Message
    from providers.models import ProviderAccount

    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    hub = minimal = applier = None
    logs = tempfile.TemporaryDirectory(prefix="bench-webhooks-")
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
        hub_log, minimal_log = Path(logs.name) / "hub.log", Path(logs.name) / "minimal.log"
        hub = gunicorn("smshub.wsgi:application", PORT, env, hub_log)
        minimal = gunicorn(
            "django.core.wsgi:get_wsgi_application()",
            MINIMAL_PORT,
            {**env, "DJANGO_SETTINGS_MODULE": "bench.minimal"},
            minimal_log,
        )
        base, minimal_base = f"http://127.0.0.1:{PORT}", f"http://127.0.0.1:{MINIMAL_PORT}"
        wait_until_up(base + "/bare/", hub, hub_log)
        wait_until_up(minimal_base + "/bare/", minimal, minimal_log)

        path = provider.webhook_url("dlr").removeprefix(settings.PUBLIC_BASE_URL)
        bodies = [json.dumps({"id": f"b{i}", "status": "delivered"}) for i in range(N)]

        def baseline(url: str) -> float:
            hammer([(url, body) for body in bodies[:200]])  # warm up
            return hammer([(url, body) for body in bodies])

        minimal_seconds = baseline(minimal_base + "/bare/")
        bare_seconds = baseline(base + "/hooks/bare/")
        pages_seconds = baseline(base + "/bare/")

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
        for process in (applier, hub, minimal):
            stop(process)
        logs.cleanup()
        connection.close()
        teardown_databases(old, verbosity=0)

    minimal_rate, bare_rate, pages_rate = N / minimal_seconds, N / bare_seconds, N / pages_seconds
    stored_rate, applied_rate = N / post_seconds, N / applied_seconds
    ratio, floor_ratio = applied_rate / bare_rate, bare_rate / minimal_rate
    print(f"database:             {connection.vendor}")
    print(
        f"reports:              {N} ({CLIENTS} concurrent clients; each server gunicorn with "
        f"{WORKERS} sync workers, DEBUG off)"
    )
    print(f"machine middleware:   {short(settings.MACHINE_MIDDLEWARE)}")
    print(f"page middleware:      {short(settings.MIDDLEWARE)}")
    print(f"minimal Django app:   {minimal_rate:,.0f} requests/s (bench/minimal.py: no middleware)")
    print(f"bare view:            {bare_rate:,.0f} requests/s (/hooks/bare/: machine middleware)")
    print(f"bare view, pages:     {pages_rate:,.0f} requests/s (/bare/: page middleware)")
    print(f"webhook answered:     {stored_rate:,.0f} reports/s (stored, 200; machine middleware)")
    print(f"webhook applied:      {applied_rate:,.0f} reports/s (message delivered)")
    print(f"ratio applied / bare: {ratio:.2f} (target at least 0.5)")
    print(f"ratio bare / minimal: {floor_ratio:.2f} (what the hub's handler costs a request)")
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "database": connection.vendor,
                "reports": N,
                "workers": WORKERS,
                "minimal_per_s": round(minimal_rate),
                "bare_per_s": round(bare_rate),
                "bare_pages_per_s": round(pages_rate),
                "answered_per_s": round(stored_rate),
                "applied_per_s": round(applied_rate),
                "ratio": round(ratio, 3),
                "bare_minimal_ratio": round(floor_ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--applier"]:
        apply_until(int(sys.argv[2]))
    else:
        main()
