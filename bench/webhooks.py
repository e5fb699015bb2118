"""Delivery reports applied per second through the real webhook view, over HTTP, against a bare
Django view that only answers 200 on the same server, and against a minimal Django application
(bench/minimal.py: no apps, no middleware) serving the same view: the floor for any Django view
on this machine. Everything is measured in the same run, with the same client and the same
granian configuration.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhooks.py [N]
        [--workers W] [--threads T] [--connections C] [--access-log] [--runs K] [--target R]

It creates a throwaway database (Django's test-database machinery) with N sent messages, starts
granian on the hub (`smshub.web:application`, as in production, DEBUG off, plain HTTP/1.1 on
loopback) and on the minimal app, both with production's options (smshub/web.py's `options()`,
so `WEB_CONCURRENCY` and `WEB_THREADS` apply; `--workers` and `--threads` override them) but
no access log (`--access-log`: both write theirs, as production does by default). The client
is one asyncio process keeping C connections alive, as the TLS proxy in front of the web server
does (deploy/nginx.conf), on the hub's own provider-call connections (providers/transport.py),
so that it costs a fraction of what the server does.
It posts N requests to the minimal app, to the bare view through the webhooks' middleware
(/hooks/bare/) and through the pages' (/bare/), then one delivery report per message to the
webhook while an applier process (started and warmed up beforehand) runs what a Celery worker
runs (`webhook_log.apply_batches()`), and times until every message is
delivered. Prints the figures, with the CPU milliseconds per request of the client, the web
server, the applier and PostgreSQL; the last line is one JSON object. With `--runs K` it does
all of that K times on the same servers (each round on messages of its own) and prints each
round's main figures, then the median of every figure.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from bench.procs import processes, production_server, tree_cpu  # noqa: E402
from providers.transport import Connection  # noqa: E402

PORT, MINIMAL_PORT = 8765, 8766
# Granian's first answer may take seconds (workers import the hub): wait for it this long.
START_DEADLINE = 120
# Reports must be applied as fast as the hub sends a campaign, or they pile up: its bulk rate
# at 50 ms is to be at least half Kannel's (bench/peer.py), which `--target` takes on the
# machine at hand; this figure when it is not given.
TARGET_PER_S = 2000
WARM_UP = 200
READY, DONE = "applier ready", "applier done: "


def arguments() -> argparse.Namespace:
    server = production_server()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="?", type=int, default=3000)
    parser.add_argument(
        "--workers", type=int, default=server["workers"], help="worker processes (WEB_CONCURRENCY)"
    )
    parser.add_argument(
        "--threads", type=int, default=server["threads"], help="threads per worker (WEB_THREADS)"
    )
    parser.add_argument("--connections", type=int, default=16, help="kept-alive connections")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="both servers write their access log, as production does by default",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="rounds of every measurement, one after the other on the same servers: the "
        "figures printed are their medians (each round's on a line of its own)",
    )
    parser.add_argument(
        "--target",
        type=int,
        default=TARGET_PER_S,
        help="reports/s to apply at least: half Kannel's bulk rate at 50 ms from bench/peer.py "
        f"on this machine ({TARGET_PER_S:,} when not given)",
    )
    args = parser.parse_args()
    if args.target < 1:
        parser.error("--target must be at least 1 (reports a second)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def wire(method: str, path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request for `path` as written on the wire, made before the clock starts
    (every server here listens on 127.0.0.1; `hammer` says on which port)."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin1") + body


def hammer(port: int, requests: list[bytes], expected: int, connections: int) -> float:
    """Send every request (`wire`) to the server on `port` over `connections` kept-alive
    connections, each waiting for its answer (`expected`) before the next; returns seconds.

    The client is the hub's own provider-call connection (`providers.transport.Connection`:
    asyncio's protocol and llhttp), cheaper than a general client (aiohttp, which it was), so
    that the client takes as little as it can of the cores the servers share with it."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        todo = iter(requests)

        async def client() -> None:
            _, connection = await loop.create_connection(Connection, "127.0.0.1", port)
            try:
                for request in todo:
                    if not connection.open:
                        _, connection = await loop.create_connection(Connection, "127.0.0.1", port)
                    answer = await connection.exchange(request, 120)
                    body = b"".join(answer.body)
                    assert answer.status == expected, (answer.status, body[:500])
                    if not answer.keep_alive:
                        connection.close()
            finally:
                connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        return time.perf_counter() - started

    return asyncio.run(run())


def apply_all(count: int, rounds: int) -> None:
    """The worker's side, in its own process: each time it is told to start (a line on stdin),
    what the Celery task does (`apply_batches`) until `count` requests were taken; prints when
    it finished and the CPU it used, `rounds` times."""
    from campaigns.services.webhook_log import apply_batches, apply_received

    apply_received()  # connected, and every module imported: ready
    print(READY, flush=True)
    for _ in range(rounds):
        sys.stdin.readline()
        cpu = time.process_time()
        apply_batches(budget=float("inf"), linger=float("inf"), enough=count)
        done = {"done_at": time.time(), "cpu_s": time.process_time() - cpu}
        print(DONE + json.dumps(done), flush=True)


def said(applier: subprocess.Popen, prefix: str) -> str:
    """What follows `prefix` in the applier's next line starting with it; exits if it ends
    first."""
    for line in applier.stdout:
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    sys.exit(f"the applier ended ({applier.wait()}) before saying {prefix!r}")


# Each server runs production's granian options (smshub/web.py's `options()`: HTTP/1.1, no
# WebSocket, idle threads kept, its timeouts), only its WSGI target and these settings changed.
SERVE = (
    "import sys; from granian.server import Server; from smshub.web import options; "
    "Server(**options() | {'target': sys.argv[1], 'factory': sys.argv[2] == 'factory'}).serve()"
)


def granian(
    target: str,
    port: int,
    env: dict[str, str],
    log: Path,
    args: argparse.Namespace,
    factory: bool = False,
) -> subprocess.Popen:
    """granian serving the WSGI `target` on `port` with production's options and the bench's
    workers and threads, with an access log only if asked, its output (the access log too) in
    `log` (`factory`: `target` is a
    function returning the application)."""
    command = [sys.executable, "-c", SERVE, target, "factory" if factory else "application"]
    env = env | {
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(args.workers),
        "WEB_THREADS": str(args.threads),
        "WEB_ACCESS_LOG": "true" if args.access_log else "false",
    }
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


def wait_until_up(port: int, path: str, server: subprocess.Popen, log: Path) -> None:
    """Until `path` on `port` answers 200; exits with the reason and the server's log tail if it
    never does within START_DEADLINE seconds, or if the server exits."""

    async def answer() -> str:
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(Connection, "127.0.0.1", port)
        _, connection = await asyncio.wait_for(connecting, 2)
        try:
            return f"HTTP {(await connection.exchange(wire('GET', path), 30)).status}"
        finally:
            connection.close()

    deadline = time.monotonic() + START_DEADLINE
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            code = server.returncode
            sys.exit(f"granian on :{port} exited ({code}); its log ends with:\n{log_tail(log)}")
        try:
            last = asyncio.run(answer())
        except (OSError, TimeoutError) as exc:  # not listening yet, or booting
            last = f"{type(exc).__name__}: {exc}"
        if last == "HTTP 200":
            return
        time.sleep(0.2)
    sys.exit(
        f"{path} on :{port} did not answer 200 within {START_DEADLINE} s (last: {last}); "
        f"granian's log ends with:\n{log_tail(log)}"
    )


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(roots: list[int]) -> dict[str, float]:
    """CPU seconds so far of the process trees under `roots` ("web"), of PostgreSQL (all its
    processes on this machine) and of this process (the client)."""
    table = processes()
    web = tree_cpu(roots, table)
    postgres = sum(cpu for _, name, cpu in table.values() if name == "postgres")
    return {"web": web, "postgres": postgres, "client": time.process_time()}


def per_request(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {key: round((after[key] - before[key]) * 1000 / n, 3) for key in before}


def short(middleware: list[str]) -> str:
    return ", ".join(name.rsplit(".", 1)[-1] for name in middleware)


def measure_round(
    args: argparse.Namespace,
    bodies: list[bytes],
    path: str,
    servers: dict[str, subprocess.Popen],
    applier: subprocess.Popen,
) -> dict:
    """One round: the minimal app, the bare view through each middleware, then one delivery
    report per body to the webhook while the applier applies them; rates and CPU per request."""
    n, connections, cpu = len(bodies), args.connections, {}
    hub, minimal = servers["hub"], servers["minimal"]

    def measure(name: str, port: int, path: str, server: subprocess.Popen) -> float:
        hammer(port, [wire("POST", path, body) for body in bodies[:WARM_UP]], 200, connections)
        posts = [wire("POST", path, body) for body in bodies]
        before = cpu_seconds([server.pid])
        seconds = hammer(port, posts, 200, connections)
        cpu[name] = per_request(before, cpu_seconds([server.pid]), n)
        return seconds

    minimal_seconds = measure("minimal", MINIMAL_PORT, "/bare/", minimal)
    bare_seconds = measure("bare", PORT, "/hooks/bare/", hub)
    pages_seconds = measure("pages", PORT, "/bare/", hub)

    # Warmed up with GETs, which look the token up (each connection to the database opened)
    # and are refused (405) without storing anything.
    hammer(PORT, [wire("GET", path)] * WARM_UP, 405, connections)
    posts = [wire("POST", path, body) for body in bodies]
    before = cpu_seconds([hub.pid])
    started_wall, started = time.time(), time.perf_counter()
    applier.stdin.write("go\n")
    applier.stdin.flush()
    post_seconds = hammer(PORT, posts, 200, connections)
    stored = cpu_seconds([hub.pid])
    done = json.loads(said(applier, DONE))
    after = cpu_seconds([hub.pid])
    cpu["webhook"] = per_request(before, stored, n)
    cpu["webhook"]["postgres"] = per_request(before, after, n)["postgres"]
    cpu["webhook"]["applier"] = round(done["cpu_s"] * 1000 / n, 3)
    applied_rate = n / (done["done_at"] - started_wall)
    return {
        "minimal_per_s": n / minimal_seconds,
        "bare_per_s": n / bare_seconds,
        "bare_pages_per_s": n / pages_seconds,
        "answered_per_s": n / post_seconds,
        "applied_per_s": applied_rate,
        "waited_s": time.perf_counter() - started,
        "cpu_ms": cpu,
    }


def medians(rounds: list[dict]) -> dict:
    """Each figure of `rounds` (CPU milliseconds included) as the median of its rounds."""
    figures = {
        key: statistics.median(r[key] for r in rounds) for key in rounds[0] if key != "cpu_ms"
    }
    figures["cpu_ms"] = {
        name: {
            key: round(statistics.median(r["cpu_ms"][name][key] for r in rounds), 3)
            for key in values
        }
        for name, values in rounds[0]["cpu_ms"].items()
    }
    return figures


def main(args: argparse.Namespace) -> None:
    from campaigns.models import Account, Message
    from providers.models import ProviderAccount

    if connection.vendor != "postgresql":  # its servers and applier share the database
        sys.exit("bench/webhooks.py runs as in production: set DATABASE_URL to PostgreSQL.")
    n, runs = args.reports, args.runs
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    hub = minimal = applier = None
    logs = tempfile.TemporaryDirectory(prefix="bench-webhooks-")
    rounds = []
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
            for i in range(n * runs)
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": "memory://localhost/",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
        }
        hub_log, minimal_log = Path(logs.name) / "hub.log", Path(logs.name) / "minimal.log"
        hub = granian("smshub.web:application", PORT, env, hub_log, args)
        minimal = granian(
            "django.core.wsgi:get_wsgi_application",
            MINIMAL_PORT,
            {**env, "DJANGO_SETTINGS_MODULE": "bench.minimal"},
            minimal_log,
            args,
            factory=True,
        )
        # The applier runs in its own process, as a Celery worker would, started now so that
        # its start-up is not timed.
        applier = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, __file__, "--applier", str(n), str(runs)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_until_up(PORT, "/bare/", hub, hub_log)
        wait_until_up(MINIMAL_PORT, "/bare/", minimal, minimal_log)
        said(applier, READY)

        path = provider.webhook_url("dlr").removeprefix(settings.PUBLIC_BASE_URL)
        servers = {"hub": hub, "minimal": minimal}
        for run in range(runs):
            # Each round reports on messages of its own, still `sent`.
            first = run * n
            bodies = [
                json.dumps({"id": f"b{first + i}", "status": "delivered"}).encode()
                for i in range(n)
            ]
            rounds.append(measure_round(args, bodies, path, servers, applier))
            if runs > 1:
                r = rounds[-1]
                print(
                    f"run {run + 1}: minimal {r['minimal_per_s']:,.0f}/s, bare "
                    f"{r['bare_per_s']:,.0f}/s, reports answered {r['answered_per_s']:,.0f}/s "
                    f"and applied {r['applied_per_s']:,.0f}/s, web CPU "
                    f"{r['cpu_ms']['webhook']['web']:.2f} ms a report",
                    flush=True,
                )
        applier.wait(timeout=600)
        assert Message.objects.filter(status="delivered").count() == n * runs
    finally:
        for process in (applier, hub, minimal):
            stop(process)
        logs.cleanup()
        connection.close()
        teardown_databases(old, verbosity=0)

    figures = medians(rounds)
    cpu = figures["cpu_ms"]
    minimal_rate, bare_rate = figures["minimal_per_s"], figures["bare_per_s"]
    pages_rate, stored_rate = figures["bare_pages_per_s"], figures["answered_per_s"]
    applied_rate = figures["applied_per_s"]
    ratio, floor_ratio = applied_rate / bare_rate, bare_rate / minimal_rate
    server = f"{args.workers} workers x {args.threads} threads"
    server += ", with" if args.access_log else ", without"
    server += " an access log"

    def ms(name: str) -> str:
        return ", ".join(f"{key} {value:.2f}" for key, value in cpu[name].items())

    print(f"database:             {connection.vendor}")
    print(
        f"reports:              {n} (one asyncio client, {args.connections} kept-alive "
        f"connections; each server granian with {server}, DEBUG off)"
    )
    if runs > 1:
        print(f"runs:                 {runs}, one after the other: each figure is their median")
    print(f"machine middleware:   {short(settings.MACHINE_MIDDLEWARE)}")
    print(f"page middleware:      {short(settings.MIDDLEWARE)}")
    print(f"minimal Django app:   {minimal_rate:,.0f} requests/s (bench/minimal.py: no middleware)")
    print(f"bare view:            {bare_rate:,.0f} requests/s (/hooks/bare/: machine middleware)")
    print(f"bare view, pages:     {pages_rate:,.0f} requests/s (/bare/: page middleware)")
    print(f"webhook answered:     {stored_rate:,.0f} reports/s (stored, 200; machine middleware)")
    print(
        f"webhook applied:      {applied_rate:,.0f} reports/s (message delivered; target "
        f"{args.target:,}/s: {applied_rate / args.target:.2f} of it)"
    )
    print(f"ratio applied / bare: {ratio:.2f}")
    print(f"ratio bare / minimal: {floor_ratio:.2f} (what the hub's handler costs a request)")
    print("CPU ms per request:")
    for name in ("minimal", "bare", "pages", "webhook"):
        print(f"  {name + ':':<19} {ms(name)}")
    print(
        f"  (applier and PostgreSQL until the last report was applied, {figures['waited_s']:.1f} s)"
    )
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "database": connection.vendor,
                "reports": n,
                "runs": runs,
                "workers": args.workers,
                "threads": args.threads,
                "connections": args.connections,
                "access_log": args.access_log,
                "minimal_per_s": round(minimal_rate),
                "bare_per_s": round(bare_rate),
                "bare_pages_per_s": round(pages_rate),
                "answered_per_s": round(stored_rate),
                "applied_per_s": round(applied_rate),
                "target_per_s": args.target,
                "ratio": round(ratio, 3),
                "bare_minimal_ratio": round(floor_ratio, 3),
                "cpu_ms": cpu,
                "rounds": [
                    {
                        key: round(value) if key.endswith("_per_s") else value
                        for key, value in r.items()
                        if key != "waited_s"
                    }
                    for r in rounds
                ]
                if runs > 1
                else [],
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--applier"]:
        apply_all(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(arguments())
