"""Kannel beside the hub: both push the same N SMS to the same fast fake provider, in one run,
timed from the first submission to the last arrival in the fake's own log.

    apt-get install -y kannel    # Debian's 1.4.5; stop the service it may start
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/10 CACHE_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/peer.py [N] [--modes bulk,singles] [--latencies 0,50]
        [--systems kannel,hub] [--runs 1] [--web-workers W]

- The fake (`bench/fake_provider.py`): plain asyncio, 2 processes on one port, answering
  `latency` ms later. Its own capacity is measured first with a bare client, and so is the
  ceiling of the singles client (what it can submit at most, to the fake itself).
- Kannel: `bearerbox` then `smsbox` from /usr/sbin on `KANNEL_CONF` below (as a competent
  admin would set it: `max-pending-submits = 500`, messages kept in memory), written to a
  temporary folder, on free ports, their consoles at warning level like its `log-level = 2`.
- The hub as in production: `DEBUG=false`, a throwaway PostgreSQL database of its own,
  granian as production starts it (`python -m smshub.web`: `--web-workers` workers, as many as
  it starts by default: one per CPU plus one, of `WEB_THREADS` threads, 4 by default, with its
  access log), one Celery worker with 2 processes (`bench/dispatch.py`'s Worker) and beat; a
  `simulator` provider account at the fake without limits, alone on the account's route;
  sender and category empty. Changed for the bench: the API's per-key rate limit
  (`SMSHUB_API_RATE_LIMIT`), so that it measures throughput. Clients send
  `X-Forwarded-Proto: https` as the TLS-terminating proxy of production does.
- bulk: Kannel gets ceil(N / 100) GETs of /cgi-bin/sendsms with 100 numbers each in `to`; the
  hub one POST /api/v1/messages with all N numbers. singles: one request per message from 16
  client threads (`--threads`), each with its own keep-alive connection.

Prints messages/s per system, mode and latency, the ratio hub / Kannel, and the CPU ms per
message of the hub's web processes (granian's main process and workers), worker processes (Celery
and its pool) and PostgreSQL (all its processes), read from /proc before and after each case;
the last line is one JSON object.
With `--runs R` every case runs R times and the medians are shown.
"""

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Every process started here inherits these: one API key may send as fast as it can, and the
# clients say they came through an HTTPS proxy (no redirect to https://).
API_RATE_LIMIT = 1_000_000_000
os.environ["SMSHUB_API_RATE_LIMIT"] = str(API_RATE_LIMIT)
os.environ["SECURE_PROXY_SSL_HEADER"] = "X-Forwarded-Proto"

from bench.dispatch import (  # noqa: E402
    QUEUE,
    Worker,
    database_url,
    free_port,
    purge_broker,
    recipient,
)
from bench.fake_provider import HUB, KANNEL, FakeProvider, measure_capacity  # noqa: E402
from bench.procs import processes, production_server, tree_cpu  # noqa: E402

os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE  # bench.worker's queue, for web and beat too

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

TEXT = "Your appointment is tomorrow at 10:00"
API_KEY = "bench-peer-key"  # the fake's: what the hub's provider account sends
KANNEL_USER, KANNEL_PASSWORD = "bench", "bench-peer"
BEARERBOX, SMSBOX = Path("/usr/sbin/bearerbox"), Path("/usr/sbin/smsbox")
WARMUP = 20
# A case fails when no send arrives at the fake for this long.
STALL_SECONDS = 60

KANNEL_CONF = """\
group = core
admin-port = {admin_port}
admin-password = {password}
status-password = {password}
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox_port}
box-allow-ip = "127.0.0.1"
log-level = 2
dlr-storage = internal
http-timeout = 30
sms-resend-freq = 1

group = smsc
smsc = http
smsc-id = fake
smsc-admin-id = fake
system-type = generic
send-url = "{fake_url}/send?to=%p&text=%b&from=%P"
status-success-regex = "\\"id\\""
status-permfail-regex = "rejected"
status-tempfail-regex = "retry"
generic-foreign-id-regex = "\\"id\\": \\"([^\\"]+)\\""
max-pending-submits = 500
instances = 1
reconnect-delay = 1
log-level = 2

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-interface = "127.0.0.1"
sendsms-port = {sendsms_port}
sendsms-chars = "0123456789 +-"
log-level = 2
http-timeout = 30

group = sendsms-user
username = {user}
password = {password}
user-allow-ip = "127.0.0.1"
default-sender = 12345
max-messages = 1
concatenation = false
"""


# Set by Ctrl-C or SIGTERM. The KeyboardInterrupt raised then can be swallowed (Python ignores
# exceptions raised in a weakref callback or __del__): waits and clients check this as well.
INTERRUPTED = threading.Event()


def _interrupt(signum, frame) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt


def pause(seconds: float) -> None:
    """time.sleep that raises KeyboardInterrupt once the benchmark was interrupted."""
    if INTERRUPTED.wait(seconds):
        raise KeyboardInterrupt


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """A process started here, in a session of its own (Ctrl-C reaches only the benchmark, which
    stops it in order), logging to a file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict | None = None) -> None:
        self.name, self.log = name, log
        with open(log, "w") as out:
            self.process = subprocess.Popen(  # noqa: S603 (our own commands)
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # started before any client thread runs
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} died ({self.process.returncode}):\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 40) -> None:
        """SIGTERM, then SIGKILL to what is left of its session."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only its children


def wait_for(what: str, ready: Callable[[], bool], services: list, timeout: float = 120) -> None:
    """Until `ready()` is true; any exception it raises counts as not yet (a first answer may be
    slow, refused or odd while a server starts), a service that died fails at once."""
    deadline, last_error = time.monotonic() + timeout, None
    while True:
        for service in services:
            service.check()
        try:
            if ready():
                return
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s (last error: {last_error})")
        pause(0.2)


def fetch(
    conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None
) -> tuple[int, bytes]:
    """One request on a keep-alive connection (reopened by http.client when the server closed
    it, as a server without keep-alive does after each answer)."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return fetch(conn, "GET", path)
    finally:
        conn.close()


def cpu_seconds(roots: list[int]) -> float:
    """CPU time (user + system) of these processes and all their descendants, counting the
    descendants that exited and were reaped (granian replaces a worker past `WEB_MAX_RSS` MiB of
    memory, which the bench does not reach with the default of 1024)."""
    return tree_cpu(roots)


def run_clients(count: int, work: Callable[[int], list[float]]) -> tuple[float, list[float]]:
    """`count` threads running `work(index)` from the same instant; (the instant, every answer
    time they return in seconds)."""
    go, errors, durations = threading.Event(), [], []

    def run(index: int) -> None:
        go.wait()
        try:
            durations.extend(work(index))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    go.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return started, durations


def send_singles(
    port: int,
    numbers: list[str],
    threads: int,
    send: Callable[[http.client.HTTPConnection, str], None],
) -> tuple[float, list[float]]:
    """One request per number from `threads` clients, each on its own keep-alive connection;
    returns when they started and how long each request took (`send` raises on a refusal)."""

    def work(index: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        durations = []
        for number in numbers[index::threads]:
            if INTERRUPTED.is_set():
                break
            began = time.monotonic()
            send(conn, number)
            durations.append(time.monotonic() - began)
        conn.close()
        return durations

    return run_clients(threads, work)


def client_ceiling(port: int, threads: int, requests: int = 4000) -> float:
    """Requests/s the singles client (`threads` threads of http.client, as for both systems)
    gets from the fake at 0 ms: the most it could submit to any system."""
    path = f"/send?to=%2B33612345678&text={quote(TEXT, safe='')}&from=ceiling"

    def work(index: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(requests // threads):
            fetch(conn, "GET", path)
        conn.close()
        return []

    started, _ = run_clients(threads, work)
    return requests // threads * threads / (time.monotonic() - started)


class Kannel:
    """Debian's Kannel (bearerbox, then smsbox) on `KANNEL_CONF`, written to `folder`."""

    def __init__(self, folder: Path, fake_url: str, console_level: int = 2) -> None:
        if not (BEARERBOX.exists() and SMSBOX.exists()):
            raise SystemExit(
                "Kannel is not installed: apt-get install -y kannel (Debian's package, 1.4.5), "
                "or leave it out with --systems hub."
            )
        self.admin_port, smsbox_port, self.port = free_port(), free_port(), free_port()
        config = folder / "kannel.conf"
        config.write_text(
            KANNEL_CONF.format(
                admin_port=self.admin_port,
                smsbox_port=smsbox_port,
                sendsms_port=self.port,
                fake_url=fake_url,
                user=KANNEL_USER,
                password=KANNEL_PASSWORD,
            )
        )
        self.services: list[Service] = []
        try:
            # The console is its only log here: at warning level (2) by default, as `log-level`
            # sets the log file's; Kannel's own default (0) writes debug lines for every message.
            verbosity = ["-v", str(console_level)]
            command = [str(BEARERBOX), *verbosity, str(config)]
            self.services.append(Service("bearerbox", command, folder / "bearerbox.log"))
            wait_for("Kannel's SMSC", lambda: "(online" in self.status(), self.services, 30)
            command = [str(SMSBOX), *verbosity, str(config)]
            self.services.append(Service("smsbox", command, folder / "smsbox.log"))
            wait_for("Kannel's smsbox", self._smsbox_ready, self.services, 30)
        except BaseException:
            self.stop()
            raise

    def status(self) -> str:
        status, body = get(self.admin_port, f"/status.txt?password={KANNEL_PASSWORD}")
        return body.decode(errors="replace") if status == 200 else ""

    def _smsbox_ready(self) -> bool:
        connected = "smsbox:" in self.status().split("Box connections:")[-1]
        return connected and get(self.port, "/cgi-bin/sendsms")[0] in (400, 403)

    def version(self) -> str:
        status = self.status()
        return status.split("version `", 1)[1].split("'", 1)[0] if "version `" in status else "?"

    def pids(self) -> list[int]:
        return [service.pid for service in self.services]

    def _path(self, numbers: list[str]) -> str:
        return (
            f"/cgi-bin/sendsms?username={KANNEL_USER}&password={KANNEL_PASSWORD}"
            f"&to={quote(' '.join(numbers), safe='')}&text={quote(TEXT, safe='')}"
        )

    def bulk(self, numbers: list[str], per_request: int) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        started = time.monotonic()
        for at in range(0, len(numbers), per_request):
            status, body = fetch(conn, "GET", self._path(numbers[at : at + per_request]))
            if status not in (200, 202):
                raise RuntimeError(f"Kannel refused a bulk send: {status} {body[:200]!r}")
        conn.close()
        return started

    def singles(self, numbers: list[str], threads: int) -> tuple[float, list[float]]:
        def send(conn: http.client.HTTPConnection, number: str) -> None:
            status, body = fetch(conn, "GET", self._path([number]))
            if status not in (200, 202):
                raise RuntimeError(f"Kannel refused a send: {status} {body[:200]!r}")

        return send_singles(self.port, numbers, threads, send)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop(timeout=15)


class HubWorker(Worker):
    """bench/dispatch.py's Worker (`celery -A bench.worker worker`, counting SQL queries), killed
    again when it does not start."""

    def __init__(self, processes: int, concurrency: int, database_url: str) -> None:
        try:
            super().__init__(processes, concurrency, database_url)
        except BaseException:
            if hasattr(self, "process"):
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.query_dir, ignore_errors=True)
            raise


def postgres_cpu(table: dict[int, tuple[int, str, float]]) -> float:
    """CPU seconds of PostgreSQL on this machine: each server's postmaster and its backends,
    the exited ones' included (the hub's only while a case runs: a database of its own, the
    machine otherwise quiet)."""
    servers = [
        pid
        for pid, (parent, name, _) in table.items()
        if name in ("postgres", "postmaster") and table.get(parent, (0, ""))[1] != name
    ]
    return tree_cpu(servers, table)


def web_command() -> list[str]:
    """The hub's web processes as in production: granian started by smshub/web.py, its address
    and workers from the environment (`WEB_BIND`, `WEB_CONCURRENCY`, `WEB_THREADS`, ...). Its
    main process, this command's, is the parent of the workers."""
    return [sys.executable, "-m", "smshub.web"]


class Hub:
    """The hub's web, worker and beat processes on the benchmark's database."""

    def __init__(self, folder: Path, web_workers: int, secret: str) -> None:
        self.port = free_port()
        self.headers = {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",  # as the TLS-terminating proxy of production says
        }
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "WEB_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(web_workers),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(folder / "celerybeat-schedule"),
        }
        self.web = self.beat = self.worker = None
        try:
            self.web = Service("web", web_command(), folder / "web.log", env)
            beat = [sys.executable, "-m", "celery", "-A", "bench.worker", "beat"]
            self.beat = Service("beat", [*beat, "--loglevel", "WARNING"], folder / "beat.log", env)
            self.worker = HubWorker(2, settings.SMSHUB_SEND_CONCURRENCY, env["DATABASE_URL"])
            wait_for("web", lambda: get(self.port, "/healthz")[0] == 200, self.services())
        except BaseException:
            self.stop()
            raise

    def services(self) -> list[Service]:
        return [s for s in (self.web, self.beat) if s is not None]

    def check(self) -> None:
        for service in self.services():
            service.check()
        if self.worker is not None and self.worker.process.poll() is not None:
            raise RuntimeError(f"the worker died:\n{self.worker.log.read_text()[-3000:]}")

    def cpu(self) -> dict[str, float]:
        table = processes()
        return {
            "web": tree_cpu([self.web.pid], table),
            "worker": tree_cpu([self.worker.process.pid], table),
            "beat": tree_cpu([self.beat.pid], table),
            "postgres": postgres_cpu(table),
        }

    def queries(self) -> int:
        """SQL queries the worker's processes ran so far (bench.worker counts them)."""
        folder = Path(self.worker.query_dir)
        return sum(int(p.read_text() or 0) for p in folder.iterdir() if p.name.isdigit())

    def bulk(self, numbers: list[str], name: str) -> float:
        body = json.dumps({"to": numbers, "text": TEXT, "campaign": name})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        started = time.monotonic()
        status, answer = fetch(conn, "POST", "/api/v1/messages", body, self.headers)
        conn.close()
        if status != 201 or json.loads(answer)["queued"] != len(numbers):
            raise RuntimeError(f"the hub refused the campaign: {status} {answer[:300]!r}")
        return started

    def singles(self, numbers: list[str], threads: int) -> tuple[float, list[float]]:
        def send(conn: http.client.HTTPConnection, number: str) -> None:
            body = json.dumps({"to": number, "text": TEXT})
            status, answer = fetch(conn, "POST", "/api/v1/messages", body, self.headers)
            if status != 201:
                raise RuntimeError(f"the hub refused a send: {status} {answer[:300]!r}")

        return send_singles(self.port, numbers, threads, send)

    def wait_idle(self, timeout: float = 120) -> None:
        """Until no message is on its way; then every message must be sent."""
        from campaigns.models import Message
        from campaigns.statuses import ON_ITS_WAY

        deadline = time.monotonic() + timeout
        while Message.objects.filter(status__in=ON_ITS_WAY).exists():
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError("hub messages still on their way after the fake got them all")
            pause(0.1)
        other = Message.objects.exclude(status=Message.Status.SENT).values_list("status", flat=True)
        if other.exists():
            raise RuntimeError(f"hub messages not sent: {sorted(set(other))}")

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        if self.worker is not None:
            try:
                self.worker.stop()
            except Exception:
                self.worker.process.kill()
                self.worker.process.wait()
            shutil.rmtree(self.worker.query_dir, ignore_errors=True)
        if self.beat is not None:
            self.beat.stop()


def create_hub_data(fake_url: str) -> str:
    """The account, its route (one `simulator` provider account at the fake, no limits) and an
    API key; returns the key's secret."""
    from campaigns.api.keys import issue
    from campaigns.models import Account, RouteEntry
    from providers.models import ProviderAccount

    provider = ProviderAccount.objects.create(
        name="Fake provider",
        slug="simulator",
        base_url=fake_url,
        credentials={"api_key": API_KEY},
        max_per_second=None,
    )
    account = Account.objects.create(name="Peer bench")  # flood limits empty: none
    RouteEntry.objects.create(account=account, provider_account=provider, position=0)
    return issue(account, name="bench/peer.py")[1]


class Bench:
    """Runs the cases against the systems started, each timed from its first submission to the
    last arrival logged by the fake."""

    def __init__(self, args, fake: FakeProvider, kannel: Kannel | None, hub: Hub | None) -> None:
        self.args, self.fake, self.kannel, self.hub = args, fake, kannel, hub
        self.offset = 0

    def numbers(self, n: int) -> list[str]:
        self.offset += n
        return [recipient(self.offset - n + i) for i in range(n)]

    def wait_arrivals(self, expected: int, kind: int, check: Callable[[], None]) -> None:
        log, seen, since = self.fake.log, -1, time.monotonic()
        while (count := log.total(kind)) < expected:
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                raise RuntimeError(f"only {count} of {expected} sends reached the fake")
            check()
            pause(0.02)
        if log.total() != expected:
            raise RuntimeError(f"the fake got {log.total()} sends, {expected} expected")

    def warm_up(self) -> None:
        """A few singles through each system: first requests import and connect."""
        self.fake.set_latency(0)
        if self.kannel is not None:
            self.fake.log.reset()
            self.kannel.singles(self.numbers(WARMUP), 4)
            self.wait_arrivals(WARMUP, KANNEL, self._check_kannel)
        if self.hub is not None:
            self.fake.log.reset()
            self.hub.singles(self.numbers(WARMUP), 4)
            self.wait_arrivals(WARMUP, HUB, self.hub.check)
            self.hub.wait_idle()
        self.fake.log.reset()

    def _check_kannel(self) -> None:
        for service in self.kannel.services:
            service.check()

    def kannel_case(self, mode: str, latency: int) -> dict:
        n, kannel = self.args.n, self.kannel
        numbers = self.numbers(n)
        self.fake.log.reset()
        before = cpu_seconds(kannel.pids())
        durations = []
        if mode == "bulk":
            started = kannel.bulk(numbers, self.args.per_request)
        else:
            started, durations = kannel.singles(numbers, self.args.threads)
        submitted = time.monotonic() - started
        self.wait_arrivals(n, KANNEL, self._check_kannel)
        _, last = self.fake.log.span()
        pause(latency / 1000 + 0.2)  # its last answers come back
        return {
            "per_s": n / (last - started),
            "seconds": last - started,
            "submitted_s": submitted,
            "cpu_ms": (cpu_seconds(kannel.pids()) - before) * 1000 / n,
            "answer_ms": statistics.median(durations) * 1000 if durations else None,
        }

    def hub_case(self, mode: str, latency: int) -> dict:
        n, hub = self.args.n, self.hub
        numbers = self.numbers(n)
        self.fake.log.reset()
        before, queries = hub.cpu(), hub.queries()
        durations = []
        if mode == "bulk":
            started = hub.bulk(numbers, f"peer bench {mode} {latency} ms {self.offset}")
        else:
            started, durations = hub.singles(numbers, self.args.threads)
        submitted = time.monotonic() - started
        self.wait_arrivals(n, HUB, hub.check)
        _, last = self.fake.log.span()
        hub.wait_idle()
        after = hub.cpu()
        pause(0.3)  # the worker's processes write their count of queries every 0.1 s
        return {
            "per_s": n / (last - started),
            "seconds": last - started,
            "submitted_s": submitted,
            "web_cpu_ms": (after["web"] - before["web"]) * 1000 / n,
            "worker_cpu_ms": (after["worker"] - before["worker"]) * 1000 / n,
            "beat_cpu_ms": (after["beat"] - before["beat"]) * 1000 / n,
            "postgres_cpu_ms": (after["postgres"] - before["postgres"]) * 1000 / n,
            "queries": (hub.queries() - queries) / n,
            "answer_ms": statistics.median(durations) * 1000 if durations else None,
        }

    def run(self) -> dict[tuple[int, str], dict[str, list[dict]]]:
        results: dict[tuple[int, str], dict[str, list[dict]]] = {}
        for run in range(self.args.runs):
            for latency in self.args.latencies:
                self.fake.set_latency(latency)
                for mode in self.args.modes:
                    case = results.setdefault((latency, mode), {"kannel": [], "hub": []})
                    line = f"run {run + 1}, {latency} ms, {mode}:"
                    for name, system, measure in (
                        ("Kannel", self.kannel, self.kannel_case),
                        ("hub", self.hub, self.hub_case),
                    ):
                        if system is not None:
                            result = measure(mode, latency)
                            case[name.lower()].append(result)
                            line += (
                                f" {name} {result['per_s']:,.0f}/s ({result['seconds']:.2f} s, "
                                f"submitted in {result['submitted_s']:.2f} s);"
                            )
                    print(line.rstrip(";"), flush=True)
        return results


def median(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def report(args, results, capacity: dict[int | str, float], kannel_version: str) -> dict:
    """Print the table; returns the figures for the JSON line."""
    figures: dict = {"bench": "peer", "messages": args.n, "runs": args.runs}
    figures["database"] = connection.vendor
    figures["broker"] = settings.CELERY_BROKER_URL.split("://")[0]
    figures["kannel_version"] = kannel_version
    for latency, rate in capacity.items():
        if latency == "client":
            figures["client_ceiling_per_s"] = round(rate)
        else:
            figures[f"fake_capacity_{latency}ms_per_s"] = round(rate)
    header = (
        f"{'latency':>7}  {'mode':<8}{'Kannel/s':>9}{'hub/s':>8}{'hub÷K':>7}"
        f"{'web ms':>8}{'worker ms':>10}{'beat ms':>8}{'PG ms':>7}{'SQL':>6}{'Kannel ms':>10}"
        f"{'answer ms K/hub':>16}"
    )
    print()
    print(header)

    def show(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for (latency, mode), case in results.items():
        kannel = median(case["kannel"], "per_s")
        hub = median(case["hub"], "per_s")
        ratios = [
            h["per_s"] / k["per_s"] for k, h in zip(case["kannel"], case["hub"], strict=False)
        ]
        ratio = statistics.median(ratios) if ratios else None
        web, worker = median(case["hub"], "web_cpu_ms"), median(case["hub"], "worker_cpu_ms")
        beat, queries = median(case["hub"], "beat_cpu_ms"), median(case["hub"], "queries")
        postgres = median(case["hub"], "postgres_cpu_ms")
        kannel_cpu = median(case["kannel"], "cpu_ms")
        answers = f"{show(median(case['kannel'], 'answer_ms'), '.1f')}/" + show(
            median(case["hub"], "answer_ms"), ".0f"
        )
        print(
            f"{latency:>5} ms  {mode:<8}{show(kannel, ',.0f'):>9}{show(hub, ',.0f'):>8}"
            f"{show(ratio, '.3f'):>7}{show(web, '.2f'):>8}{show(worker, '.2f'):>10}"
            f"{show(beat, '.2f'):>8}{show(postgres, '.2f'):>7}{show(queries, '.1f'):>6}"
            f"{show(kannel_cpu, '.2f'):>10}"
            f"{answers if mode == 'singles' else '-':>16}"
        )
        key = f"{mode}_{latency}ms"
        for name, value, digits in (
            ("kannel_per_s", kannel, 0),
            ("hub_per_s", hub, 0),
            ("ratio", ratio, 3),
            ("web_cpu_ms_per_message", web, 2),
            ("worker_cpu_ms_per_message", worker, 2),
            ("beat_cpu_ms_per_message", beat, 2),
            ("postgres_cpu_ms_per_message", postgres, 2),
            ("worker_queries_per_message", queries, 2),
            ("kannel_cpu_ms_per_message", kannel_cpu, 2),
        ):
            if value is not None:
                figures[f"{key}_{name}"] = round(value, digits) if digits else round(value)
    print(
        "msgs/s from first submission to last arrival at the fake; hub÷K: hub / Kannel "
        "(median of the runs' ratios);\nCPU ms per message: hub web (granian main + workers), "
        "worker (Celery + pool), beat,\nPG: PostgreSQL (all its processes); Kannel (bearerbox + "
        "smsbox); SQL: the worker's queries "
        "per message; answer ms: median time to answer one single send (Kannel / hub)."
    )
    return figures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=3000, help="messages a case (3000)")
    parser.add_argument("--modes", default="bulk,singles", help="bulk,singles")
    parser.add_argument("--latencies", default="0,50", help="provider latencies in ms (0,50)")
    parser.add_argument("--systems", default="kannel,hub", help="kannel,hub")
    parser.add_argument("--runs", type=int, default=1, help="runs of every case (1)")
    parser.add_argument("--threads", type=int, default=16, help="clients for singles (16)")
    parser.add_argument("--per-request", type=int, default=100, help="numbers a Kannel GET")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=production_server()["workers"],
        help="web worker processes, WEB_CONCURRENCY (production's: one per CPU plus one)",
    )
    parser.add_argument("--fake-processes", type=int, default=2, help="fake processes (2)")
    parser.add_argument(
        "--kannel-console-level", type=int, default=2, help="Kannel's -v: 0 debug ... 4 panic (2)"
    )
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    args.latencies = [int(value) for value in args.latencies.split(",") if value]
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.modes) - {"bulk", "singles"} or set(args.systems) - {"kannel", "hub"}:
        parser.error("modes are bulk and singles; systems kannel and hub")
    return args


@contextlib.contextmanager
def throwaway_database():
    """A PostgreSQL database of the benchmark's own (Django's test-database machinery, under a
    name no other run uses), dropped at the end, even when interrupted while being created."""
    database = settings.DATABASES["default"]
    original = database["NAME"]
    name = database["TEST"]["NAME"] = f"test_bench_peer_{os.getpid()}"
    old = None
    try:
        old = setup_databases(verbosity=0, interactive=False, keepdb=False)
        pause(0)
        yield
    finally:
        connection.close()
        if old is not None:
            teardown_databases(old, verbosity=0)
        else:
            database["NAME"] = connection.settings_dict["NAME"] = original
            with contextlib.suppress(Exception):  # it may not exist yet
                connection.creation._destroy_test_db(name, verbosity=0)


def show_logs(folder: Path) -> Callable:
    """An exit callback printing the end of every log in `folder` when a run fails."""

    def show(kind, error, traceback) -> bool:
        if kind is not None and not issubclass(kind, KeyboardInterrupt):
            for log in sorted(folder.glob("*.log")):
                print(f"--- {log.name} (last lines)\n{log.read_text(errors='replace')[-2000:]}")
        return False

    return show


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    args = parse_args()
    if "hub" in args.systems and connection.vendor != "postgresql":
        raise SystemExit("The hub runs as in production: set DATABASE_URL to PostgreSQL.")
    # Ctrl-C and SIGTERM alike unwind through the clean-up below.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"load average before: {load_average()}")
    # Undone in reverse order: services, then the database, logs, folder, and the fake last.
    with contextlib.ExitStack() as stack:
        # Forked first, before any thread or database connection.
        fake = FakeProvider(args.fake_processes, capacity=args.n + 1000, api_key=API_KEY)
        stack.callback(fake.stop)
        folder = Path(tempfile.mkdtemp(prefix="bench-peer-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        stack.push(show_logs(folder))
        capacity: dict[int | str, float] = {}
        for latency, connections in ((0, 64), (50, 512)):
            fake.set_latency(latency)
            capacity[latency] = measure_capacity(fake.port, connections)
            print(
                f"fake provider's own capacity at {latency} ms: {capacity[latency]:,.0f} "
                f"requests/s ({connections} connections, {args.fake_processes} processes)",
                flush=True,
            )
        fake.set_latency(0)
        capacity["client"] = client_ceiling(fake.port, args.threads)
        print(
            f"singles client's own ceiling ({args.threads} threads, to the fake at 0 ms): "
            f"{capacity['client']:,.0f} requests/s",
            flush=True,
        )
        fake.log.reset()
        kannel = hub = None
        kannel_version = "-"
        if "kannel" in args.systems:
            kannel = Kannel(folder, fake.url, args.kannel_console_level)
            stack.callback(kannel.stop)
            kannel_version = kannel.version()
            print(f"Kannel {kannel_version} (bearerbox + smsbox) on :{kannel.port}", flush=True)
        if "hub" in args.systems:
            stack.enter_context(throwaway_database())
            purge_broker()
            stack.callback(purge_broker)
            secret = create_hub_data(fake.url)
            connection.close()
            hub = Hub(folder, args.web_workers, secret)
            stack.callback(hub.stop)
            print(
                f"hub: {connection.vendor}, broker {settings.CELERY_BROKER_URL.split('://')[0]}, "
                f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, DEBUG off, "
                f"granian (smshub/web.py) {args.web_workers} workers x "
                f"{os.environ.get('WEB_THREADS', 4)} threads, "
                f"1 Celery worker x 2 processes + beat "
                f"(sweep every {settings.SMSHUB_SWEEP_INTERVAL:g} s), API rate limit raised to "
                f"{API_RATE_LIMIT:,}/min for the bench, LOG_LEVEL={os.environ['LOG_LEVEL']}",
                flush=True,
            )
        bench = Bench(args, fake, kannel, hub)
        bench.warm_up()
        results = bench.run()
        figures = report(args, results, capacity, kannel_version)
        print(f"load average after: {load_average()}")
    print(json.dumps(figures))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: everything the benchmark started is stopped and removed")
