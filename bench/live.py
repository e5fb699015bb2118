"""Live status under load: 50 open pages polling a running campaign and the messages list, while
messages move, against the same pages re-rendered in full (the baseline), in the same run.

    .venv/bin/python bench/live.py [--pages 50] [--seconds 20] [--messages 2000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/live.py

It creates a throwaway database (Django's test-database machinery) with one account, one running
campaign of MESSAGES messages and a logged-in operator. Half the pages show the campaign, half
the messages list; each page polls on its own clock as its htmx attributes say (the URL and
interval of its last answer, kept while the answer is 204) through Django's test client, one
process answering them in turn, for SECONDS. Meanwhile, every half second, 20 messages move one
step along queued → sending → sent → delivered, as a dispatcher and delivery reports would.

The baseline: the same pages fetched in full (the page a browser would reload), for the same
time. Then, for half as long, the same polling pages while nothing moves ("idle poll": a campaign
held by its flood limit, a list of sent messages awaiting reports). Prints requests per
second, milliseconds and queries per request, the share answered 204, how busy the process was,
how late polls went out, the ratio poll / full render of the milliseconds per request, and, last,
one JSON object.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

HTMX = {"HX-Request": "true"}
STEPS = ["queued", "sending", "sent", "delivered"]
MOVE_EVERY, MOVED = 0.5, 20
# Where a page's next poll goes: the hx-get of its live part (campaign) or of its poller (list).
POLL_URL = re.compile(
    r'id="(?:campaign-monitor|message-poller)"[^>]*?hx-get="([^"]+)" hx-trigger="every (\d+)s"',
    re.S,
)


def setup(messages: int):
    """The account, its provider account, a running campaign and a logged-in client."""
    from django.contrib.auth import get_user_model

    from campaigns.models import Account, Campaign, Membership, Message, RouteEntry
    from providers.models import ProviderAccount

    account = Account.objects.create(name="Bench", timezone="Europe/Paris")
    provider = ProviderAccount.objects.create(
        name="Primary",
        slug="simulator",
        base_url="http://127.0.0.1:9",
        credentials={"api_key": "k"},
    )
    RouteEntry.objects.create(account=account, provider_account=provider, position=0)
    campaign = Campaign.objects.create(
        account=account, name="Flu jabs", text="Hi", status=Campaign.Status.RUNNING
    )
    Message.objects.bulk_create(
        (
            Message(
                account=account,
                campaign=campaign,
                recipient=f"+3361{i:07d}",
                text="Hi",
                status="queued",
            )
            for i in range(messages)
        ),
        batch_size=1000,
    )
    user = get_user_model().objects.create_user("bench", password="bench-password-123")  # noqa: S106
    Membership.objects.create(user=user, account=account, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    return client, campaign


class Mover:
    """Moves MOVED messages a step every MOVE_EVERY seconds (newest first: the list shows them)."""

    def __init__(self, campaign) -> None:
        from campaigns.models import Message

        self.messages = Message.objects.filter(campaign=campaign)
        self.due = time.monotonic()
        self.moves = 0

    def tick(self) -> None:
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + MOVE_EVERY  # no burst to catch up after a slow stretch
        now = timezone.now()
        for before, after in zip(STEPS[-2::-1], STEPS[:0:-1], strict=True):
            ids = list(
                self.messages.filter(status=before)
                .order_by("-id")
                .values_list("id", flat=True)[:MOVED]
            )
            if ids:
                self.messages.filter(pk__in=ids).update(status=after, updated_at=now)
                self.moves += len(ids)
                return


class Counter:
    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


def run(client, pages: list[str], seconds: float, mover: Mover | None, polling: bool) -> dict:
    """The pages for `seconds`, each on its own clock: a polling page asks its poll URL when its
    interval (its hx-trigger) is up; a baseline page reloads in full every second. One process
    answers them in turn; a page whose turn comes late waits (its lateness is reported)."""
    urls: list[str | None] = list(pages)
    every = [1.0] * len(pages)
    if polling:  # each page starts from what a browser loaded
        for i, url in enumerate(pages):
            urls[i], every[i] = _next(client.get(url).content.decode())
    start = time.monotonic()
    due = [start + i / len(pages) for i in range(len(pages))]  # spread over the first second
    times, queries, late, empty, counter = [], [], [], 0, Counter()
    deadline = start + seconds
    with connection.execute_wrapper(counter):
        while any(urls):
            i = min((k for k in range(len(urls)) if urls[k]), key=due.__getitem__)
            now = time.monotonic()
            if due[i] >= deadline:
                break
            if due[i] > now:
                time.sleep(due[i] - now)
            if mover is not None:
                mover.tick()
            late.append(max(time.monotonic() - due[i], 0))
            before = counter.queries
            started = time.perf_counter()
            response = client.get(urls[i], headers=HTMX) if polling else client.get(urls[i])
            times.append((time.perf_counter() - started) * 1000)
            queries.append(counter.queries - before)
            assert response.status_code in (200, 204), (urls[i], response.status_code)
            if response.status_code == 204:
                empty += 1
            elif polling:
                urls[i], every[i] = _next(response.content.decode())
            due[i] = time.monotonic() + every[i]
    wall = time.monotonic() - start
    return {
        "requests": len(times),
        "rps": len(times) / wall,
        "busy": sum(times) / 1000 / wall,
        "ms": statistics.mean(times),
        "p95_ms": statistics.quantiles(times, n=20)[-1],
        "queries": statistics.mean(queries),
        "empty_share": empty / len(times),
        "late_s": statistics.mean(late),
    }


def _next(body: str) -> tuple[str | None, float]:
    """The URL a page polls next and how often, from its latest answer; None once it stops."""
    match = POLL_URL.search(body)
    if not match:
        return None, 1.0
    return match.group(1).replace("&amp;", "&"), float(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50, help="open pages (half each kind)")
    parser.add_argument("--seconds", type=float, default=20, help="per run")
    parser.add_argument("--messages", type=int, default=2000, help="in the campaign")
    args = parser.parse_args()

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"bench_live_{os.getpid()}" if connection.vendor != "sqlite" else ""
    )
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        client, campaign = setup(args.messages)
        kinds = [f"/campaigns/{campaign.pk}/", "/messages/"]
        pages = [kinds[i % 2] for i in range(args.pages)]
        mover = Mover(campaign)
        mover.messages.filter(pk__in=list(mover.messages.values_list("pk", flat=True)[:5])).update(
            status="sending"
        )  # a campaign in flight: its pages poll every second from the start
        # Baseline and polling alternate in halves, so that a busy machine slows both alike.
        half = args.seconds / 2
        parts = {"baseline": [], "poll": []}
        for _ in range(2):
            parts["baseline"].append(run(client, pages, half, mover, polling=False))
            parts["poll"].append(run(client, pages, half, mover, polling=True))
        # Then nothing moves for a while (a campaign held by its flood limit, say).
        Message = mover.messages.model
        mover.messages.filter(status="sending").update(status="sent")
        Message.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
        idle = run(client, pages, half, None, polling=True)
    finally:
        teardown_databases(old, verbosity=0)

    def merge(runs: list[dict]) -> dict:
        total = sum(r["requests"] for r in runs)
        return {
            "requests": total,
            "rps": total / sum(r["requests"] / r["rps"] for r in runs),
            "busy": sum(r["busy"] for r in runs) / len(runs),
            "late_s": sum(r["late_s"] * r["requests"] for r in runs) / total,
            "ms": sum(r["ms"] * r["requests"] for r in runs) / total,
            "p95_ms": max(r["p95_ms"] for r in runs),
            "queries": sum(r["queries"] * r["requests"] for r in runs) / total,
            "empty_share": sum(r["empty_share"] * r["requests"] for r in runs) / total,
        }

    base, poll = merge(parts["baseline"]), merge(parts["poll"])
    ratio = poll["ms"] / base["ms"]
    print(f"database:  {connection.vendor}; {args.messages:,} messages in one running campaign")
    print(f"pages:     {args.pages} (half the campaign, half the messages list), {args.seconds} s")
    print(f"moved:     {mover.moves} message steps ({MOVED} every {MOVE_EVERY} s)")
    print("baseline: each page reloaded in full every second; poll: as its htmx attributes say")
    header = f"{'':<10}{'req/s':>8}{'ms/req':>9}{'p95 ms':>9}{'queries':>9}{'204s':>6}"
    print(header + f"{'busy':>7}{'late s':>8}")
    for name, f in (("baseline", base), ("poll", poll), ("idle poll", idle)):
        print(
            f"{name:<10}{f['rps']:>8.1f}{f['ms']:>9.2f}{f['p95_ms']:>9.2f}"
            f"{f['queries']:>9.2f}{f['empty_share']:>6.0%}{f['busy']:>7.0%}{f['late_s']:>8.2f}"
        )
    print(
        f"ratio poll/full render (ms per request): {ratio:.3f}; "
        f"server time per page per second: poll {poll['busy'] * 1000 / args.pages:.1f} ms, "
        f"baseline {base['busy'] * 1000 / args.pages:.1f} ms, idle poll "
        f"{idle['busy'] * 1000 / args.pages:.1f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "live",
                "database": connection.vendor,
                "pages": args.pages,
                "seconds": args.seconds,
                "messages": args.messages,
                "moves": mover.moves,
                "poll_rps": round(poll["rps"], 1),
                "poll_ms": round(poll["ms"], 2),
                "poll_p95_ms": round(poll["p95_ms"], 2),
                "poll_queries": round(poll["queries"], 2),
                "poll_204_share": round(poll["empty_share"], 3),
                "poll_busy": round(poll["busy"], 3),
                "poll_late_s": round(poll["late_s"], 3),
                "idle_poll_rps": round(idle["rps"], 1),
                "idle_poll_ms": round(idle["ms"], 2),
                "idle_poll_queries": round(idle["queries"], 2),
                "idle_poll_204_share": round(idle["empty_share"], 3),
                "idle_poll_busy": round(idle["busy"], 3),
                "baseline_rps": round(base["rps"], 1),
                "baseline_ms": round(base["ms"], 2),
                "baseline_queries": round(base["queries"], 2),
                "baseline_busy": round(base["busy"], 3),
                "baseline_late_s": round(base["late_s"], 3),
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
