"""Soak check of `make run`'s stack: it stays up, loses nothing, under steady use for minutes.

The real default stack, started as `make run` starts it (migrate, cache table, demo, then
`python -m smshub.devstack Procfile.dev`: runserver, worker, beat, simulator), on free ports with
a fresh SQLite database and broker folder of its own. For `SMSHUB_SOAK_SECONDS` (600) it sends
through the JSON API a single message every second and a campaign of 300 numbers every minute,
some numbers ending in 0000 (reported undelivered) and 9999 (they reply). Then it waits (at most
5 minutes) for every message to be final and checks: every accepted send has its messages, each
final as its number says (delivered, or undelivered for 0000), every 9999 number replied, no
process ever died or was restarted, nothing set aside by the broker. It prints its figures.

Not in `make test`: `SMSHUB_SOAK_SECONDS=600 .venv/bin/python -m pytest -m slow -s
tests/e2e/test_soak.py`. The stack's output goes to test-output/soak.log.
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from ..production.test_serving import free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent.parent
OUTPUT = ROOT / "test-output"
SECONDS = float(os.environ.get("SMSHUB_SOAK_SECONDS", "600"))
SINGLE_EVERY, CAMPAIGN_EVERY, CAMPAIGN_SIZE = 1.0, 60.0, 300
PROCESSES = ("web", "worker", "beat", "simulator")
ON_THE_WAY = ("scheduled", "queued", "sending", "retrying", "sent", "unknown")


def number(block: int, index: int) -> str:
    """A French mobile number (06 0…, 06 1…, …; 063 and 069 are not in use); one in ten ends
    in 0000 (undelivered), one in ten in 9999 (replies)."""
    ending = {0: "0000", 1: "9999"}.get(index % 10, f"{(index * 7919 + block) % 9000 + 1000}")
    return f"+336{'01245678'[block % 8]}{index % 1000:03d}{ending}"


class Stack:
    """`make run`'s stack in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.port, simulator_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker = folder / "broker"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_TEST_")},
            "DJANGO_SETTINGS_MODULE": "smshub.settings",
            "DEBUG": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DATABASE_URL": f"sqlite:///{folder / 'soak.sqlite3'}",
            "CELERY_FILESYSTEM_DIR": str(self.broker),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(folder / "celerybeat-schedule"),
            "SMSHUB_UPLOAD_DIR": str(folder / "uploads"),
            "SMSHUB_PORT": str(self.port),
            "SIMULATOR_PORT": str(simulator_port),
            "PUBLIC_BASE_URL": self.url,
            "SIMULATOR_URL": f"http://127.0.0.1:{simulator_port}",
            # Sending and checking through the API is the point: its per-key limit is not.
            "SMSHUB_API_RATE_LIMIT": "1000000",
        }
        for name in ("CELERY_BROKER_URL", "CACHE_URL"):  # the defaults, as `make run` has them
            self.env.pop(name, None)
        self.log = OUTPUT / "soak.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self) -> None:
        OUTPUT.mkdir(exist_ok=True)
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smshub.devstack", "Procfile.dev"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name, pid in re.findall(r"\| (\w+) started \(pid (\d+)", self.output):
            found.setdefault(name, []).append(int(pid))
        return found


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path)
    stack.manage("migrate", "--noinput")
    stack.manage("createcachetable")
    stack.manage("seed_demo")
    stack.start()
    try:
        deadline = time.monotonic() + 120
        while True:  # ready: database, broker, cache, and beat's heartbeat through the worker
            assert stack.process.poll() is None, stack.output[-4000:]
            try:
                if requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the stack did not get ready:\n{stack.output[-4000:]}")
            time.sleep(0.5)
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                stack.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.process.pid, signal.SIGKILL)
                stack.process.wait()


def api_key(stack: Stack) -> str:
    out = stack.manage(
        "shell",
        "-c",
        "from campaigns.models import Account; from campaigns.api.keys import issue; "
        "print(issue(Account.objects.get(name='Demo'), name='Soak check')[1])",
    )
    return out.strip().splitlines()[-1]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def test_the_default_stack_stays_up_and_loses_nothing(stack):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key(stack)}"
    api = f"{stack.url}/api/v1"
    started_pids = stack.pids()
    singles: dict[int, str] = {}  # message id -> number
    campaigns: dict[int, list[str]] = {}  # campaign id -> numbers
    refused: list[str] = []
    retried: list[str] = []
    latencies: list[float] = []

    def send(payload: dict) -> dict | None:
        """POST as a careful client does: with an Idempotency-Key, retried when the answer
        is lost (runserver restarts itself when a source file changes)."""
        key = str(uuid.uuid4())
        for attempt in range(5):
            began = time.monotonic()
            try:
                response = session.post(
                    f"{api}/messages", json=payload, headers={"Idempotency-Key": key}, timeout=60
                )
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 201:
                    latencies.append(time.monotonic() - began)
                    return response.json()
                problem = f"{response.status_code}: {response.text[:300]}"
                if response.status_code < 500:
                    break
            retried.append(problem)
            time.sleep(1 + attempt)
        refused.append(problem)
        return None

    def get(path: str, **params) -> dict:
        for attempt in range(5):
            try:
                response = session.get(f"{api}{path}", params=params, timeout=60)
            except requests.RequestException:
                time.sleep(1 + attempt)
                continue
            assert response.status_code == 200, response.text
            return response.json()
        pytest.fail(f"GET {path} failed 5 times")

    began = time.monotonic()
    next_single, next_campaign, sent_singles = began, began, 0
    while (now := time.monotonic()) < began + SECONDS:
        if now >= next_campaign:
            numbers = [number(len(campaigns), i) for i in range(CAMPAIGN_SIZE)]
            body = send(
                {"to": numbers, "text": "Soak: spring sale", "campaign": f"Soak {len(campaigns)}"}
            )
            if body is not None:
                assert body["queued"] == len(numbers), body
                campaigns[body["campaign"]["id"]] = numbers
            next_campaign += CAMPAIGN_EVERY
        if now >= next_single:
            to = number(7, sent_singles)
            sent_singles += 1
            body = send({"to": to, "text": f"Soak: your code is {sent_singles}"})
            if body is not None:
                singles[body["message"]["id"]] = to
            next_single += SINGLE_EVERY
        assert stack.process.poll() is None, f"the supervisor ended:\n{stack.output[-4000:]}"
        time.sleep(max(0.0, min(next_single, next_campaign) - time.monotonic()))
    sending_seconds = time.monotonic() - began

    # Every message final, within 5 minutes.
    deadline = time.monotonic() + 300
    while True:
        waiting = {s: len(get("/messages", status=s)["results"]) for s in ON_THE_WAY}
        if not any(waiting.values()) or time.monotonic() > deadline:
            break
        time.sleep(5)
    drained_seconds = time.monotonic() - began - sending_seconds

    def all_pages(path: str) -> list[dict]:
        rows, cursor = [], None
        while True:
            body = get(path, limit=200, cursor=cursor)
            rows += body["results"]
            if (cursor := body["next_cursor"]) is None:
                return rows

    messages = {m["id"]: m for m in all_pages("/messages")}
    by_campaign = Counter(m["campaign_id"] for m in messages.values() if m["campaign_id"])
    expected = dict(singles) | {
        m["id"]: m["to"] for m in messages.values() if m["campaign_id"] in campaigns
    }
    lost_singles = [i for i in singles if i not in messages]
    lost_in_campaigns = {
        c: len(n) - by_campaign[c] for c, n in campaigns.items() if by_campaign[c] < len(n)
    }
    statuses = Counter(m["status"] for m in messages.values())
    wrong = [
        (i, to, messages[i]["status"])
        for i, to in expected.items()
        if i in messages
        and messages[i]["status"] != ("undelivered" if to.endswith("0000") else "delivered")
    ]
    repliers = {to for i, to in expected.items() if to.endswith("9999") and i in messages}
    replied = set()
    deadline = time.monotonic() + 60  # replies come after the delivery reports
    while replied != repliers and time.monotonic() < deadline:
        replied = {r["from_number"] for r in all_pages("/replies")} & repliers
        time.sleep(2)

    output = stack.output
    pids = stack.pids()
    unreadable = sorted(p.name for p in (stack.broker / "unreadable").glob("*"))
    figures = {
        "seconds sending": round(sending_seconds),
        "seconds until all final": round(drained_seconds),
        "singles accepted": len(singles),
        "campaigns accepted": len(campaigns),
        "messages": len(messages),
        "statuses": dict(statuses),
        "sends refused": len(refused),
        "sends retried": len(retried),
        "web reloads (source changed)": output.count(" changed, reloading."),
        "API send p50 / p95 / max ms": [
            round(statistics.median(latencies) * 1000),
            round(statistics.quantiles(latencies, n=20)[-1] * 1000),
            round(max(latencies) * 1000),
        ],
        "replies": f"{len(replied)} of {len(repliers)}",
        "lost": len(lost_singles) + sum(lost_in_campaigns.values()),
        "wrong final status": len(wrong),
        "process starts": {name: len(p) for name, p in pids.items()},
        "deaths": output.count(" DIED: "),
        "broker files set aside": len(unreadable),
        "log lines": output.count("\n"),
    }
    print("\nsoak figures:", figures)
    if retried:
        print("sends retried because:", Counter(retried).most_common(5))

    assert refused == [], refused
    assert lost_singles == [] and lost_in_campaigns == {}
    assert not any(waiting.values()), f"not final after 5 minutes: {waiting}"
    assert wrong == [], wrong[:20]
    assert replied == repliers
    assert " DIED: " not in output and "GAVE UP" not in output
    assert "Unrecoverable error" not in output
    assert pids == started_pids and sorted(pids) == sorted(PROCESSES)
    assert all(len(p) == 1 for p in pids.values()), pids
    assert [name for name, (pid,) in pids.items() if not alive(pid)] == []
    assert unreadable == []

    # Ctrl-C stops every process of the stack.
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 128 + signal.SIGINT
    assert [name for name, (pid,) in pids.items() if alive(pid)] == []
