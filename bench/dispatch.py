"""Messages sent per second through the whole dispatch pipeline, against bare HTTP posts to the
same simulator endpoint, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/dispatch.py [N]
        [--threads 4] [--latency-ms 50]

It creates a throwaway database (Django's test-database machinery) with N queued messages and
starts the provider simulator on loopback (delivery reports off: this measures sending). Then:

- pipeline: THREADS threads, each a "worker" looping `campaigns.services.dispatch.dispatch_once()`
  (claim a batch, send it over HTTP, record it) until nothing is due;
- bare, single-threaded: N `requests.Session().post` calls to the same endpoint with the same
  JSON body shape, one after the other;
- bare, threaded: the same N posts split over THREADS threads (one session each).

Prints messages/s for each, the ratios, SQL queries per message and peak memory; the last line
is one JSON object. `--latency-ms` makes the simulator answer that much later, in every run.
"""

import argparse
import json
import logging
import os
import resource
import sys
import threading
import time
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

from providers.simulator.server import SimulatorServer  # noqa: E402

API_KEY = "bench-simulator-key"
TEXT = "Your appointment is tomorrow at 10:00"


def recipient(i: int) -> str:
    """Distinct valid French mobile numbers (delivery reports are off: endings do not matter)."""
    return f"+336{12000000 + i * 7:08d}"


def body(i: int, callback_url: str) -> dict:
    """What the simulator adapter posts (providers/simulator/adapter.py)."""
    return {
        "to": recipient(i),
        "text": TEXT,
        "from": "",
        "reference": str(i),
        "callback_url": callback_url,
    }


def run_threads(count: int, target) -> float:
    """Start `count` threads running `target(index)`; seconds until all are done."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds


def pipeline(threads: int) -> tuple[float, int]:
    """Every "worker" thread dispatches until nothing is due; returns (seconds, SQL queries)."""
    from campaigns.services.dispatch import dispatch_once

    queries = [0] * threads

    def worker(index: int) -> None:
        def count(execute, sql, params, many, context):
            queries[index] += 1
            return execute(sql, params, many, context)

        try:
            with connection.execute_wrapper(count):
                idle = 0
                while idle < 3:  # nothing claimed three times in a row: the others finish
                    batch = dispatch_once()
                    if batch.claimed:
                        idle = 0
                    else:
                        idle += 1
                        time.sleep(0.01 if batch.waiting else 0.05)
        finally:
            connection.close()

    return run_threads(threads, worker), sum(queries)


def bare(url: str, bodies: list[dict], threads: int) -> float:
    """POST every body, split over `threads` threads with a session each; returns seconds."""
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def worker(index: int) -> None:
        session = requests.Session()
        for item in bodies[index::threads]:
            response = session.post(url, json=item, headers=headers, timeout=30)
            assert response.status_code == 201, response.text
        session.close()

    if threads == 1:
        started = time.perf_counter()
        worker(0)
        return time.perf_counter() - started
    return run_threads(threads, worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=5000, help="messages (default 5000)")
    parser.add_argument("--threads", type=int, default=4, help='"workers" (default 4)')
    parser.add_argument("--latency-ms", type=int, default=0, help="simulator latency (ms)")
    args = parser.parse_args()
    n, threads = args.n, args.threads

    from campaigns.models import Account, Message, RouteEntry
    from providers.models import ProviderAccount

    logging.getLogger("providers").setLevel(logging.WARNING)
    simulator = SimulatorServer(api_key=API_KEY, dlr_delay=1.0)
    simulator.schedule_callback = lambda *a, **k: None  # no delivery reports: sending only
    simulator.configure(faults={"simulator": {"latency_ms": args.latency_ms}})
    simulator.start()
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # A file, as in production: threads on a shared-cache in-memory database lock tables.
        database["TEST"]["NAME"] = str(ROOT / "var" / f"bench-dispatch-{os.getpid()}.sqlite3")
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        provider = ProviderAccount.objects.create(
            name="Bench", slug="simulator", base_url=simulator.url, credentials={"api_key": API_KEY}
        )
        account = Account.objects.create(name="Bench")
        RouteEntry.objects.create(account=account, provider_account=provider, position=0)
        Message.objects.bulk_create(
            (
                Message(
                    account=account,
                    recipient=recipient(i),
                    text=TEXT,
                    encoding=Message.Encoding.GSM7,
                    segments=1,
                    status=Message.Status.QUEUED,
                )
                for i in range(n)
            ),
            batch_size=1000,
        )
        callback_url = provider.webhook_url("dlr")
        url = f"{simulator.url}/simulator/messages"
        bodies = [body(i, callback_url) for i in range(n)]
        bare(url, bodies[:200], 1)  # warm up

        pipeline_seconds, queries = pipeline(threads)
        sent = Message.objects.filter(status=Message.Status.SENT).count()
        assert sent == n, f"only {sent} of {n} messages sent"
        single_seconds = bare(url, bodies, 1)
        threaded_seconds = bare(url, bodies, threads)
        vendor = connection.vendor
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
        simulator.stop()

    pipeline_rate, single_rate, threaded_rate = (
        n / pipeline_seconds,
        n / single_seconds,
        n / threaded_seconds,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database:                    {vendor}")
    print(
        f"messages:                    {n} ({threads} threads, batches of "
        f"{settings.SMSHUB_DISPATCH_BATCH_SIZE}, simulator latency {args.latency_ms} ms)"
    )
    print(f"pipeline:                    {pipeline_rate:,.0f} messages/s")
    print(f"bare posts, single-threaded: {single_rate:,.0f} requests/s")
    print(f"{f'bare posts, {threads} threads:':<29}{threaded_rate:,.0f} requests/s")
    print(f"ratio pipeline / single:     {pipeline_rate / single_rate:.2f}")
    print(f"ratio pipeline / threaded:   {pipeline_rate / threaded_rate:.2f}")
    print(f"SQL queries per message:     {queries / n:.2f}")
    print(f"peak memory (RSS):           {peak_mb:,.0f} MB")
    print(
        json.dumps(
            {
                "bench": "dispatch",
                "database": vendor,
                "messages": n,
                "threads": threads,
                "latency_ms": args.latency_ms,
                "pipeline_per_s": round(pipeline_rate),
                "bare_single_per_s": round(single_rate),
                "bare_threaded_per_s": round(threaded_rate),
                "ratio_single": round(pipeline_rate / single_rate, 3),
                "ratio_threaded": round(pipeline_rate / threaded_rate, 3),
                "queries_per_message": round(queries / n, 2),
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
