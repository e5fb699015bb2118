"""Instructions per request and per message, counted by valgrind: figures that do not move with
the machine's load, unlike its seconds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CACHE_URL=redis://127.0.0.1:6379/11 \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/instructions.py [N] \
        [--messages M]

Each case runs in a Python process of its own under `valgrind --tool=callgrind`, with counting
switched off while it starts and warms up (`--instr-atstart=no`) and switched on
(`callgrind_control -i on`) for what is counted; everything runs in-process, without a server:

- `minimal`: N requests to `bench/minimal.py`, Django with nothing else (the requests' floor);
- `bare`: N requests to the same bare view in the hub's application, under `/hooks/`, through
  the middleware machine paths get (what any webhook or API call costs before its own work);
- `call`: M calls of the `simulator` adapter through the worker's transport (`providers.
  transport`, 100 at once) to `bench/fake_provider.py` (the messages' floor);
- `dispatch`: a campaign of M numbers claimed, sent to the fake and recorded by `dispatch_for`,
  as a worker's process does (its start-up objects frozen, as `smshub.celery` does);
- `send`: N single-number `POST /api/v1/messages` with an API key;
- `webhook`: N delivery reports posted to the provider account's webhook, each stored (what the
  web process does of a report; a worker applies it);
- `apply`: M stored delivery reports applied by `webhook_log.apply_received` (what a worker does
  of a report: batches of 500, each report's message delivered);

on a throwaway PostgreSQL database of its own, with the cache and broker of the environment
(Redis in production). Prints instructions per request, call or message and each case's ratio
to its floor; the last line is one JSON object. Waiting on PostgreSQL, Redis or the fake costs
no instructions: these are each process's own work. Runs of the same code count the same to
within about 1 %, however busy the machine: the workers' wake-ups, which a web process
publishes by the clock rather than per request, are left out of `send` and `webhook` (see
`hold_wake_ups`). Takes about 4 minutes;
`--cases dispatch send` counts only those (and their floors).
"""

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LOG_LEVEL", "WARNING")
TEXT = "Your appointment is tomorrow at 10:00"
WARMUP = 100
WORKER_CASES = ("call", "dispatch", "apply")
# In the order counted: `send` last, its single sends stay queued (no worker runs).
CASES = ("minimal", "bare", "call", "dispatch", "apply", "webhook", "send")

UNIT = {"minimal": "request", "bare": "request", "send": "request", "call": "call"}
UNIT["webhook"], UNIT["apply"] = "request", "report"
UNIT["dispatch"] = "message"
VALGRIND = shutil.which("valgrind")


def floor(case: str) -> str:
    """What `case` is compared with: the bare call for a dispatched message or an applied
    report, a bare Django view for the others."""
    return "call" if case in ("dispatch", "apply") else "minimal"


def environ(method: str, path: str, body: bytes = b"", **headers: str) -> dict:
    wsgi = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    wsgi.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return wsgi


def child(case: str, n: int, secret: str) -> None:
    """Runs under valgrind: warm up, then count `n` requests (or messages) of `case`."""
    if case in WORKER_CASES:
        return worker_child(case, n)
    if case == "minimal":
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.minimal"
        from django.core.wsgi import get_wsgi_application

        application, path = get_wsgi_application(), "/bare/"
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        os.environ["SMSHUB_API_RATE_LIMIT"] = "1000000000"
        from smshub.wsgi import application

        path = "/hooks/bare/"
        if case == "webhook":
            from django.conf import settings

            from providers.models import ProviderAccount

            url = ProviderAccount.objects.get().webhook_url("dlr")
            path = url.removeprefix(settings.PUBLIC_BASE_URL)
    first = int(time.time() * 1000) % 10_000_000  # numbers no earlier run used

    def request(i: int) -> None:
        if case == "send":
            number = f"+336{(first + i) % 100_000_000:08d}"
            body = json.dumps({"to": number, "text": TEXT}).encode()
            wsgi = environ("POST", "/api/v1/messages", body, authorization=f"Bearer {secret}")
            expected = "201"
        elif case == "webhook":
            body = json.dumps({"id": f"w{first + i}", "status": "delivered"}).encode()
            wsgi, expected = environ("POST", path, body), "200"
        else:
            wsgi, expected = environ("GET", path), "200"
        status = []
        b"".join(application(wsgi, lambda line, headers: status.append(line)))
        if not status[0].startswith(expected):
            raise SystemExit(f"{case}: answered {status[0]}, not {expected}")

    for i in range(WARMUP):
        request(i)
    if case in ("send", "webhook"):
        hold_wake_ups()
    switch(True)
    for i in range(WARMUP, WARMUP + n):
        request(i)
    switch(False)


def hold_wake_ups() -> None:
    """No worker woken while counting. A web process publishes a wake-up at most every
    `NUDGE_INTERVAL` (stored webhooks) and looks for a dispatcher at most every `RECHECK`
    seconds (sends): once in hundreds of requests at full speed, but once in a few under
    valgrind, which runs fifty times slower. Counted, they made the figures move with how busy
    the machine was: a stored webhook request from 1.5 to 2.0 million instructions."""
    from campaigns.services import wake, webhook_log

    webhook_log._last_nudge = math.inf  # a nudge only after NUDGE_INTERVAL since the last
    wake._checked_until = math.inf  # no new look before this time


def worker_child(case: str, n: int) -> None:
    """`call`: n calls of the simulator adapter through the worker's transport, 100 at once;
    `dispatch`: a campaign of n numbers claimed, sent and recorded by `dispatch_for`."""
    import asyncio

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings

    from campaigns.models import Account, Message
    from campaigns.services import bulk
    from campaigns.services.dispatch import dispatch_for
    from providers.events import OutboundSMS
    from providers.models import ProviderAccount
    from providers.transport import transport
    from smshub.celery import freeze_start_up_objects

    freeze_start_up_objects()  # as a worker process does when it starts
    if case == "apply":
        return apply_child(n)
    if case == "call":
        provider = ProviderAccount.objects.get()
        adapter, wire = provider.adapter(), transport()
        sms = OutboundSMS(to="+33612345678", text=TEXT, reference="1")

        async def calls(count: int) -> None:
            answers = await asyncio.gather(
                *(wire.fetch(adapter.prepare(sms)) for _ in range(count))
            )
            assert all(answer.status_code == 201 for answer in answers)

        wire.submit(calls(WARMUP)).result()
        switch(True)
        for _ in range(n // 100):
            wire.submit(calls(100)).result()
        switch(False)
        return
    account, first = Account.objects.get(), int(time.time()) % 1_000_000

    def campaign(count: int, name: str) -> None:
        numbers = [f"+336{(first * 1000 + i) % 100_000_000:08d}" for i in range(count)]
        recipients = list(enumerate(numbers, 1))
        bulk.create_campaign(account, name=f"{name} {first}", text=TEXT, recipients=recipients)

    # As many as a worker process keeps in flight: the counted messages find the transport's
    # connections open, as in a worker that has been sending for a while.
    warm_up = max(WARMUP, settings.SMSHUB_SEND_CONCURRENCY)
    campaign(warm_up, "warm-up")
    dispatch_for(60)
    campaign(n, "counted")
    switch(True)
    sent = dispatch_for(120)
    switch(False)
    if sent != n or Message.objects.filter(status=Message.Status.SENT).count() != n + warm_up:
        raise SystemExit(f"dispatch: {sent} of {n} messages sent")


def apply_child(n: int) -> None:
    """`apply`: n + WARMUP sent messages and a delivery report stored for each (not counted),
    then the reports applied as a worker applies them, the first WARMUP not counted."""
    from django.test import RequestFactory

    from campaigns.models import Account, Message
    from campaigns.services import webhook_log
    from providers.models import ProviderAccount

    provider, account = ProviderAccount.objects.get(), Account.objects.get()
    first = int(time.time() * 1000) % 10_000_000  # provider ids no earlier run used
    ids = [f"a{first}-{i}" for i in range(WARMUP + n)]
    Message.objects.bulk_create(
        Message(
            account=account,
            recipient="+33612345678",
            text=TEXT,
            status=Message.Status.SENT,
            provider_account=provider,
            provider_message_id=provider_id,
        )
        for provider_id in ids
    )
    factory = RequestFactory()
    for provider_id in ids:
        body = json.dumps({"id": provider_id, "status": "delivered"})
        request = factory.post("/", data=body, content_type="application/json")
        webhook_log.store(provider, "dlr", request, events=1)
    webhook_log.apply_received(WARMUP)
    switch(True)
    while webhook_log.apply_received():
        pass
    switch(False)
    delivered = Message.objects.filter(provider_message_id__in=ids, status="delivered").count()
    if delivered != len(ids):
        raise SystemExit(f"apply: {delivered} of {len(ids)} messages delivered")


def switch(on: bool) -> None:
    """Counting on or off in this process (which runs under callgrind)."""
    command = [
        shutil.which("callgrind_control") or "callgrind_control",
        "-i",
        "on" if on else "off",
    ]
    subprocess.run([*command, str(os.getpid())], check=True, capture_output=True)  # noqa: S603


def count(case: str, n: int, secret: str, env: dict) -> int:
    """Instructions per request of `case`, counted in a process of its own under valgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            VALGRIND,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            case,
            str(n),
        ]
        run = subprocess.run(  # noqa: S603 (valgrind on our own interpreter and script)
            command, env={**env, "BENCH_SECRET": secret}, capture_output=True, text=True
        )
        if run.returncode != 0:
            raise SystemExit(f"{case} failed under valgrind:\n{run.stderr[-3000:]}")
        totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
        return int(totals[0].split()[1]) // n


def database_env(name: str) -> dict:
    """The environment with DATABASE_URL naming the throwaway database `name`."""
    url = urlsplit(os.environ["DATABASE_URL"])
    return {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path=f"/{name}"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=200, help="requests counted (200)")
    parser.add_argument(
        "--messages", type=int, default=1000, help="calls and messages counted (1000)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=CASES,
        help="the cases counted (all of them); a case's floor is counted with it",
    )
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), os.environ.get("BENCH_SECRET", ""))
        return
    if VALGRIND is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    from bench.dispatch import QUEUE, purge_broker
    from bench.fake_provider import FakeProvider
    from bench.peer import API_KEY, create_hub_data, throwaway_database

    if connection.vendor != "postgresql":
        raise SystemExit("The hub runs as in production: set DATABASE_URL to PostgreSQL.")
    # The sends wake dispatchers: their tasks go to the benchmarks' queue, emptied at the end.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    figures: dict[str, int] = {}
    fake = FakeProvider(1, capacity=args.messages * 2 + 1000, api_key=API_KEY)  # forked first
    try:
        with throwaway_database():
            secret = create_hub_data(fake.url)
            env = database_env(connection.settings_dict["NAME"])
            connection.close()
            wanted = set(args.cases)
            while not {floor(case) for case in wanted} <= wanted:  # the floors' floors too
                wanted |= {floor(case) for case in wanted}
            for case in (case for case in CASES if case in wanted):
                n = args.messages if case in WORKER_CASES else args.n
                figures[case] = count(case, n, secret, env)
                below = floor(case)
                ratio = figures[case] / figures[below]
                print(f"{case:8} {figures[case]:>12,} a {UNIT[case]:7}  {ratio:6.2f} x {below}")
    finally:
        fake.stop()
        purge_broker()
    print(
        json.dumps(
            {"bench": "instructions", "requests": args.n, "messages": args.messages, **figures}
        )
    )


if __name__ == "__main__":
    main()
