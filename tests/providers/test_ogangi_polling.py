"""Ogangi's replies are polled (getMOMessages), in whatever order Ogangi lists them.

The doc gives getMOMessages' paging (page, resultsPerPage, records) but not the order of the
list. The simulator's fake is configured for each order (``mo_order``: ``asc`` always oldest
first, ``desc`` always newest first, ``search`` as the search string's ``order=`` asks) and the
adapter, then the hub's polling, are run against each: every reply is read, none is skipped,
none is stored twice, over several pages (100 per page), with replies arriving between polls and
during a poll, and with a backlog longer than one poll may read. The replies are the doc's
example (from 58123456789 to 19893143924, "Test", sent 2014-10-13 10:30:51.922), numbered.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.models import Reply
from campaigns.services import polling
from providers import ogangi
from providers.events import InboundSMS
from providers.ogangi import OgangiProvider
from providers.simulator.server import Reply as SimReply
from providers.simulator.server import SimulatorServer
from tests.factories import AccountFactory, ProviderAccountFactory

KEYS = {"instance_id": "8", "public_key": "4BFB-4943-9546-9BB8964254F2", "private_key": "FBF3"}
ORDERS = ("asc", "desc", "search")
DOC_DATE = datetime(2014, 10, 13, 10, 30, 51, 922000, tzinfo=UTC)


@contextmanager
def ogangi_fake(order: str) -> Iterator[SimulatorServer]:
    server = SimulatorServer(dlr_delay=0, credentials={"ogangi": {**KEYS, "mo_order": order}})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def arrive(
    sim: SimulatorServer, numbers: range, *, step=timedelta(seconds=1), phone=58123456789
) -> None:
    """Replies number ``n`` of ``numbers``: the doc's example from phone ``phone + n``, ``n``
    steps after the example's time."""
    fake = sim.fakes["ogangi"]
    for n in numbers:
        reply = SimReply(
            "ogangi",
            f"+{phone + n}",
            f"Test {n}",
            to="19893143924",
            received_at=DOC_DATE + n * step,
        )
        fake.deliver_reply(reply, delay=0)


def numbers(replies: list[InboundSMS]) -> list[int]:
    return [int(reply.text.removeprefix("Test ")) for reply in replies]


def mo_pages_read(sim: SimulatorServer, since: int) -> int:
    return sum(
        1
        for entry in sim.requests_log
        if entry["seq"] > since and "/getMOMessages/" in entry.get("path", "")
    )


class Poller:
    """The adapter polled as the hub does: the cursor kept from one poll to the next."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.adapter = OgangiProvider(base_url=sim.url, credentials=dict(KEYS))
        self.cursor = ""

    def poll(self) -> list[InboundSMS]:
        replies, self.cursor = self.adapter.fetch_inbound(self.cursor)
        assert len(self.cursor) <= 200
        return replies


@pytest.mark.parametrize("order", ORDERS)
def test_every_reply_is_read_once_over_several_pages_whatever_the_order(order):
    with ogangi_fake(order) as sim:
        poller = Poller(sim)
        arrive(sim, range(250))  # three pages
        first = poller.poll()
        assert numbers(first) == list(range(250))  # oldest first
        reply = first[0]
        assert (reply.from_number, reply.to_number) == ("58123456789", "19893143924")
        assert reply.received_at == DOC_DATE
        assert reply.raw["sendDate"] == "2014-10-13 10:30:51.922"
        assert len({r.provider_message_id for r in first}) == 250

        before = sim.recorded
        assert poller.poll() == []
        assert mo_pages_read(sim, before) <= 3  # a look at the newest end, not the whole list

        arrive(sim, range(250, 380))  # between polls: 130 more, over a page boundary
        assert numbers(poller.poll()) == list(range(250, 380))
        assert poller.poll() == []


@pytest.mark.parametrize("order", ORDERS)
def test_a_burst_within_one_millisecond_is_read_whole(order):
    """Dates cannot tell such replies apart, nor the order: their count and places do."""
    with ogangi_fake(order) as sim:
        poller = Poller(sim)
        arrive(sim, range(120), step=timedelta(0))
        assert sorted(numbers(poller.poll())) == list(range(120))
        arrive(sim, range(120, 150), step=timedelta(0))  # the very same millisecond again
        assert sorted(numbers(poller.poll())) == list(range(120, 150))
        assert poller.poll() == []


@pytest.mark.parametrize("order", ORDERS)
def test_replies_arriving_while_a_poll_walks_the_pages_are_read_once(order):
    with ogangi_fake(order) as sim:
        arrive(sim, range(10))
        poller = Poller(sim)
        assert numbers(poller.poll()) == list(range(10))
        arrive(sim, range(10, 260))
        arrivals = iter([range(260, 290), range(290, 400), range(400, 410)])
        page_of_the_list = poller.adapter.mo_page

        def page_then_more_arrive(page, per_page, reading=None):
            answer = page_of_the_list(page, per_page, reading)
            arrive(sim, next(arrivals, range(0)))  # Ogangi stores more while we read
            return answer

        poller.adapter.mo_page = page_then_more_arrive
        seen = numbers(poller.poll())
        poller.adapter.mo_page = page_of_the_list
        while replies := poller.poll():
            seen += numbers(replies)
        assert sorted(seen) == list(range(10, 410))
        assert Counter(seen).most_common(1)[0][1] == 1


@pytest.mark.parametrize("order", ORDERS)
def test_a_backlog_longer_than_a_poll_reads_is_read_over_the_next_polls(order, monkeypatch):
    monkeypatch.setattr(ogangi, "MO_MAX_PAGES", 3)
    with ogangi_fake(order) as sim:
        poller = Poller(sim)
        arrive(sim, range(50))
        assert numbers(poller.poll()) == list(range(50))
        arrive(sim, range(50, 1050))  # ten pages, while a poll walks three at most
        got, polls, total = [], 0, 1050
        while replies := poller.poll():
            polls += 1
            got += numbers(replies)
            if polls <= 4:  # and more keep coming meanwhile
                arrive(sim, range(total, total + 40))
                total += 40
            assert polls < 20
        assert polls >= 4  # several polls: none walks more than three pages (and two to look)
        assert set(got) == set(range(50, total))
        assert poller.poll() == []


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_the_first_poll_reads_the_newest_pages_and_says_what_it_left(order, monkeypatch, caplog):
    monkeypatch.setattr(ogangi, "MO_MAX_PAGES", 2)
    with ogangi_fake(order) as sim:
        arrive(sim, range(600))  # six pages: the first and last to look, then two more
        poller = Poller(sim)
        assert numbers(poller.poll()) == list(range(300, 600))
        assert "the 300 older ones Ogangi holds are from before" in caplog.text
        arrive(sim, range(600, 610))
        assert numbers(poller.poll()) == list(range(600, 610))


# --- through the hub: polling.poll stores each reply once ------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_the_hub_stores_every_polled_reply_once(order, monkeypatch):
    """Through `polling.poll`, as the beat task runs it. The doc's 58123456789 is no valid
    Venezuelan number, which the hub refuses: these replies come from valid ones."""
    monkeypatch.setattr(ogangi, "MO_MAX_PAGES", 2)
    with ogangi_fake(order) as sim:
        provider_account = ProviderAccountFactory(
            name="Ogangi", slug="ogangi", base_url=sim.url, credentials=dict(KEYS)
        )
        AccountFactory(name="Replies land here", route=[provider_account])
        phone = 584141230000
        arrive(sim, range(5), phone=phone)
        assert polling.poll(provider_account) == 5
        arrive(sim, range(5, 505), phone=phone)  # five pages, while a poll reads two
        stored, total = 5, 505
        for _ in range(12):
            provider_account.refresh_from_db()
            stored += polling.poll(provider_account)
            arrive(sim, range(total, total + 20), phone=phone)  # and more between polls
            total += 20
        provider_account.refresh_from_db()
        while new := polling.poll(provider_account):
            stored += new
            provider_account.refresh_from_db()
        assert stored == total == Reply.objects.count()
        texts = Counter(Reply.objects.values_list("text", flat=True))
        assert set(texts) == {f"Test {n}" for n in range(total)}
        assert texts.most_common(1)[0][1] == 1
        reply = Reply.objects.get(text="Test 0")
        assert (reply.from_number, reply.to_number) == ("+584141230000", "19893143924")
