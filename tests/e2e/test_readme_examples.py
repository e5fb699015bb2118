"""The README's examples run verbatim on a fresh demo, with the outcome their comments promise.

One stack, started as `make run` starts it (migrate, cache table, `seed_demo`, then `make run`'s
four processes through `smshub/devstack.py`: the soak test's `Stack`), on a fresh SQLite
database and broker folder. Every ```sh block of README.md that holds a `curl` is an example
and is run here (the others install, test, benchmark or deploy); so are the inline simulator
examples (`POST /_simulator/replies`, `POST /_simulator/config`, `GET /simulator/log`). A new
curl block fails `test_every_curl_block_is_run` until it is given its expected outcome here.

How the text is run: each block is written to a file as it stands and run by bash, after a
prelude that defines `curl` as a function calling the real curl with `-sS -o FILE -w
'%{http_code}'`: it records every call's arguments, status and body and prints the body as
curl would, so `C=$(curl -s ... | python3 ...)` works as for a reader. What the README tells
the reader to provide is provided, nothing else: the key in place of `smsh_…` on the block's
`KEY=smsh_…   HUB=...` line, made the documented way (logged in as the demo's admin, *API
keys* → *Create key*), and `KEY`/`HUB` in the environment of the later block (as in the same
terminal). The stack runs on the documented ports 8000 and 8025 when both are free; when not
(a `make run` on this machine), on free ports, and only `127.0.0.1:8000` / `127.0.0.1:8025` in
the text are rewritten to them.

The placeholder ids (message 42, campaign 7, cursor 1234) are made real rather than rewritten,
so the text stays byte for byte: before the JSON API block the demo gets a little history
through the API (6 campaigns, 40 messages, all delivered), so that the block's own "Spring
sale" is campaign 7 and its first message, scheduled for tomorrow, is message 42: the one a
reader would look up and cancel (a cursor is a row id, so 1234 pages from there). The step the
hold example leaves to the reader ("send an SMS from /compose/") is done on the compose page,
and the hold released with admin's *Release hold*, as the README says.

Every call with its status and body goes to test-output/readme-examples.txt, the stack's output
to test-output/readme-examples.log. The demo is SQLite whatever the suite runs on, so CI's
PostgreSQL leg skips it (about a minute on the SQLite leg).
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..production.test_serving import free_port
from .test_soak import Stack

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
OUTPUT = ROOT / "test-output"
TRANSCRIPT = OUTPUT / "readme-examples.txt"
DOCUMENTED_HUB, DOCUMENTED_SIMULATOR = 8000, 8025
PARIS = ZoneInfo("Europe/Paris")  # the demo account's time zone

# `curl` as the reader's, recording each call: arguments, HTTP status, exit status and body.
# A refused connection (exit 7: nothing was sent) is tried again for a while: runserver restarts
# itself when a source file changes, as on a developer's machine.
PRELUDE = r"""
curl() {
  local n rc tries=0
  n=$(( $(ls "$README_CALLS" | grep -c '^status-') + 1 ))
  printf '%s\0' "$@" > "$README_CALLS/args-$n"
  while :; do
    command curl -sS --max-time 60 -o "$README_CALLS/body-$n" -w '%{http_code}' "$@" \
      > "$README_CALLS/status-$n" 2> "$README_CALLS/stderr-$n"
    rc=$?
    [ "$rc" = 7 ] && [ $(( tries += 1 )) -lt 60 ] || break
    sleep 0.5
  done
  echo "$rc" > "$README_CALLS/rc-$n"
  cat "$README_CALLS/stderr-$n" >&2
  cat "$README_CALLS/body-$n" 2>/dev/null
  return $rc
}
"""

# Each curl block, told apart by a line of its own: the JSON API, contacts, a hold.
BLOCKS = {
    "api": "KEY=smsh_…",
    "contacts": "curl $HUB/api/v1/contact-fields",
    "hold": "/_simulator/config",
}


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks of a Markdown text, unindented (those in list items too)."""
    blocks = []
    for match in re.finditer(r"^( *)```sh\n(.*?)^ *```$", text, re.M | re.S):
        indent = len(match.group(1))
        blocks.append("".join(line[indent:] for line in match.group(2).splitlines(True)))
    return blocks


def curl_blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for block in shell_blocks(README.read_text()):
        if not re.search(r"(^|[\s($|])curl ", block):
            continue  # install, test, benchmark and deploy commands
        names = [name for name, marker in BLOCKS.items() if marker in block]
        assert len(names) == 1, f"a curl example this test does not know:\n{block}"
        assert names[0] not in found, f"two curl examples look alike:\n{block}"
        found[names[0]] = block
    return found


def test_every_curl_block_is_run():
    assert sorted(curl_blocks()) == sorted(BLOCKS)


@dataclass
class Call:
    args: list[str]
    status: int
    exit_status: int
    body: bytes

    @property
    def method(self) -> str:
        for flag, value in zip(self.args, self.args[1:], strict=False):
            if flag == "-X":
                return value
        return "GET"

    @property
    def target(self) -> str:
        """Path and query of the URL called."""
        url = next(a for a in self.args if a.startswith("http"))
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.target} → {self.status}: {self.body[:600].decode()}"

    __repr__ = __str__  # assertion messages show no key


class Demo(Stack):
    """`make run`'s stack on a fresh demo, on the documented ports when they are free."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        documented = all(port_free(p) for p in (DOCUMENTED_HUB, DOCUMENTED_SIMULATOR))
        self.port = DOCUMENTED_HUB if documented else free_port()
        self.simulator_port = DOCUMENTED_SIMULATOR if documented else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.simulator_url = f"http://127.0.0.1:{self.simulator_port}"
        self.env.update(
            SMSHUB_PORT=str(self.port),
            SIMULATOR_PORT=str(self.simulator_port),
            PUBLIC_BASE_URL=self.url,
            SIMULATOR_URL=self.simulator_url,
        )
        self.env.pop("SMSHUB_API_RATE_LIMIT")  # the demo's own limits
        self.log = OUTPUT / "readme-examples.log"
        self.calls_dir = folder / "calls"
        self.calls_dir.mkdir()
        self.session = patient(requests.Session())  # the demo's admin, logged in
        self.client = patient(requests.Session())  # the test's own API calls
        self.key = self.checker = ""

    def localised(self, text: str) -> str:
        """The README's text with only its host:port changed to this stack's, if they differ."""
        text = text.replace(f"127.0.0.1:{DOCUMENTED_HUB}", f"127.0.0.1:{self.port}")
        return text.replace(f"127.0.0.1:{DOCUMENTED_SIMULATOR}", f"127.0.0.1:{self.simulator_port}")

    def run(self, name: str, text: str, env: dict[str, str] | None = None) -> list[Call]:
        """Run a block's text with bash, as it stands; the curl calls it made, in order."""
        before = len(list(self.calls_dir.glob("status-*")))
        script = self.calls_dir.parent / f"{name}.sh"
        script.write_text(PRELUDE + "\n" + self.localised(text))
        done = subprocess.run(
            ["bash", str(script)],
            cwd=self.calls_dir.parent,
            env={**self.env, **(env or {}), "README_CALLS": str(self.calls_dir)},
            capture_output=True,
            text=True,
            timeout=300,
        )

        def read(kind: str, n: int) -> bytes:
            path = self.calls_dir / f"{kind}-{n}"
            return path.read_bytes() if path.exists() else b""

        calls = [
            Call(
                args=read("args", n).decode().split("\0")[:-1],
                status=int(read("status", n) or 0),
                exit_status=int(read("rc", n)),
                body=read("body", n),
            )
            for n in range(before + 1, len(list(self.calls_dir.glob("status-*"))) + 1)
        ]
        with open(TRANSCRIPT, "a") as out:
            out.write(f"===== {name}: exit {done.returncode}\n{done.stderr}\n")
            out.writelines(f"{call}\n" for call in calls)
        assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)
        assert [c.exit_status for c in calls] == [0] * len(calls), [str(c) for c in calls]
        return calls

    # --- what the test does besides the README, as a reader or a program would -----------
    def csrf(self) -> str:
        return self.session.cookies["csrftoken"]

    def log_in(self) -> None:
        self.session.get(f"{self.url}/login/", timeout=30)
        answer = self.session.post(
            f"{self.url}/login/",
            data={
                "username": "admin",
                "password": "smshub-demo",
                "csrfmiddlewaretoken": self.csrf(),
            },
            timeout=30,
        )
        assert answer.status_code == 200 and "/logout/" in answer.text, answer.text[-2000:]

    def create_key(self, name: str) -> str:
        """A key for the demo account, made on the API keys page as the README says."""
        self.session.get(f"{self.url}/api-keys/", timeout=30)
        answer = self.session.post(
            f"{self.url}/api-keys/new/",
            data={"name": name, "csrfmiddlewaretoken": self.csrf()},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text[-2000:]
        (key,) = set(re.findall(r"smsh_[A-Za-z0-9_-]{20,}", answer.text))
        return key

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """The JSON API with a key of the test's own (the README's key keeps its rate limit)."""
        headers = {"Authorization": f"Bearer {self.checker}"}
        return self.client.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def messages(self, **params) -> list[dict]:
        answer = self.api("GET", "/messages", params={"limit": 200, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]

    def compose(self, number: str, text: str) -> None:
        """Send one SMS from /compose/: preview, then confirm."""
        form = {
            "when": "now",
            "compose_id": "readme",
            "recipients": number,
            "text": text,
            "csrfmiddlewaretoken": self.csrf(),
        }
        self.session.get(f"{self.url}/compose/", timeout=30)
        shown = self.session.post(f"{self.url}/compose/", {**form, "action": "preview"}, timeout=30)
        previewed = re.search(r'name="previewed" value="([0-9a-f]+)"', shown.text)
        assert previewed, shown.text[-3000:]
        sent = self.session.post(
            f"{self.url}/compose/",
            {**form, "action": "confirm", "previewed": previewed.group(1)},
            timeout=30,
            allow_redirects=False,
        )
        assert sent.status_code == 302, sent.text[-3000:]

    def evaluate(self, code: str):
        """A Python expression evaluated in the hub (`manage.py shell`), as JSON."""
        out = self.manage("shell", "-c", f"import json\n{code}\nprint(json.dumps(result))")
        return json.loads(out.strip().splitlines()[-1])


def patient(session: requests.Session) -> requests.Session:
    """A session that tries again while runserver restarts (connection refused: nothing was
    sent), and GETs again when runserver's listen backlog of 10 overflowed (a burst of
    delivery reports) and reset the connection."""
    retry = Retry(
        total=None,
        connect=60,
        read=2,
        status=0,
        other=0,
        backoff_factor=0.25,
        backoff_max=0.5,
        allowed_methods={"GET"},
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry))
    return session


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip(
            "the demo is `make run`'s own SQLite stack whatever the suite runs on: its run on "
            "the SQLite leg is enough (CI's PostgreSQL leg would repeat it)"
        )
    OUTPUT.mkdir(exist_ok=True)
    TRANSCRIPT.write_text("")
    demo = Demo(tmp_path_factory.mktemp("readme"))
    demo.manage("migrate", "--noinput")
    demo.manage("createcachetable")
    demo.manage("seed_demo")
    demo.start()
    try:
        deadline = time.monotonic() + 120
        while True:  # ready: database, broker, cache, and beat's heartbeat through the worker
            assert demo.process.poll() is None, demo.output[-4000:]
            try:
                if requests.get(f"{demo.url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not get ready:\n{demo.output[-4000:]}")
            time.sleep(0.3)
        demo.log_in()
        demo.key = demo.create_key("README examples")
        demo.checker = demo.create_key("README test checks")
        yield demo
    finally:
        if demo.process.poll() is None:
            demo.process.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                demo.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.process.pid, signal.SIGKILL)
                demo.process.wait()


def expect(calls: list[Call], expected: list[tuple[str, str, int | tuple[int, ...]]]) -> None:
    """Each call's method, target (a regular expression) and status, in order."""
    seen = [(c.method, c.target, c.status) for c in calls]
    assert len(calls) == len(expected), "\n".join(map(str, calls))
    for call, (method, target, status) in zip(calls, expected, strict=True):
        statuses = status if isinstance(status, tuple) else (status,)
        assert call.method == method and re.fullmatch(target, call.target), (seen, expected)
        assert call.status in statuses, str(call)


def test_json_api_examples(demo):
    # A little history first, so that the block's own campaign is 7 and message 42 its first.
    sizes = [7, 7, 7, 7, 6, 6]
    for n, size in enumerate(sizes):
        numbers = [f"+3361111{n}{i + 1:03d}" for i in range(size)]  # none ends 0000
        answer = demo.api(
            "POST", "/messages", json={"to": numbers, "campaign": f"History {n}", "text": "Earlier"}
        )
        assert answer.status_code == 201, answer.text
        time.sleep(0.5)  # their delivery reports in small bursts: runserver's backlog is 10
    assert demo.messages()[0]["id"] == sum(sizes) == 40
    assert answer.json()["campaign"]["id"] == len(sizes) == 6
    wait_until(lambda: len(demo.messages(status="delivered")) == 40, what="the history delivered")

    block = curl_blocks()["api"]
    assert block.count("KEY=smsh_…") == 1
    calls = demo.run("api", block.replace("KEY=smsh_…", f"KEY={demo.key}"))
    expect(
        calls,
        [
            ("POST", "/api/v1/messages", 201),
            ("POST", "/api/v1/messages", 201),
            ("POST", "/api/v1/messages", 201),
            ("GET", "/api/v1/messages/42", 200),
            ("GET", r"/api/v1/messages\?status=delivered&since=.*", 200),
            ("GET", r"/api/v1/messages\?status=delivered&cursor=1234", 200),
            ("POST", "/api/v1/messages/42/cancel", 200),
            ("GET", r"/api/v1/replies\?since=.*", 200),
            ("GET", "/api/v1/campaigns/7", 200),
            ("POST", "/api/v1/otp", 201),
            ("POST", "/api/v1/otp/verify", (200, 422)),
        ],
    )
    one, many, personal, shown, delivered, older, canceled, _, campaign, otp, verify = calls

    # One SMS, with the demo's sender and category.
    message = one.json()["message"]
    assert (message["to"], message["sender"], message["category"]) == (
        "+33612345678",
        "SMSHub",
        "notifications",
    )
    # Many: a campaign of two, scheduled tomorrow from 9:00 to 12:00 in Paris.
    body = many.json()
    assert body["campaign"]["id"] == 7 and body["campaign"]["name"] == "Spring sale"
    assert body["campaign"]["status"] == "scheduled"
    assert (body["queued"], body["duplicates"], body["opted_out"]) == (2, 0, 0)
    tomorrow = date.today() + timedelta(days=1)  # the date on this machine, as the shell's `date`
    spring = demo.messages(campaign_id=7)
    assert sorted(m["to"] for m in spring) == ["+33612345678", "+40721234567"]
    for m in spring:
        starts = datetime.fromisoformat(m["scheduled_at"]).astimezone(PARIS)
        ends = datetime.fromisoformat(m["window_end"]).astimezone(PARIS)
        assert (starts.date(), starts.hour, starts.minute) == (tomorrow, 9, 0), m
        assert (ends.date(), ends.hour, ends.minute) == (tomorrow, 12, 0), m
    # Personalised from "values" and from Camille's contact.
    message = personal.json()["message"]
    assert (message["to"], message["text"]) == ("+33612345601", "Hi Camille, your code is 4821")
    # Message 42 is the Spring sale's first, scheduled: it is canceled.
    assert shown.json()["id"] == 42 and shown.json()["campaign_id"] == 7
    assert shown.json()["status"] == "scheduled"
    assert canceled.json()["status"] == "canceled"
    # Delivered messages, newest first; the cursor pages from row 1234 down.
    for page in (delivered, older):
        results = page.json()["results"]
        assert results and {m["status"] for m in results} == {"delivered"}
        assert [m["id"] for m in results] == sorted((m["id"] for m in results), reverse=True)
    # The campaign with its messages by status.
    counts = campaign.json()["counts"]
    assert campaign.json()["name"] == "Spring sale"
    assert (counts["scheduled"], counts["canceled"], counts["total"]) == (1, 1, 2)
    # A code was sent; the README's "123456" is checked (almost surely wrong: 422 saying why).
    assert otp.json()["to"] == "+33612345678" and otp.json()["message_id"]
    if verify.status == 422:  # in the error shape the README shows
        assert set(verify.json()["error"]) == {"code", "message", "fields"}, str(verify)
        assert verify.json()["error"]["fields"]["code"], str(verify)


def test_contacts_examples(demo):
    calls = demo.run("contacts", curl_blocks()["contacts"], {"KEY": demo.key, "HUB": demo.url})
    expect(
        calls,
        [
            ("GET", "/api/v1/contact-fields", 200),
            ("POST", "/api/v1/contacts", 201),
            ("GET", r"/api/v1/contacts\?search=camille&limit=20", 200),
            ("GET", r"/api/v1/contacts\?number=0612345610", 200),
            ("PATCH", r"/api/v1/contacts/\d+", 200),
            ("GET", r"/api/v1/contacts/\d+", 200),
            ("GET", "/api/v1/lists", 200),
            ("POST", "/api/v1/lists", 201),
            ("POST", "/api/v1/contacts/bulk", 200),
            ("POST", r"/api/v1/lists/\d+/members", 200),
            ("POST", r"/api/v1/lists/\d+/members/remove", 200),
            ("GET", r"/api/v1/contacts\?list_id=\d+", 200),
            ("POST", "/api/v1/messages", 201),
            ("DELETE", r"/api/v1/contacts/\d+", 200),
        ],
    )
    (fields, created, search, by_number, patched, shown, lists, new_list, bulk, added, _removed,
     members, sent, deleted) = calls  # fmt: skip
    assert {f["key"] for f in fields.json()} == {"first_name", "city"}
    marie = created.json()
    assert (marie["number"], marie["name"]) == ("+33612345610", "Marie Dupont")
    assert [c["number"] for c in search.json()["results"]] == ["+33612345601"]
    assert by_number.json()["results"][0]["id"] == marie["id"]
    assert patched.target.endswith(f"/{marie['id']}")
    assert shown.json()["name"] == "Marie Curie" and shown.json()["fields"] == {
        "first_name": "Marie"
    }
    assert {item["name"]: item["members"] for item in lists.json()["results"]} == {"Regulars": 4}
    newsletter = new_list.json()["id"]
    assert list(bulk.json()["errors"]) == ["contacts.1.number"], bulk.json()
    assert (bulk.json()["created"], bulk.json()["updated"]) == (1, 1)  # Paul; Camille's city
    assert list(added.json()["errors"]) == ["numbers.1"], added.json()
    assert sorted(c["number"] for c in members.json()["results"]) == [
        "+33612345601",
        "+33612345602",
        "+33612345610",
    ]
    assert members.target.endswith(f"list_id={newsletter}")
    # Each contact of the list got its own text from the template.
    campaign = sent.json()["campaign"]
    texts = {m["to"]: m["text"] for m in demo.messages(campaign_id=campaign["id"])}
    assert texts == {
        "+33612345601": "Hello Camille, your table in Villeurbanne is ready.",
        "+33612345602": "Hello Ioana, your table in Paris is ready.",
        "+33•••••5610": "Hello Marie, your table in our bistro is ready.",
    }, texts
    assert deleted.target.endswith(f"/{marie['id']}")
    gone = demo.api("GET", f"/contacts/{marie['id']}")
    assert gone.status_code == 404


def test_simulator_hold_example(demo):
    """Refused credentials put "Simulator" on hold: the SMS waits, the dashboard says so."""
    block = curl_blocks()["hold"]
    refuse, reader, take_back = re.split(r"^(# \.\.\..*\n)", block, flags=re.M)
    assert "send an SMS from /compose/" in reader
    calls = demo.run("hold-1", refuse)
    expect(calls, [("POST", "/_simulator/config", 200)])

    demo.compose("+33 6 12 34 56 78", "Held for a moment")
    (waiting,) = demo.messages(limit=1)
    assert waiting["text"] == "Held for a moment"

    def dashboard_says_on_hold():
        page = demo.session.get(f"{demo.url}/", timeout=30).text
        return "Provider accounts on hold" in page and "<strong>Simulator</strong>" in page

    wait_until(dashboard_says_on_hold, what="the dashboard saying Simulator is on hold")
    assert demo.api("GET", f"/messages/{waiting['id']}").json()["status"] == "queued"

    calls = demo.run("hold-2", take_back)
    expect(calls, [("POST", "/_simulator/config", 200)])
    # Admin → Provider accounts → Release hold.
    simulator = demo.evaluate(
        "from providers.models import ProviderAccount\n"
        "result = ProviderAccount.objects.get(name='Simulator').pk"
    )
    changelist = f"{demo.url}/admin/providers/provideraccount/"
    demo.session.get(changelist, timeout=30)
    released = demo.session.post(
        changelist,
        {
            "action": "release_hold",
            "_selected_action": simulator,
            "csrfmiddlewaretoken": demo.csrf(),
        },
        timeout=30,
    )
    assert "Hold released on Simulator" in released.text, released.text[-3000:]
    wait_until(
        lambda: demo.api("GET", f"/messages/{waiting['id']}").json()["status"] == "delivered",
        what="the held SMS delivered once the hold is released",
    )


def test_simulator_inline_examples(demo):
    """`POST /_simulator/replies` reaches the inbox of “Demo”; `POST /_simulator/config` sets a
    reading; `GET /simulator/log` shows what went over the wire."""
    text = README.read_text()
    (reply,) = re.findall(r"`POST /_simulator/replies` `(\{.*?\})`", text)
    (reading,) = re.findall(r"with `POST /_simulator/config`, e\.g\. `(\{.*?\})`", text)
    assert "`GET /simulator/log`" in text

    answer = demo.client.post(f"{demo.simulator_url}/_simulator/replies", data=reply, timeout=30)
    assert answer.status_code == 202, answer.text
    sent = json.loads(reply)

    def in_demo_inbox():
        found = demo.api("GET", "/replies", params={"from_number": sent["from"]}).json()
        return [r for r in found["results"] if r["text"] == sent["text"]]

    (received,) = wait_until(in_demo_inbox, what="the reply in Demo's inbox")
    assert received["message_id"]  # linked to the latest message sent to that number
    page = demo.session.get(f"{demo.url}/inbox/", timeout=30)
    assert sent["text"] in page.text
    if sent["text"] == "STOP":  # the keyword opts the number out of Demo
        opted_out = demo.evaluate(
            "from campaigns.models import OptOut\n"
            "result = OptOut.objects.filter("
            f"account__name='Demo', number={sent['from']!r}).exists()"
        )
        assert opted_out

    answer = demo.client.post(f"{demo.simulator_url}/_simulator/config", data=reading, timeout=30)
    assert answer.status_code == 200, answer.text
    shown = demo.client.get(f"{demo.simulator_url}/_simulator/config", timeout=30).json()
    assert json.dumps(json.loads(reading)["credentials"]["vortext"])[1:-1] in json.dumps(shown)

    log = demo.client.get(f"{demo.simulator_url}/simulator/log", timeout=30)
    assert log.status_code == 200 and "/_simulator/replies" in log.text
