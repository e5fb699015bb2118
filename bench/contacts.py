"""The contacts pages with 1,000,000 contacts against the same pages with 10,000, in one run, and
a send to a 1,000,000-contact segment (issue 16: page ratio at most 1.5; the send streamed in
batches with a progress bar, under 300 MB).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/contacts.py
        [--contacts 1000000] [--baseline 10000] [--other 20000] [--repeat 11] [--explain]
        [--no-send] [--preview]

It creates two throwaway PostgreSQL databases (Django's test-database machinery):

- baseline: an account in France with three custom fields (first_name, missing for one contact
  in ten; city, one of four; age, a number), BASELINE contacts written with
  `INSERT ... SELECT generate_series`, a third of them in the list “Newsletter” and one in a
  hundred in “VIP”, one in 200 opted out, one in 500 with a reply, and five segments (“Lyon,
  reachable”: city is Lyon and not opted out; “Everyone with a city”: every contact; ...);
  beside it another account with `--other` (20,000) newer contacts of its own, half of them
  with the same numbers;
- large: a copy of the baseline database, plus CONTACTS - BASELINE older contacts of the first
  account (lower ids, as history would have them), with the same proportions.

Each page is fetched through Django's test client by a logged-in operator, from the baseline
database and the large one in turn (so that a busy machine slows both alike), `--repeat` times
after two warm-up rounds; the table shows the median and fastest milliseconds, the median spent
in SQL and the ratios large / baseline. An account of at most 10,000 contacts gets its counts
with its pages (the baseline's pages include them); a larger one gets them just after the page
(htmx, `?count=...` on the page's address): those requests are timed the same way on their own
lines, not part of the target, as they read every row they count.

Then, in the large database, a campaign to the segment of every contact (`bulk.create_campaign`
from `audience.recipients`, a text with merge fields, the contacts counted first as compose does
for its progress bar), in a forked process whose peak memory (the kernel's high-water mark above
its size when it started) is its own: seconds, messages/s, peak MB, and how often the progress
callback was called on the way (how far the first call came, the longest wait between two).
`--preview` also times `bulk.preview` of the same send, which compose runs first.
The last line is one JSON object.
"""

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DEBUG"] = "false"  # with DEBUG on, Django would keep every query's SQL
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # the test client speaks plain HTTP

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

# Static files by their own names: no `collectstatic` manifest to read (DEBUG is off).
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

from bench.ui import analyze, insert_select, timed_pair  # noqa: E402

FIRST_NAMES = ["Ann", "Bob", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo"]
CITIES = ["Lyon", "Paris", "Marseille", "Lille"]
TEXT = "Hello {first_name|there}, our {city} shop opens on Monday. Reply STOP to opt out."


def number_sql(expression: str) -> str:
    """The number of contact `expression` (an id), as SQL: distinct French mobiles."""
    return f"'+336' || (10000000 + ({expression}))::text"


def number(i: int) -> str:
    return f"+336{10000000 + i}"


def national(i: int) -> str:
    """Contact `i`'s number as a French user types it (06 10 00 00 01)."""
    digits = "0" + number(i)[3:]
    return " ".join(digits[k : k + 2] for k in range(0, 10, 2))


def fill_contacts(account, lists: dict, first: int, last: int, now) -> None:
    """Contacts first..last (ids) of `account`, created one second apart (the highest id the
    latest), their lists, opt-outs and replies."""
    from campaigns.contacts.models import Contact, Membership
    from campaigns.models import OptOut, Reply

    series = f"generate_series({first}, {last}) AS i"
    first_names = ", ".join(f"'{name}'" for name in FIRST_NAMES)
    cities = ", ".join(f"'{city}'" for city in CITIES)
    created = f"'{now.isoformat()}'::timestamptz - make_interval(secs => {last} - i)"
    insert_select(
        Contact,
        {
            "id": "i",
            "account_id": str(account.pk),
            "number": number_sql("i"),
            "name": "'Contact ' || i",
            "language": "'fr'",
            "values": (
                "jsonb_strip_nulls(jsonb_build_object("
                f"'first_name', CASE WHEN mod(i, 10) <> 0 "
                f"THEN (ARRAY[{first_names}])[mod(i, 8) + 1] END, "
                f"'city', (ARRAY[{cities}])[mod(i / 7, 4) + 1], "
                "'age', 18 + mod(i, 61)))"
            ),
            "created_at": created,
            "updated_at": created,
        },
        series,
        [],
    )
    # Membership ids: the contact's id in the Newsletter, offset by a billion in VIP.
    for offset, contact_list, condition in (
        (0, lists["newsletter"], "mod(i, 3) = 0"),
        (1_000_000_000, lists["vip"], "mod(i, 100) = 1"),
    ):
        insert_select(
            Membership,
            {
                "id": f"{offset} + i",
                "contact_id": "i",
                "contact_list_id": str(contact_list.pk),
                "added_at": created,
            },
            f"{series} WHERE {condition}",
            [],
        )
    insert_select(
        OptOut,
        {
            "id": "i",
            "account_id": str(account.pk),
            "number": number_sql("i"),
            "source": "'reply'",
            "keyword": "'STOP'",
            "created_at": created,
        },
        f"{series} WHERE mod(i, 200) = 5",
        [],
    )
    insert_select(
        Reply,
        {
            "id": "i",
            "account_id": str(account.pk),
            "from_number": number_sql("i"),
            "text": "'Yes please'",
            "received_at": f"'{now.isoformat()}'::timestamptz - make_interval(days => mod(i, 60))",
        },
        f"{series} WHERE mod(i, 500) = 3",
        [],
    )


def fill_other(account, contact_list, first: int, count: int, now) -> None:
    """The other account's `count` contacts (ids from `first`), every one in its list: half
    of them with numbers of the first account's latest contacts (a number is unique per
    account only)."""
    from campaigns.contacts.models import Contact, Membership

    created = f"'{now.isoformat()}'::timestamptz - make_interval(secs => i - {first})"
    insert_select(
        Contact,
        {
            "id": "i",
            "account_id": str(account.pk),
            "number": number_sql(f"i - {count // 2}"),
            "name": "'Other ' || i",
            "language": "'fr'",
            "values": "jsonb_build_object('city', 'Lyon')",
            "created_at": created,
            "updated_at": created,
        },
        f"generate_series({first}, {first + count - 1}) AS i",
        [],
    )
    insert_select(
        Membership,
        {
            "id": "2000000000 + i",
            "contact_id": "i",
            "contact_list_id": str(contact_list.pk),
            "added_at": created,
        },
        f"generate_series({first}, {first + count - 1}) AS i",
        [],
    )


def reset_sequences() -> None:
    from campaigns.contacts.models import Contact, Membership
    from campaigns.models import OptOut, Reply

    with connection.cursor() as cursor:
        for model in (Contact, Membership, OptOut, Reply):
            table = model._meta.db_table
            quoted = connection.ops.quote_name(table)
            # The table's name is the model's own, quoted.
            sql = f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {quoted}))"  # noqa: S608
            cursor.execute(sql, [table])


def setup(baseline: int, contacts: int, other_contacts: int) -> dict:
    """Both accounts, their fields, lists and segments, the baseline's contacts, a logged-in
    operator of the first account (a client for pages, another for htmx fragments)."""
    from django.contrib.auth import get_user_model

    from campaigns.contacts import segments
    from campaigns.contacts.models import ContactField, ContactList, Segment
    from campaigns.models import Account, Membership

    now = timezone.now()
    account = Account.objects.create(name="Bench", country="FR", timezone="Europe/Paris")
    other = Account.objects.create(name="Other", country="FR", timezone="Europe/Paris")
    for owner in (account, other):
        for key, label, type_ in [
            ("first_name", "First name", "text"),
            ("city", "City", "text"),
            ("age", "Age", "number"),
        ]:
            ContactField.objects.create(account=owner, key=key, label=label, type=type_)
    lists = {
        "newsletter": ContactList.objects.create(account=account, name="Newsletter"),
        "vip": ContactList.objects.create(account=account, name="VIP"),
    }
    theirs = ContactList.objects.create(account=other, name="Theirs")

    def segment(owner, name, rules):
        return Segment.objects.create(account=owner, name=name, rules=segments.clean(owner, rules))

    made = {
        "lyon": segment(
            account,
            "Lyon, reachable",
            [{"field": "city", "op": "eq", "value": "Lyon"}, {"opted_out": False}],
        ),
        "everyone": segment(account, "Everyone with a city", [{"field": "city", "op": "set"}]),
        "newsletter": segment(
            account,
            "Newsletter outside Paris",
            [
                {"list": lists["newsletter"].pk},
                {"field": "city", "op": "ne", "value": "Paris"},
            ],
        ),
        "replied": segment(
            account,
            "Lyon, replied lately",
            [
                {"field": "city", "op": "eq", "value": "Lyon"},
                {"opted_out": False},
                {"replied_within_days": 30},
            ],
        ),
        "vip": segment(account, "VIP", [{"list": lists["vip"].pk}]),
    }
    segment(other, "Their Lyon", [{"field": "city", "op": "eq", "value": "Lyon"}])

    history = contacts - baseline
    fill_contacts(account, lists, history + 1, contacts, now)
    fill_other(other, theirs, contacts + 1, other_contacts, now)
    reset_sequences()

    user = get_user_model().objects.create_user("bench", password="bench-password-123")  # noqa: S106
    Membership.objects.create(user=user, account=account, role=Membership.Role.OPERATOR)
    client, fragments = Client(), Client(headers={"HX-Request": "true"})
    client.force_login(user)
    fragments.force_login(user)
    return {
        "account": account,
        "user": user,
        "lists": lists,
        "segments": made,
        "client": client,
        "fragments": fragments,
        "now": now,
    }


def plans(client: Client, url: str) -> str:
    """The plans, as run, of the page's queries on the contacts tables."""
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    shown = []
    for query in captured.captured_queries:
        if '"contacts_contact"' not in query["sql"] and '"contacts_membership"' not in query["sql"]:
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query["sql"])
            plan = "\n".join("    " + row[0] for row in cursor.fetchall())
        shown.append(f"  …{query['sql'][-240:]}\n{plan}")
    return "\n".join(shown)


# --- the send, in a process of its own --------------------------------------------------------


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def in_child(work) -> dict:
    """Run `work` (returning a dict) in a forked process; add its seconds and peak memory above
    its size when it started."""
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
            started = time.perf_counter()
            report = work()
            report["seconds"] = time.perf_counter() - started
            report["peak_mb"] = (memory_kb("VmHWM") - start_kb) / 1024
        except BaseException as error:  # reported to the parent, which fails
            report = {"error": f"{type(error).__name__}: {error}"}
            code = 1
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(report))
        connections.close_all()
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        report = json.loads(answer.read() or '{"error": "no answer"}')
    os.waitpid(pid, 0)
    if "error" in report:
        raise SystemExit(f"failed: {report['error']}")
    return report


class Counted:
    """Recipients, counting those read (what compose's progress bar shows for contacts)."""

    def __init__(self, items) -> None:
        self.items, self.read = items, 0

    def __iter__(self):
        for item in self.items:
            self.read += 1
            yield item


def send(account, user, segment, *, preview: bool) -> dict:
    """`bulk.create_campaign` (or `bulk.preview`) to the segment, with a progress callback."""
    from campaigns.contacts import audience
    from campaigns.services import bulk

    # As compose does: the contacts counted once first, the progress bar's end.
    started = time.perf_counter()
    total = audience.count(account, segments=[segment])
    count_s = time.perf_counter() - started
    recipients = Counted(audience.recipients(account, segments=[segment]))
    calls: list[tuple[float, int]] = []
    started = time.perf_counter()

    def progress(_line: int) -> None:
        calls.append((time.perf_counter() - started, recipients.read))

    if preview:
        result = bulk.preview(account, text=TEXT, recipients=recipients, progress=progress)
        report = {"recipients": result.recipients, "opted_out": result.opted_out}
    else:
        result = bulk.create_campaign(
            account,
            name="Everyone",
            text=TEXT,
            recipients=recipients,
            created_by=user,
            progress=progress,
        )
        report = {
            "recipients": result.queued,
            "opted_out": result.opted_out,
            "campaign": result.campaign.pk,
        }
    report.update(
        total=total,
        count_s=count_s,
        read=recipients.read,
        progress_calls=len(calls),
        first_call_s=calls[0][0] if calls else None,
        first_call_read=calls[0][1] if calls else None,
        # The longest wait between two calls: how long the bar can stand still.
        longest_gap_s=max(
            (b[0] - a[0] for a, b in zip([(0.0, 0), *calls], calls, strict=False)), default=None
        ),
    )
    return report


def check_send(report: dict, account, contacts: int) -> None:
    """The messages are there, personalised, none to another account or an opted-out number."""
    from campaigns.models import Message

    messages = Message.objects.filter(campaign_id=report["campaign"])
    opted = len(range(5, contacts + 1, 200))
    assert report["read"] == report["total"] == contacts, report
    assert report["recipients"] == contacts - opted == messages.count(), report
    for i in (contacts, contacts - 9, contacts - 10):  # a first name, and none (i % 10 == 0)
        text = messages.get(recipient=number(i)).text
        first = FIRST_NAMES[i % 8] if i % 10 else "there"
        assert text.startswith(f"Hello {first}, our {CITIES[(i // 7) % 4]} shop"), text
    assert not messages.exclude(account=account).exists()


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000, help="the large database")
    parser.add_argument("--baseline", type=int, default=10_000, help="the baseline database")
    parser.add_argument("--repeat", type=int, default=11, help="timed requests per page and base")
    parser.add_argument(
        "--other", type=int, default=20_000, help="the other account's contacts (newer)"
    )
    parser.add_argument("--explain", action="store_true", help="print query plans")
    parser.add_argument("--no-send", action="store_true", help="pages only")
    parser.add_argument("--preview", action="store_true", help="also time bulk.preview")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/contacts.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if args.contacts <= args.baseline or args.baseline < 6000:
        sys.exit("--contacts must be larger than --baseline, itself at least 6,000")

    # Names of its own: never the test suite's database, which may be in use.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"bench_contacts_{os.getpid()}"
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    baseline, large, large_name = connections["default"], None, ""
    history = args.contacts - args.baseline
    fill_seconds, send_report, preview_report = {}, None, None
    try:
        started = time.perf_counter()
        bench = setup(args.baseline, args.contacts, args.other)
        analyze()
        fill_seconds["baseline"] = time.perf_counter() - started

        connection.close()
        large_settings = connection.creation.get_test_db_clone_settings("large")
        connection.creation.clone_test_db(suffix="large", verbosity=0)
        large_name = large_settings["NAME"]
        large = baseline.__class__(large_settings, "default")
        connections["default"] = large
        started = time.perf_counter()
        fill_contacts(bench["account"], bench["lists"], 1, history, bench["now"])
        reset_sequences()
        analyze()
        fill_seconds["large"] = time.perf_counter() - started

        from campaigns.contacts.models import Contact

        assert Contact.objects.filter(account=bench["account"]).count() == args.contacts

        lists, segs = bench["lists"], bench["segments"]
        later = args.contacts - 5000  # a cursor among the latest contacts, in both databases
        wanted = args.contacts - 1234
        pages = {
            "contacts_first": "/contacts/",
            "contacts_later": f"/contacts/?after={later}",
            "contacts_number": "/contacts/?" + urlencode({"q": national(wanted)}),
            "contacts_list": f"/contacts/?list={lists['newsletter'].pk}",
            "contacts_segment": f"/contacts/?segment={segs['lyon'].pk}",
            "segments": "/contacts/segments/",
            "segment_page": f"/contacts/segments/{segs['lyon'].pk}/",
            "lists": "/contacts/lists/",
            "list_page": f"/contacts/lists/{lists['newsletter'].pk}/",
        }
        # Counts the pages load after they render, when the account is large.
        counts = {
            "count_contacts": "/contacts/?count=exact",
            "count_list_filter": f"/contacts/?list={lists['newsletter'].pk}&count=exact",
            "count_segment": f"/contacts/segments/{segs['lyon'].pk}/?count=exact",
            "count_segment_all": f"/contacts/segments/{segs['everyone'].pk}/?count=exact",
            "count_list": f"/contacts/lists/{lists['newsletter'].pk}/?count=exact",
        }
        wrappers = {"baseline": baseline, "large": large}
        # What a page shows is the same in both: the searched contact, one page of rows.
        for wrapper in wrappers.values():
            connections["default"] = wrapper
            html = bench["client"].get(pages["contacts_number"]).content.decode()
            assert f"Contact {wanted}<" in html and "Other " not in html, "the search"
        results = {
            name: timed_pair(bench["client"], url, args.repeat, wrappers)
            for name, url in pages.items()
        }
        count_results = {
            name: timed_pair(bench["fragments"], url, max(3, args.repeat // 3), wrappers)
            for name, url in counts.items()
        }
        connections["default"] = large
        if args.explain:
            for name, url in pages.items():
                print(f"{name}: {url}")
                print(plans(bench["client"], url))
        if not args.no_send:
            account, user = bench["account"], bench["user"]
            if args.preview:
                preview_report = in_child(
                    lambda: send(account, user, segs["everyone"], preview=True)
                )
            send_report = in_child(lambda: send(account, user, segs["everyone"], preview=False))
            check_send(send_report, account, args.contacts)
    finally:
        if large is not None:
            large.close()
        connections["default"] = baseline
        connection.close()
        if large_name:
            connection.creation._destroy_test_db(large_name, verbosity=0)
        teardown_databases(old, verbosity=0)

    print(f"database:   {connection.vendor}")
    print(
        f"contacts:   {args.baseline:,} (baseline, written in {fill_seconds['baseline']:.1f} s "
        f"with another account's {args.other:,}) and {args.contacts:,} (history written in "
        f"{fill_seconds['large']:.1f} s)"
    )
    print("each page in ms: median (fastest) [median in SQL]")
    print(f"{'page':<22}{'baseline':>24}{'large':>24}{'ratio':>14}")

    def line(name: str, f: dict) -> None:
        print(
            f"{name:<22}{f['baseline_ms']:>8.1f} ({f['baseline_min_ms']:>5.1f})"
            f" [{f['baseline_sql_ms']:>5.1f}]"
            f"{f['large_ms']:>8.1f} ({f['large_min_ms']:>5.1f}) [{f['large_sql_ms']:>5.1f}]"
            f"{f['ratio']:>7.2f} ({f['ratio_min']:.2f})"
        )

    for name, figures in results.items():
        line(name, figures)
    worst = max(figures["ratio"] for figures in results.values())
    print(f"worst ratio of medians: {worst:.2f} (target <= 1.5)")
    print("counts loaded after the page (htmx), not in the target: they count every row")
    for name, figures in count_results.items():
        line(name, figures)
    for label, report in (("preview", preview_report), ("send", send_report)):
        if report is None:
            continue
        report["per_second"] = report["recipients"] / report["seconds"]
        print(
            f"{label} to a {args.contacts:,}-contact segment (counted first in "
            f"{report['count_s']:.2f} s): {report['recipients']:,} messages "
            f"({report['opted_out']:,} opted out, left out) in {report['seconds']:.1f} s, "
            f"{report['per_second']:,.0f}/s, peak memory +{report['peak_mb']:.0f} MB "
            "(target < 300); progress called "
            f"{report['progress_calls']:,} times, first after {report['first_call_s']:.2f} s "
            f"({report['first_call_read']:,} contacts read), at most "
            f"{report['longest_gap_s']:.2f} s apart"
        )
    summary = {
        "bench": "contacts",
        "database": connection.vendor,
        "contacts": args.contacts,
        "baseline": args.baseline,
        "repeat": args.repeat,
        **{
            f"{name}_{key}": round(value, 3 if key.startswith("ratio") else 1)
            for group in (results, count_results)
            for name, figures in group.items()
            for key, value in figures.items()
        },
        "worst_ratio": round(worst, 3),
    }
    for label, report in (("preview", preview_report), ("send", send_report)):
        if report is not None:
            summary.update(
                {
                    f"{label}_count_seconds": round(report["count_s"], 2),
                    f"{label}_seconds": round(report["seconds"], 1),
                    f"{label}_per_second": round(report["per_second"]),
                    f"{label}_peak_mb": round(report["peak_mb"], 1),
                    f"{label}_messages": report["recipients"],
                    f"{label}_progress_calls": report["progress_calls"],
                    f"{label}_longest_gap_s": round(report["longest_gap_s"], 2),
                }
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
