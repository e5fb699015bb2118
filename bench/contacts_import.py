"""Contact and campaign imports of N rows against PostgreSQL's COPY of the same rows into the same
tables (with their indexes), in one run (issue 16: at most 3x COPY, aim 2x; peak memory under
200 MB).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/contacts_import.py [N] [--runs 1] [--numbers e164|national]
        [--only copy_contacts,import,...]

It creates a throwaway PostgreSQL database, an account in France with three custom fields
(first_name and city, text; age, a number) and a CSV file of N rows (number, name, first_name,
city, age; numbers distinct French mobiles, as `+33612000000` or, with `--numbers national`,
`06 12 00 00 00`). Then, timed, each case in a process of its own (forked: its peak memory is
its own, read from the kernel's high-water mark) on tables emptied and analyzed beforehand:

- copy_contacts: COPY of the contact rows the import writes (account, number, name, language,
  values as JSON, timestamps) into the contacts table: the baseline of the next three;
- import: `importing.upsert_rows` of the N rows (`ContactRow`s made as they are consumed) into
  the empty table;
- update: the same N rows again (each age one more): every contact updated;
- csv_import: what the import page runs: the file read by `importing.CsvRows` with its columns
  mapped, into `upsert_rows`, on the empty table;
- copy_messages: COPY of the campaign's N message rows and their first timeline events (ids
  reserved from the sequence), the baseline of the next;
- campaign: `bulk.create_campaign` from `bulk.csv_recipients` of the same file.

Prints rows/s, seconds, the ratio to its COPY and peak memory (MB above the process's size
when the case started) for each case, and where the time went: the case's own CPU seconds
(Python, all its threads) and those of the PostgreSQL backends serving the benchmark's database
(sampled from /proc by their process titles; the server must run on this machine), summed into
a CPU ratio to COPY that a busy machine disturbs less than the wall-clock one. With `--runs R`
every case runs R times, interleaved: seconds are medians, ratios the medians of each run's
ratio to the COPY of its own round (all runs listed). The last line is one JSON object.
"""

import argparse
import contextlib
import csv
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DEBUG"] = "false"  # with DEBUG on, Django would keep every query's SQL

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.procs import CLOCK_TICKS  # noqa: E402
from campaigns import phone  # noqa: E402
from campaigns.contacts import importing  # noqa: E402
from campaigns.contacts.models import Contact, ContactField  # noqa: E402
from campaigns.models import Account, Campaign, Message, MessageEvent  # noqa: E402
from campaigns.services import bulk, rows  # noqa: E402
from providers import gsm  # noqa: E402

TEXT = "Your appointment is tomorrow at 10:00"
FIRST_NAMES = ["Ann", "Bob", "Chloé", "Dan", "Élise", "Farid", "Gaëlle", "Hugo", "Inès", "Jules"]
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy"]
CITIES = ["Lyon", "Paris", "Marseille", "Toulouse", "Nice", "Nantes", "Lille", "Rennes", "Metz"]
CONTACT_CASES = ("import", "update", "csv_import")
CAMPAIGN_CASES = ("campaign",)
CASES = ("copy_contacts", *CONTACT_CASES, "copy_messages", *CAMPAIGN_CASES)


def number(i: int, national: bool) -> str:
    e164 = f"+336{12000000 + i * 7:08d}"
    if not national:
        return e164
    digits = "0" + e164[3:]
    return " ".join(digits[j : j + 2] for j in range(0, 10, 2))


def person(i: int) -> tuple[str, str, str, int]:
    """(name, first_name, city, age) of row i."""
    first = FIRST_NAMES[i % len(FIRST_NAMES)]
    return f"{first} {LAST_NAMES[i // 7 % len(LAST_NAMES)]}", first, CITIES[i % 9], 18 + i % 73


# --- the cases: each returns what it wrote, checked by the caller -------------------------------


def contact_rows(n: int, national: bool, older: int = 0) -> Iterator[importing.ContactRow]:
    for i in range(n):
        name, first, city, age = person(i)
        values = {"first_name": first, "city": city, "age": str(age + older)}
        yield importing.ContactRow(i + 2, number(i, national), name, None, values)


def copy_contacts(bench: "Bench") -> int:
    now = timezone.now()
    account = bench.account.pk
    with transaction.atomic(), connection.cursor() as cursor:
        sql = (
            "COPY contacts_contact (account_id, number, name, language, values, created_at, "
            "updated_at) FROM STDIN"
        )
        with cursor.cursor.copy(sql) as copy:
            for i in range(bench.n):
                name, first, city, age = person(i)
                values = json.dumps({"first_name": first, "city": city, "age": age})
                copy.write_row((account, number(i, False), name, "", values, now, now))
    return bench.n


def upsert(bench: "Bench") -> int:
    result = importing.upsert_rows(bench.account, contact_rows(bench.n, bench.national))
    return result.created


def update(bench: "Bench") -> int:
    result = importing.upsert_rows(bench.account, contact_rows(bench.n, bench.national, 1))
    return result.updated


def csv_import(bench: "Bench") -> int:
    with open(bench.path, "rb") as stream:
        info = importing.inspect_file(stream, bench.account.region)
    mapping = importing.Mapping(
        number=0, name=1, fields=[(2, "first_name"), (3, "city"), (4, "age")]
    )
    result = importing.upsert_rows(bench.account, importing.CsvRows(bench.path, mapping, info))
    return result.created


def copy_messages(bench: "Bench") -> int:
    """The rows `create_campaign` writes: a message per number (ids taken from the sequence)
    and its first event."""
    now = timezone.now()
    campaign = Campaign.objects.create(account=bench.account, name="Copy", text=TEXT)
    analysis = gsm.analyze(TEXT)
    message = Message(
        account=bench.account,
        campaign=campaign,
        recipient="",
        text=TEXT,
        encoding=analysis.encoding,
        segments=max(analysis.segments, 1),
        status=Message.Status.QUEUED,
        created_at=now,
    )
    event = MessageEvent(
        at=now,
        to_status=Message.Status.QUEUED,
        source=MessageEvent.Source.STAFF,
        detail="Queued to send now.",
    )
    m_columns, m_values = rows.prepared(message)
    e_columns, e_values = rows.prepared(event)
    m_at = [c.name for c in m_columns].index("recipient")
    e_at = [c.name for c in e_columns].index("message")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('campaigns_message', 'id'), "
            "nextval(pg_get_serial_sequence('campaigns_message', 'id')) + %s)",
            [bench.n],
        )
        first = cursor.fetchone()[0] - bench.n + 1
        raw = cursor.cursor
        with raw.copy(
            f"COPY campaigns_message (id, {rows.column_list(m_columns)}) FROM STDIN"
        ) as copy:
            for i in range(bench.n):
                row = list(m_values)
                row[m_at] = number(i, False)
                copy.write_row((first + i, *row))
        with raw.copy(
            f"COPY campaigns_messageevent ({rows.column_list(e_columns)}) FROM STDIN"
        ) as copy:
            for i in range(bench.n):
                row = list(e_values)
                row[e_at] = first + i
                copy.write_row(row)
    return bench.n


def campaign(bench: "Bench") -> int:
    with open(bench.path, "rb") as stream:
        result = bulk.create_campaign(
            bench.account,
            name="Bench",
            text=TEXT,
            recipients=bulk.csv_recipients(stream, column=0, has_header=True, delimiter=","),
        )
    return result.queued


RUN: dict[str, Callable[["Bench"], int]] = {
    "copy_contacts": copy_contacts,
    "import": upsert,
    "update": update,
    "csv_import": csv_import,
    "copy_messages": copy_messages,
    "campaign": campaign,
}
# What the table holds before each case (the update needs the import's contacts).
EMPTY_FIRST = {"copy_contacts", "import", "csv_import", "copy_messages", "campaign"}


# --- running them -----------------------------------------------------------------------------


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving `database` (found by their process
    titles), sampled every 50 ms while a case runs: what other sessions make the server do is
    left out, and a backend that exits (the import's second connection) counts up to its last
    sample."""

    def __init__(self, database: str) -> None:
        self.marker = f" {database} "
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def sample(self, baseline: bool = False) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                title = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
                if self.marker not in title:
                    continue
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, cpu = int(entry.name), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            self.first.setdefault(pid, cpu if baseline else 0.0)
            self.last[pid] = cpu

    def __enter__(self) -> "BackendCpu":
        self.sample(baseline=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.sample()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def in_child(work: Callable[[], int]) -> dict:
    """Run `work` in a forked process; its seconds, result and peak memory above its start."""
    connections.close_all()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark
            start_kb = memory_kb("VmRSS")
            started, cpu = time.perf_counter(), time.process_time()
            count = work()
            seconds = time.perf_counter() - started
            report = {
                "seconds": seconds,
                "rows": count,
                "peak_mb": (memory_kb("VmHWM") - start_kb) / 1024,
                "python_cpu": time.process_time() - cpu,
            }
        except BaseException as error:  # reported to the parent, which fails
            report = {"error": f"{type(error).__name__}: {error}"}
            code = 1
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(report))
        connections.close_all()
        os._exit(code)
    os.close(write)
    with BackendCpu(connection.settings_dict["NAME"]) as server, os.fdopen(read) as answer:
        report = json.loads(answer.read() or '{"error": "no answer"}')
    report["postgres_cpu"] = server.seconds
    os.waitpid(pid, 0)
    if "error" in report:
        raise SystemExit(f"case failed: {report['error']}")
    return report


class Bench:
    def __init__(self, n: int, national: bool, path: Path) -> None:
        self.n, self.national, self.path = n, national, path
        self.account = Account.objects.create(name="Bench", country="FR")
        for key, label, type_ in [
            ("first_name", "First name", "text"),
            ("city", "City", "text"),
            ("age", "Age", "number"),
        ]:
            ContactField.objects.create(account=self.account, key=key, label=label, type=type_)
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["number", "name", "first_name", "city", "age"])
            for i in range(n):
                name, first, city, age = person(i)
                writer.writerow([number(i, national), name, first, city, age])
        # What a long-running process has loaded already: phone metadata, compiled patterns.
        phone.normalize(number(0, national), "FR")
        importing.Numbers("FR")(number(0, national))
        importing._statements(False)

    def prepare(self, case: str) -> None:
        """Empty (or keep) the tables, then ANALYZE and CHECKPOINT: a case starts from the
        same state each time, and no checkpoint of an earlier one lands in it."""
        with connection.cursor() as cursor:
            if case in EMPTY_FIRST:
                cursor.execute(
                    "TRUNCATE contacts_contact, campaigns_message, campaigns_messageevent CASCADE"
                )
                Campaign.objects.all().delete()
            cursor.execute("ANALYZE contacts_contact")
            cursor.execute("ANALYZE campaigns_message")
            cursor.execute("ANALYZE campaigns_messageevent")
            cursor.execute("CHECKPOINT")

    def run(self, case: str) -> dict:
        self.prepare(case)
        report = in_child(lambda: RUN[case](self))
        if report["rows"] != self.n:
            raise SystemExit(f"{case}: wrote {report['rows']} rows, not {self.n}")
        if case in ("import", "csv_import", "copy_contacts"):
            assert Contact.objects.filter(account=self.account).count() == self.n
        return report


@contextlib.contextmanager
def throwaway_database():
    """A PostgreSQL database of the benchmark's own, dropped at the end (also when interrupted
    while being created)."""
    database = settings.DATABASES["default"]
    original = database["NAME"]
    name = database.setdefault("TEST", {})["NAME"] = f"test_bench_contacts_{os.getpid()}"
    old = None
    try:
        old = setup_databases(verbosity=0, interactive=False, keepdb=False)
        yield
    finally:
        connections.close_all()
        if old is not None:
            teardown_databases(old, verbosity=0)
        else:
            database["NAME"] = connection.settings_dict["NAME"] = original
            with contextlib.suppress(Exception):
                connection.creation._destroy_test_db(name, verbosity=0)


def cpu(report: dict) -> float:
    """CPU seconds a case took: its process and its database backends."""
    return report["python_cpu"] + report["postgres_cpu"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="rows (100000)")
    parser.add_argument("--runs", type=int, default=1, help="runs of every case (1)")
    parser.add_argument(
        "--numbers",
        choices=["e164", "national"],
        default="e164",
        help="how the file writes numbers (e164)",
    )
    parser.add_argument("--only", default=",".join(CASES), help="cases to run (all)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("This compares with PostgreSQL's COPY: set DATABASE_URL to PostgreSQL.")
    cases = [case for case in CASES if case in args.only.split(",")]
    if "update" in cases and "import" not in cases:
        cases.insert(cases.index("update"), "import")
    times: dict[str, list[dict]] = {case: [] for case in cases}
    with throwaway_database(), tempfile.TemporaryDirectory() as folder:
        bench = Bench(args.n, args.numbers == "national", Path(folder) / "people.csv")
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        print(
            f"{args.n:,} rows, 3 custom fields, numbers as {args.numbers}; PostgreSQL {version}; "
            f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
            flush=True,
        )
        for run in range(args.runs):
            for case in cases:
                report = bench.run(case)
                times[case].append(report)
                print(
                    f"  run {run + 1} {case:<14} {report['seconds']:7.2f} s "
                    f"{args.n / report['seconds']:>9,.0f} rows/s  peak +{report['peak_mb']:.0f} MB"
                    f"  CPU: Python {report['python_cpu']:.2f} s, "
                    f"its PostgreSQL backends {report['postgres_cpu']:.2f} s",
                    flush=True,
                )
    figures: dict = {"bench": "contacts_import", "rows": args.n, "numbers": args.numbers}
    print(
        f"\n{'case':<14} {'seconds':>8} {'rows/s':>9} {'x COPY':>7} {'CPU x COPY':>11} "
        f"{'peak MB':>8}"
    )
    for case in cases:
        runs = times[case]
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        base = "copy_messages" if case in CAMPAIGN_CASES else "copy_contacts"
        ratio = cpu_ratio = None
        if base in times and not case.startswith("copy_"):
            # Each run against the COPY of its own round: a shared machine's speed drifts.
            ratio = statistics.median(
                r["seconds"] / b["seconds"] for r, b in zip(runs, times[base], strict=True)
            )
            cpu_ratio = statistics.median(
                cpu(r) / cpu(b) for r, b in zip(runs, times[base], strict=True)
            )
        shown = f"{ratio:7.2f} {cpu_ratio:11.2f}" if ratio is not None else f"{'-':>7} {'-':>11}"
        print(f"{case:<14} {seconds:8.2f} {args.n / seconds:9,.0f} {shown} {peak:8.0f}")
        figures[f"{case}_s"] = round(seconds, 3)
        figures[f"{case}_rows_per_s"] = round(args.n / seconds)
        figures[f"{case}_peak_mb"] = round(peak, 1)
        figures[f"{case}_cpu_s"] = round(statistics.median(cpu(r) for r in runs), 3)
        if ratio is not None:
            figures[f"{case}_ratio"] = round(ratio, 2)
            figures[f"{case}_cpu_ratio"] = round(cpu_ratio, 2)
        if args.runs > 1:
            figures[f"{case}_runs_s"] = [round(r["seconds"], 3) for r in runs]
    print(json.dumps(figures))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: the throwaway database is dropped")
