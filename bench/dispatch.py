"""Messages sent per second through the whole dispatch pipeline, against bare HTTP posts to the
same simulator endpoint, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/9 CACHE_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/dispatch.py [N] [--processes 2] [--concurrency 300] [--threads 16]
        [--simulators 2] [--latency-ms 50] [--max-per-second 100]

It creates a throwaway database (Django's test-database machinery) holding a campaign of N
queued messages, and starts the provider simulator: SIMULATORS processes sharing one port, so
that the stand-in provider is not what limits every run alike (delivery reports off: this
measures sending). Then, timed:

- pipeline: a real Celery worker (`bench/worker.py`: the project's app, counting SQL queries)
  with PROCESSES pool processes, each keeping up to CONCURRENCY messages in flight
  (`SMSHUB_SEND_CONCURRENCY`). It starts as a new campaign does: one nudge, then the beat sweep
  every `SMSHUB_SWEEP_INTERVAL` seconds (run here, as beat would), until every message is sent;
- bare, single-threaded: N `requests.Session().post` calls to the same endpoint with the same
  JSON body shape, one after the other, timed just before the pipeline and again just after
  it, the two averaged: a shared machine's speed drifts over a minute (with `--latency-ms`,
  timed on 1000 calls each time and scaled: N calls would take N times the latency);
- bare, threaded: the same N posts over THREADS threads (one session each).

Prints messages/s for each, the ratios, SQL queries per message, broker messages (tasks
published) per recipient and peak memory; the last line is one JSON object. `--latency-ms`
makes the simulator answer that much later, in every run.

With `--max-per-second R` the provider account is limited to R segments a second and only the
pipeline runs: it prints how long the N messages took against N / R seconds (target: at most
1.05 times) and the most sends the simulator received in one second (target: at most R).
"""

import argparse
import json
import logging
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Measured as in production: with DEBUG on, Django would also record every query's SQL.
os.environ["DEBUG"] = "false"

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from celery.signals import before_task_publish  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Avg, F  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

API_KEY = "bench-simulator-key"
QUEUE = "bench-dispatch"
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


def database_url() -> str:
    """The URL of the benchmark's database, for the worker process."""
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_simulator(port: int, latency_ms: int, sends_file: str, capacity: int) -> None:
    """One simulator process (of several sharing the port); on SIGTERM it writes when each send
    arrived."""
    from collections import deque

    from providers.simulator.server import SimulatorServer

    logging.getLogger("providers").setLevel(logging.WARNING)
    server = SimulatorServer(port=port, api_key=API_KEY, dlr_delay=1.0, reuse_port=True)
    server._log = deque(maxlen=capacity)
    server.schedule_callback = lambda *a, **k: None  # no delivery reports: sending only
    server.configure(faults={"simulator": {"latency_ms": latency_ms}})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    server.start()
    stop.wait()
    server.stop()
    moments = [
        e["at"]
        for e in server.requests_log
        if e.get("kind") == "request" and e["path"] == "/simulator/messages"
    ]
    Path(sends_file).write_text(json.dumps(moments))


class Simulator:
    """`count` simulator processes on one port: a provider's capacity is not what is measured."""

    def __init__(self, latency_ms: int, capacity: int, count: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")
        self.processes, self.sends_files = [], []
        for _ in range(count):
            handle, sends_file = tempfile.mkstemp(prefix="bench-sends-", suffix=".json")
            os.close(handle)
            process = context.Process(
                target=serve_simulator, args=(self.port, latency_ms, sends_file, capacity)
            )
            process.start()
            self.processes.append(process)
            self.sends_files.append(Path(sends_file))
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.05)
        time.sleep(0.5)  # the others bind too

    def stop(self) -> list[datetime]:
        """Stop them all; when each send arrived."""
        for process in self.processes:
            process.terminate()
        moments = []
        for process, path in zip(self.processes, self.sends_files, strict=True):
            process.join(timeout=30)
            text = path.read_text()
            moments += json.loads(text) if text else []
            path.unlink()
        return [datetime.fromisoformat(m) for m in moments]


class Worker:
    """`celery -A bench.worker worker` on the benchmark's database."""

    def __init__(self, processes: int, concurrency: int, database_url: str) -> None:
        self.query_dir = tempfile.mkdtemp(prefix="bench-queries-")
        self.log = Path(self.query_dir) / "worker.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SMSHUB_SEND_CONCURRENCY": str(concurrency),
            "BENCH_QUERY_DIR": self.query_dir,
        }
        command = [sys.executable, "-m", "celery", "-A", "bench.worker", "worker"]
        command += ["--concurrency", str(processes), "--loglevel", "INFO"]
        command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()  # never left behind, still waiting for tasks
                self.process.wait()
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> int:
        """Stop it (warm shutdown); the SQL queries its processes ran."""
        self.process.terminate()
        self.process.wait(timeout=60)
        return sum(
            int(path.read_text() or 0)
            for path in Path(self.query_dir).iterdir()
            if path.name.isdigit()
        )


def purge_broker() -> None:
    """Tasks an interrupted earlier run left in the benchmark's queue."""
    from bench.worker import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


def pipeline(n: int, worker: Worker) -> tuple[float, int]:
    """Nudge, then sweep as beat would, until all N are sent: (seconds, tasks published)."""
    from bench.worker import app  # noqa: F401  (tasks go to the benchmark's own queue)
    from campaigns import tasks
    from campaigns.models import Message
    from campaigns.services.compose import nudge_dispatcher

    published = Counter()

    def count(sender=None, **kwargs) -> None:
        published[sender] += 1

    before_task_publish.connect(count, weak=False)
    # Cheap to ask (partial indexes): whether anything is still to be sent or being sent.
    queued = Message.objects.filter(status=Message.Status.QUEUED)
    sending = Message.objects.filter(status=Message.Status.SENDING)
    started = last_sweep = time.perf_counter()
    nudge_dispatcher()  # what creating a campaign does once it is committed
    try:
        while queued.exists() or sending.exists():
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker died:\n{worker.log.read_text()[-3000:]}")
            if time.perf_counter() - last_sweep >= settings.SMSHUB_SWEEP_INTERVAL:
                tasks.sweep()
                last_sweep = time.perf_counter()
            time.sleep(0.1)
        return time.perf_counter() - started, sum(published.values())
    finally:
        before_task_publish.disconnect(count)


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


def busiest_second(moments: list[datetime]) -> tuple[int, int]:
    """The most sends in one calendar second, and in any sliding second."""
    per_second = Counter(m.replace(microsecond=0) for m in moments)
    ordered, start, sliding = sorted(moments), 0, 0
    for end, moment in enumerate(ordered):
        while (moment - ordered[start]).total_seconds() >= 1:
            start += 1
        sliding = max(sliding, end - start + 1)
    return max(per_second.values(), default=0), sliding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="messages (20000)")
    parser.add_argument("--processes", type=int, default=2, help="worker pool processes (2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=settings.SMSHUB_SEND_CONCURRENCY,
        help=f"messages in flight per process ({settings.SMSHUB_SEND_CONCURRENCY})",
    )
    parser.add_argument("--threads", type=int, default=16, help="threads of the baseline (16)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulator latency (ms)")
    parser.add_argument("--max-per-second", type=int, default=0, help="provider limit (none)")
    parser.add_argument("--simulators", type=int, default=2, help="simulator processes (2)")
    args = parser.parse_args()
    n, limit = args.n, args.max_per_second
    threads = args.threads

    from campaigns.models import Account, Campaign, Message, RouteEntry
    from providers.models import ProviderAccount

    simulator = Simulator(args.latency_ms, capacity=3 * n + 1000, count=args.simulators)
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # A file, as in production: the worker is another process.
        database["TEST"]["NAME"] = str(ROOT / "var" / f"bench-dispatch-{os.getpid()}.sqlite3")
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    worker = None
    try:
        purge_broker()
        provider = ProviderAccount.objects.create(
            name="Bench",
            slug="simulator",
            base_url=simulator.url,
            credentials={"api_key": API_KEY},
            max_per_second=limit or None,
        )
        account = Account.objects.create(name="Bench")
        RouteEntry.objects.create(account=account, provider_account=provider, position=0)
        campaign = Campaign.objects.create(
            account=account, name="Bench", text=TEXT, status=Campaign.Status.RUNNING
        )
        Message.objects.bulk_create(
            (
                Message(
                    account=account,
                    campaign=campaign,
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
        # With latency, N calls one after the other take N x latency: sampled on fewer.
        sample = bodies[: min(n, 1000)] if args.latency_ms else bodies
        single_before = 0 if limit else bare(url, sample, 1) * n / len(sample)
        worker = Worker(args.processes, args.concurrency, database_url())
        pipeline_began = datetime.now(UTC)
        pipeline_seconds, published = pipeline(n, worker)
        queries, worker = worker.stop(), None
        sent = Message.objects.filter(status=Message.Status.SENT).count()
        assert sent == n, f"only {sent} of {n} messages sent"
        in_flight = Message.objects.aggregate(t=Avg(F("sent_at") - F("claimed_at")))["t"]
        if not limit:
            single_after = bare(url, sample, 1) * n / len(sample)
            single_seconds = (single_before + single_after) / 2
            threaded_seconds = bare(url, bodies, threads)
        vendor = connection.vendor
    finally:
        if worker is not None:
            worker.stop()
        connection.close()
        teardown_databases(old, verbosity=0)
        moments = simulator.stop()

    pipeline_rate = n / pipeline_seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "bench": "dispatch",
        "database": vendor,
        "broker": settings.CELERY_BROKER_URL.split("://")[0],
        "messages": n,
        "processes": args.processes,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "simulators": args.simulators,
        "pipeline_per_s": round(pipeline_rate),
        "queries_per_message": round(queries / n, 2),
        "broker_messages_per_recipient": round(published / n, 4),
        "peak_rss_mb": round(peak_mb),
        "worker_peak_rss_mb": round(worker_peak_mb),
    }
    print(f"database, broker:            {vendor}, {figures['broker']}")
    print(
        f"messages:                    {n} ({args.processes} worker processes x "
        f"{args.concurrency} messages in flight, batches of {settings.SMSHUB_DISPATCH_BATCH_SIZE}, "
        f"{args.simulators} simulator processes, latency {args.latency_ms} ms)"
    )
    print(f"pipeline:                    {pipeline_rate:,.0f} messages/s, {pipeline_seconds:.1f} s")
    if limit:
        calendar, sliding = busiest_second([m for m in moments if m >= pipeline_began])
        ratio = pipeline_seconds / (n / limit)
        print(f"limit:                       {limit} segments/s: {n / limit:.0f} s at best")
        print(f"ratio time / best time:      {ratio:.3f} (target <= 1.05)")
        print(f"busiest second (calendar):   {calendar} sends (target <= {limit})")
        print(f"busiest second (sliding):    {sliding} sends")
        print(f"claim to answer, on average: {in_flight.total_seconds() * 1000:.0f} ms")
        figures.update(
            max_per_second=limit,
            ratio_time=round(ratio, 3),
            busiest_calendar_second=calendar,
            busiest_sliding_second=sliding,
            claim_to_answer_ms=round(in_flight.total_seconds() * 1000),
        )
    else:
        single_rate, threaded_rate = n / single_seconds, n / threaded_seconds
        print(
            f"bare posts, single-threaded: {single_rate:,.0f} requests/s "
            f"({n / single_before:,.0f} before the pipeline, {n / single_after:,.0f} after)"
        )
        print(f"{f'bare posts, {threads} threads:':<29}{threaded_rate:,.0f} requests/s")
        print(f"ratio pipeline / single:     {pipeline_rate / single_rate:.2f} (target >= 1.0)")
        print(f"ratio pipeline / threaded:   {pipeline_rate / threaded_rate:.2f} (target >= 0.85)")
        figures.update(
            bare_single_per_s=round(single_rate),
            bare_single_before_per_s=round(n / single_before),
            bare_single_after_per_s=round(n / single_after),
            bare_threaded_per_s=round(threaded_rate),
            ratio_single=round(pipeline_rate / single_rate, 3),
            ratio_threaded=round(pipeline_rate / threaded_rate, 3),
        )
    print(f"SQL queries per message:     {queries / n:.2f} (target <= 3)")
    print(f"broker messages / recipient: {published / n:.4f} (target <= 0.01)")
    print(f"peak memory (RSS):           {peak_mb:,.0f} MB here, {worker_peak_mb:,.0f} MB worker")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
