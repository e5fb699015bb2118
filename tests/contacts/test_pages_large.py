"""The contacts pages of a large account: the page comes at once and its counts just after it
(htmx, from the page's own address), exact; a small account's come with the page. Tenancy as
everywhere: another account's segment or list is a 404, its contacts are never counted. And the
progress of a send to lists and segments: how many contacts are done, out of how many."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.contacts import audience
from campaigns.contacts.models import Contact, ContactList, Segment
from campaigns.contacts.views import counts
from campaigns.contacts.views.common import PAGE_SIZE
from campaigns.views import compose as compose_views

from ..campaigns.test_compose import COMPOSE, confirm, form, preview
from ..factories import AccountFactory
from .test_pages import (  # noqa: F401 (fixtures)
    acme,
    as_operator,
    as_viewer,
    contact,
    fields,
    page,
    people,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
CONTACTS = reverse("contacts:contact_list")
SEGMENTS = reverse("contacts:segment_list")
LISTS = reverse("contacts:list_index")
LYON = [{"field": "city", "op": "eq", "value": "Lyon"}]


@pytest.fixture
def large(monkeypatch, people):  # noqa: F811
    """Acme's three contacts make it large: more than are counted with a page (2 here)."""
    monkeypatch.setattr(counts, "SMALL", 2)
    return people


def counted_contacts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"] and "contacts_" in q["sql"]]


def test_a_large_accounts_contacts_come_at_once_and_their_count_just_after(as_viewer, large):  # noqa: F811
    contact(AccountFactory(), "+33612345609", "Theirs")  # another account's: never counted
    with CaptureQueriesContext(connection) as queries:
        html = page(as_viewer.get(CONTACTS))
    assert not counted_contacts(queries)
    assert "Ann" in html and "Cat" in html and "in all" not in html
    assert '<a href="?count=exact" hx-get="?count=exact" hx-trigger="load"' in html
    assert "counting…</a>" in html
    # What htmx fetches after the page: the count alone.
    assert page(as_viewer.get(CONTACTS, {"count": "exact"}, headers=HTMX)) == "3 in all"
    # Without JavaScript the link leads to the page with its count.
    html = page(as_viewer.get(CONTACTS, {"count": "exact"}))
    assert "3 in all" in html and "Ann" in html and "counting…" not in html


def test_the_count_after_the_page_follows_the_search_and_filters(as_viewer, acme, large):  # noqa: F811
    lyon = Segment.objects.create(account=acme, name="Lyon", rules=LYON)
    theirs = Segment.objects.create(account=AccountFactory(), name="Theirs", rules=[])

    def count(**query) -> str:
        return page(as_viewer.get(CONTACTS, {**query, "count": "exact"}, headers=HTMX))

    html = page(as_viewer.get(CONTACTS, {"segment": lyon.pk}))
    assert f'hx-get="?segment={lyon.pk}&amp;count=exact"' in html
    assert count(segment=lyon.pk) == "2 matches"
    assert count(q="ann") == "1 match"
    assert count(list=large["vip"].pk) == "1 match"
    assert count(list=large["vip"].pk, segment=lyon.pk) == "1 match"
    assert count(list=large["vip"].pk, q="bob") == "0 matches"
    assert count(q="nobody") == "0 matches"
    assert count(segment=theirs.pk) == ""  # not a choice here: nothing is counted


def test_page_links_leave_the_count_out(as_viewer, acme, large):  # noqa: F811
    Contact.objects.bulk_create(
        Contact(account=acme, number=f"+336123400{n:02d}", name=f"P{n:02d}")
        for n in range(PAGE_SIZE)
    )
    response = as_viewer.get(CONTACTS, {"count": "exact"})
    html = page(response)
    assert f"{PAGE_SIZE + 3} in all" in html
    assert f'<a href="?after={response.context["page"]["older"]}" rel="next">' in html


def test_an_account_at_the_limit_gets_its_counts_with_the_page(as_viewer, monkeypatch, people):  # noqa: F811
    monkeypatch.setattr(counts, "SMALL", 3)
    html = page(as_viewer.get(CONTACTS))
    assert "3 in all" in html and "hx-get" not in html.split("<h1>")[1].split("</h1>")[0]


def test_a_large_accounts_segments_are_listed_at_once_and_counted_one_by_one_after(
    as_viewer,  # noqa: F811
    acme,  # noqa: F811
    large,
):
    lyon = Segment.objects.create(account=acme, name="In Lyon", rules=LYON)
    broken = Segment.objects.create(account=acme, name="Broken", rules=[{"field": "x"}])
    theirs = Segment.objects.create(account=AccountFactory(), name="Theirs", rules=[])
    with CaptureQueriesContext(connection) as queries:
        response = as_viewer.get(SEGMENTS)
    html = page(response)
    assert not counted_contacts(queries)
    assert [(r["segment"].name, r["count"], r["later"]) for r in response.context["rows"]] == [
        ("Broken", None, False),
        ("In Lyon", None, True),
    ]
    assert f'hx-get="{SEGMENTS}?count={lyon.pk}" hx-trigger="load"' in html
    detail = reverse("contacts:segment_detail", args=[lyon.pk])
    assert f'<a href="{detail}?count=exact"' in html  # without JavaScript: its page, counted
    assert page(as_viewer.get(SEGMENTS, {"count": lyon.pk}, headers=HTMX)) == "2"
    assert page(as_viewer.get(SEGMENTS, {"count": broken.pk}, headers=HTMX)) == "—"
    assert as_viewer.get(SEGMENTS, {"count": theirs.pk}, headers=HTMX).status_code == 404


def test_a_large_accounts_segment_page_counts_after_the_page(as_viewer, acme, large):  # noqa: F811
    lyon = Segment.objects.create(account=acme, name="In Lyon", rules=LYON)
    theirs = Segment.objects.create(account=AccountFactory(), name="Theirs", rules=[])
    url = reverse("contacts:segment_detail", args=[lyon.pk])
    with CaptureQueriesContext(connection) as queries:
        html = page(as_viewer.get(url))
    assert not counted_contacts(queries)
    assert "Ann" in html and "Bob" in html and "2 contacts now" not in html
    assert 'hx-get="?count=exact" hx-trigger="load"' in html
    assert page(as_viewer.get(url, {"count": "exact"}, headers=HTMX)) == "2 contacts now"
    assert "2 contacts now" in page(as_viewer.get(url, {"count": "exact"}))
    theirs_url = reverse("contacts:segment_detail", args=[theirs.pk])
    assert as_viewer.get(theirs_url, {"count": "exact"}, headers=HTMX).status_code == 404


def test_a_large_accounts_lists_are_counted_in_one_go_after_the_page(as_viewer, acme, large):  # noqa: F811
    newsletter = ContactList.objects.create(account=acme, name="Newsletter")
    newsletter.contacts.add(large["ann"], large["bob"], large["cat"])
    theirs = ContactList.objects.create(account=AccountFactory(), name="Theirs")
    with CaptureQueriesContext(connection) as queries:
        html = page(as_viewer.get(LISTS))
    assert not counted_contacts(queries)
    assert f'hx-get="{LISTS}?count=all" hx-trigger="load"' in html and "counting…" in html
    table = page(as_viewer.get(LISTS, {"count": "all"}, headers=HTMX))
    assert table.lstrip().startswith('<table class="list stacked" id="lists-table">')
    assert '<td data-label="Contacts" class="num">3</td>' in table  # Newsletter
    assert '<td data-label="Contacts" class="num">1</td>' in table  # VIP
    assert "Theirs" not in table and "hx-get" not in table
    assert as_viewer.get(reverse("contacts:list_detail", args=[theirs.pk])).status_code == 404


def test_a_large_accounts_list_page_counts_after_the_page(as_viewer, acme, large):  # noqa: F811
    url = reverse("contacts:list_detail", args=[large["vip"].pk])
    with CaptureQueriesContext(connection) as queries:
        html = page(as_viewer.get(url))
    assert not counted_contacts(queries)
    assert "Ann" in html and 'hx-get="?count=exact" hx-trigger="load"' in html
    assert page(as_viewer.get(url, {"count": "exact"}, headers=HTMX)) == "1 contact"
    theirs = ContactList.objects.create(account=AccountFactory(), name="Theirs")
    theirs_url = reverse("contacts:list_detail", args=[theirs.pk])
    assert as_viewer.get(theirs_url, {"count": "exact"}, headers=HTMX).status_code == 404


# Sending to lists and segments: the progress bar ---------------------------------------------


def test_the_audience_is_counted_as_it_is_read(acme, people):  # noqa: F811
    lyon = Segment.objects.create(account=acme, name="Lyon", rules=LYON)
    contact(AccountFactory(), people["ann"].number, "Theirs", city="Lyon")
    # Ann is in both: read twice, counted twice (the send leaves the second out).
    assert audience.count(acme, [people["vip"]], [lyon]) == 3
    assert len(list(audience.recipients(acme, [people["vip"]], [lyon]))) == 3
    assert audience.count(acme) == 0


class Recorded:
    """The cache, recording the progress states compose writes."""

    def __init__(self, cache) -> None:
        self.cache, self.states = cache, []

    def set(self, key, value, *args, **kwargs):
        if key.startswith("compose-progress:"):
            self.states.append(dict(value))
        return self.cache.set(key, value, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.cache, name)


@pytest.fixture
def audience_of_three(account):
    vip = ContactList.objects.create(account=account, name="VIP")
    for n in range(3):
        vip.contacts.add(Contact.objects.create(account=account, number=f"+3361234560{n}"))
    lyon = Segment.objects.create(account=account, name="Everyone", rules=[])
    return {"vip": vip, "everyone": lyon}


def test_a_send_to_a_list_shows_how_many_contacts_are_done_out_of_how_many(
    operator_client, monkeypatch, audience_of_three
):
    recorded = Recorded(compose_views.cache)
    monkeypatch.setattr(compose_views, "cache", recorded)
    data = {"lists": [audience_of_three["vip"].pk], "name": "VIP"}
    shown = preview(operator_client, **data)
    assert confirm(operator_client, shown, **data).status_code == 200
    states = [(s["phase"], s["done"], s["total"], s["unit"]) for s in recorded.states]
    # Counted before the first contact is read: the bar has its end from the start.
    assert states[0] == ("check", 0, 3, "contacts")
    assert ("check", 3, 3, "contacts") in states and states[-1] == ("import", 3, 3, "contacts")
    progress = operator_client.get(
        reverse("campaigns:compose_progress", args=["test-compose-1"]), headers=HTMX
    ).content.decode()
    assert "Writing the messages" in progress
    assert 'max="3" value="3"' in progress and "3 of 3 contacts" in progress


def test_numbers_typed_and_a_segment_count_together(operator_client, audience_of_three):
    data = {
        "recipients": "+33612345600\n+33699999999",
        "segments": [audience_of_three["everyone"].pk],
    }
    preview(operator_client, **data, name="All")
    progress = operator_client.get(
        reverse("campaigns:compose_progress", args=["test-compose-1"]), headers=HTMX
    ).content.decode()
    # Two numbers typed and three contacts read (one of them typed too: sent to once).
    assert "5 of 5 numbers and contacts" in progress


def test_with_nothing_to_count_the_bar_is_indeterminate(operator_client, account):
    empty = ContactList.objects.create(account=account, name="Empty")
    response = operator_client.post(COMPOSE, form(action="preview", lists=[empty.pk]))
    assert "No number to send to" in response.content.decode()
    progress = operator_client.get(
        reverse("campaigns:compose_progress", args=["test-compose-1"]), headers=HTMX
    ).content.decode()
    assert '<progress id="import-bar"></progress>' in progress
    assert "0 contacts" in progress
