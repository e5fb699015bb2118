"""The inbox: replies grouped by number into conversations, answered inline."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Membership, Message, MessageEvent, Reply
from campaigns.services.inbound import receive_inbound
from campaigns.views import inbox as inbox_views
from providers.events import InboundSMS

from ..factories import (
    MembershipFactory,
    MessageFactory,
    OptOutFactory,
    ReplyFactory,
    SenderNameFactory,
)

pytestmark = pytest.mark.django_db

INBOX = reverse("campaigns:inbox")
NUMBER = "+33612349999"


def thread_url(number=NUMBER):
    return reverse("campaigns:thread", args=[number])


def reply_url(number=NUMBER):
    return reverse("campaigns:reply", args=[number])


@pytest.fixture
def conversation(account):
    """We wrote twice to NUMBER; it answered the first one, then wrote again."""
    now = timezone.now()
    first = MessageFactory(
        account=account,
        recipient=NUMBER,
        text="Appointment Monday 10:00",
        created_at=now - timedelta(hours=3),
        status=Message.Status.DELIVERED,
    )
    ReplyFactory(
        account=account,
        from_number=NUMBER,
        message=first,
        text="Can we make it 11?",
        received_at=now - timedelta(hours=2),
    )
    MessageFactory(
        account=account,
        recipient=NUMBER,
        text="11:00 is fine",
        created_at=now - timedelta(hours=1),
        status=Message.Status.DELIVERED,
    )
    ReplyFactory(account=account, from_number=NUMBER, text="Great, thanks", received_at=now)
    return first


def test_login_is_required(client):
    assert client.get(INBOX).status_code == 302


def test_replies_are_grouped_by_number_latest_conversation_first(operator_client, account):
    now = timezone.now()
    ReplyFactory(
        account=account,
        from_number="+33612340001",
        text="old one",
        received_at=now - timedelta(days=2),
    )
    ReplyFactory(
        account=account,
        from_number="+33612340002",
        text="middle",
        received_at=now - timedelta(days=1),
    )
    ReplyFactory(account=account, from_number="+33612340001", text="newest from 1", received_at=now)
    ReplyFactory(from_number="+33612340003", text="Another account's")
    response = operator_client.get(INBOX)
    threads = response.context["page"]["threads"]
    assert [t["number"] for t in threads] == ["+33612340001", "+33612340002"]
    assert threads[0]["latest"].text == "newest from 1"
    assert threads[0]["replies"] == 2
    page = response.content.decode()
    assert "Another account" not in page
    # The latest conversation is open beside the list.
    assert "Conversation with +33612340001" in page


def test_conversation_pages_never_repeat_a_number(account, monkeypatch):
    monkeypatch.setattr(inbox_views, "THREADS_PER_PAGE", 3)
    monkeypatch.setattr(inbox_views, "SCAN", 2)
    now = timezone.now()
    # Numbers 0..6, each replying twice, interleaved in time.
    for minute in range(14):
        ReplyFactory(
            account=account,
            from_number=f"+3361234000{minute % 7}",
            received_at=now - timedelta(minutes=minute),
        )
    seen, before = [], None
    while True:
        page = inbox_views.conversations(account, before)
        seen += [t["number"] for t in page["threads"]]
        if page["older"] is None:
            break
        before = account.replies.get(pk=page["older"])
    assert seen == [f"+3361234000{i}" for i in range(7)]


def test_a_conversation_shows_both_sides_in_time_order(operator_client, account, conversation):
    response = operator_client.get(thread_url())
    page = response.content.decode()
    page = page[page.index('id="thread"') :]  # the conversation, not the list beside it
    texts = ["Appointment Monday 10:00", "Can we make it 11?", "11:00 is fine", "Great, thanks"]
    positions = [page.index(text) for text in texts]
    assert positions == sorted(positions)
    # The reply links the message it answers.
    assert reverse("campaigns:message_detail", args=[conversation.pk]) in page
    assert 'hx-trigger="every 10s"' in page
    fragment = operator_client.get(
        thread_url(), {"part": "entries"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in fragment and "Great, thanks" in fragment


def test_answering_inline_queues_a_message_through_compose(
    operator_client, operator, account, conversation
):
    SenderNameFactory(account=account, name="Clinic")
    Message.objects.filter(pk=conversation.pk).update(sender="Clinic")
    response = operator_client.post(
        reply_url(), {"text": "See you at 11"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert f"Answer to {NUMBER} queued." in fragment
    assert "See you at 11" in fragment
    message = Message.objects.get(text="See you at 11")
    assert message.account == account
    assert message.recipient == NUMBER
    assert message.status == Message.Status.QUEUED
    assert message.sender == "Clinic"  # the conversation's sender name, still approved
    assert message.created_by == operator
    assert MessageEvent.objects.filter(message=message, to_status="queued").exists()


def test_answering_without_htmx_redirects_to_the_conversation(
    operator_client, account, conversation
):
    response = operator_client.post(reply_url(), {"text": "Plain form"})
    assert response.status_code == 302
    assert response.url == thread_url()
    assert Message.objects.filter(text="Plain form", sender="").exists()


def test_an_empty_answer_is_refused_next_to_the_field(operator_client, account, conversation):
    before = Message.objects.count()
    response = operator_client.post(reply_url(), {"text": "   "}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "Write the answer to send." in page
    assert 'aria-invalid="true"' in page
    assert Message.objects.count() == before


def test_an_opted_out_number_is_flagged(operator_client, account, conversation):
    OptOutFactory(account=account, number=NUMBER)
    assert "This number opted out" in operator_client.get(thread_url()).content.decode()


def test_viewers_read_but_cannot_answer(client, account, conversation):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.VIEWER).user)
    page = client.get(thread_url()).content.decode()
    assert "Great, thanks" in page
    assert "Send answer" not in page
    before = Message.objects.count()
    response = client.post(reply_url(), {"text": "Sneaky"})
    assert response.status_code == 403
    assert Message.objects.count() == before


def test_admins_can_answer(client, account, conversation):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.ADMIN).user)
    assert client.post(reply_url(), {"text": "From the admin"}).status_code == 302
    assert Message.objects.filter(text="From the admin").exists()


def test_another_accounts_conversation_is_404(client, account, conversation, other_account_user):
    client.force_login(other_account_user)
    assert client.get(thread_url()).status_code == 404
    assert client.post(reply_url(), {"text": "Hijack"}).status_code == 404
    assert not Message.objects.filter(text="Hijack").exists()
    assert client.get(INBOX).context["page"]["threads"] == []


def test_no_conversation_with_a_number_never_written_to(operator_client, account):
    assert operator_client.get(thread_url("+33612345678")).status_code == 404
    assert operator_client.get(thread_url("not-a-number")).status_code == 404
    assert operator_client.post(reply_url("+33612345678"), {"text": "x"}).status_code == 404


def test_a_conversations_badges_poll_every_5s_until_they_may_wait_for_good(
    operator_client, account, conversation
):
    waiting = MessageFactory(account=account, recipient=NUMBER, status=Message.Status.SENT)
    stale = MessageFactory(account=account, recipient=NUMBER, status=Message.Status.UNKNOWN)
    Message.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    page = operator_client.get(thread_url()).content.decode()

    def badge(message: Message) -> str:
        start = page.index(f'id="status-{message.pk}"')
        return page[start : page.index("</span>", start)]

    assert 'hx-trigger="every 5s"' in badge(waiting)
    assert "hx-trigger" not in badge(stale)
    assert "hx-trigger" not in badge(conversation)  # delivered


# --- replies from an unknown number (Vortext's own example names no number) --------------------
UNKNOWN = reverse("campaigns:thread", args=["unknown"])


@pytest.fixture
def unknown_reply(account, conversation):
    """A reply whose provider named neither the number nor the message, the latest one."""
    return ReplyFactory(
        account=account,
        from_number="",
        text="Response of your customer",
        received_at=timezone.now().replace(microsecond=0) + timedelta(minutes=1),
    )


def test_a_reply_from_an_unknown_number_is_its_own_conversation(operator_client, unknown_reply):
    response = operator_client.get(INBOX)
    threads = response.context["page"]["threads"]
    assert [(t["number"], t["conversation"]) for t in threads] == [
        ("", "unknown"),
        (NUMBER, NUMBER),
    ]
    page = response.content.decode()
    assert "<strong>Unknown number</strong>" in page
    assert f'href="{UNKNOWN}"' in page
    assert "Conversation with an unknown number" in page  # the latest, open beside the list


def test_the_unknown_number_conversation_shows_each_reply_with_its_time(
    operator_client, account, unknown_reply
):
    page = operator_client.get(UNKNOWN).content.decode()
    page = page[page.index('id="thread"') :]
    assert "An unknown number replied" in page
    assert "Response of your customer" in page
    local = unknown_reply.received_at.astimezone(ZoneInfo(account.timezone))  # as staff see it
    assert f'datetime="{local.isoformat()}"' in page
    assert local.strftime("%Y-%m-%d %H:%M") in page
    assert "cannot be answered" in page and "opts no one out" in page
    assert "Send answer" not in page  # there is no number to answer
    assert "Appointment Monday" not in page  # the messages to known numbers stay in theirs
    fragment = operator_client.get(
        UNKNOWN, {"part": "entries"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Response of your customer" in fragment and "<html" not in fragment


def test_an_unknown_number_cannot_be_answered(operator_client, unknown_reply):
    before = Message.objects.count()
    response = operator_client.post(reverse("campaigns:reply", args=["unknown"]), {"text": "Hi"})
    assert response.status_code == 404
    assert Message.objects.count() == before


def test_no_unknown_number_conversation_without_such_a_reply(operator_client, conversation):
    assert operator_client.get(UNKNOWN).status_code == 404


def test_another_accounts_unknown_number_replies_stay_hidden(
    client, unknown_reply, other_account_user
):
    client.force_login(other_account_user)
    assert client.get(UNKNOWN).status_code == 404


def test_the_dashboard_links_a_reply_from_an_unknown_number(operator_client, unknown_reply):
    response = operator_client.get(reverse("campaigns:dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<a href="{UNKNOWN}">Unknown number</a>' in page


# --- unread state: per account, marked read when a conversation is shown ----------------------
OTHER = "+33612340002"


def unread(account, number=NUMBER) -> int:
    return Reply.objects.filter(account=account, from_number=number, read_at__isnull=True).count()


def test_a_reply_arriving_through_a_webhook_is_unread(account, provider_account):
    message = MessageFactory(
        account=account,
        recipient=NUMBER,
        provider_account=provider_account,
        provider_message_id="sim-7",
        status=Message.Status.DELIVERED,
    )
    reply = receive_inbound(
        provider_account,
        InboundSMS(from_number=NUMBER, to_number="Clinic", text="Yes", in_reply_to="sim-7"),
    )
    assert reply.message == message
    assert reply.read_at is None
    assert account.replies.unread_conversations() == 1


def test_unread_conversations_are_marked_in_the_list_the_heading_and_the_nav(
    operator_client, account, conversation
):
    # NUMBER's conversation is older; OTHER's, the latest, opens beside the list and is read.
    ReplyFactory(account=account, from_number=OTHER, text="Is it still on?")
    ReplyFactory(
        account=account,
        from_number="+33612340003",
        text="Hello?",
        received_at=timezone.now() - timedelta(days=1),
    )
    page = operator_client.get(INBOX).content.decode()
    assert unread(account, OTHER) == 0  # shown: read
    assert unread(account) == 2  # NUMBER's two replies were not opened
    heading = page[page.index("<h1>") : page.index("</h1>")]
    assert "2 unread" in heading
    nav = page[page.index('<nav aria-label="Main"') : page.index("</nav>")]
    assert '<span class="nav-badge">2<span class="visually-hidden"> unread</span></span>' in nav
    listing = page[page.index('id="threads"') :]

    def link(number):  # the conversation's link in the list, up to its end
        start = listing.index(f'<a href="{thread_url(number)}"')
        return listing[start : listing.index("</a>", start)]

    assert 'class="unread"' in link(NUMBER) and "2 unread" in link(NUMBER)
    assert 'class="unread"' not in link(OTHER) and "unread" not in link(OTHER)
    assert 'class="unread"' in link("+33612340003")


def test_opening_a_conversation_marks_it_read_for_the_whole_account(
    client, operator_client, account, conversation
):
    assert unread(account) == 2
    page = operator_client.get(thread_url()).content.decode()
    thread = page[page.index('id="thread"') :]
    assert thread.count(">New</span>") == 2  # shown as new this once
    assert unread(account) == 0
    first = set(Reply.objects.filter(account=account).values_list("read_at", flat=True))
    # Idempotent: opening it again changes nothing, and a colleague finds it read.
    client.force_login(MembershipFactory(account=account, role=Membership.Role.VIEWER).user)
    page = client.get(thread_url()).content.decode()
    assert ">New</span>" not in page
    assert set(Reply.objects.filter(account=account).values_list("read_at", flat=True)) == first
    assert "nav-badge" not in page


def test_a_prefetch_does_not_mark_a_conversation_read(operator_client, account, conversation):
    for header in ({"Sec-Purpose": "prefetch"}, {"Purpose": "prefetch"}, {"X-Moz": "prefetch"}):
        assert operator_client.get(thread_url(), headers=header).status_code == 200
    assert unread(account) == 2


def test_a_reply_arriving_after_the_conversation_was_read_stays_unread(
    rf, account, conversation, operator
):
    entries = inbox_views.thread_entries(account, NUMBER)
    late = ReplyFactory(account=account, from_number=NUMBER, text="One more thing")
    request = rf.get(thread_url())
    assert inbox_views.mark_read(request, account, NUMBER, entries) == 2
    late.refresh_from_db()
    assert late.read_at is None


def test_reading_one_account_leaves_another_accounts_replies_unread(
    operator_client, account, conversation
):
    theirs = ReplyFactory(from_number=NUMBER, text="Another account's")
    operator_client.get(thread_url())
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_nav_badge_shows_on_every_page_and_stops_at_99(operator_client, account):
    now = timezone.now()
    Reply.objects.bulk_create(
        Reply(account=account, from_number=f"+336123{n:05d}", text="hi", received_at=now)
        for n in range(101)
    )
    page = operator_client.get(reverse("campaigns:message_list")).content.decode()
    assert '<span class="nav-badge">99+<span class="visually-hidden"> unread</span>' in page
    Reply.objects.filter(account=account).exclude(from_number="+33612300000").update(read_at=now)
    page = operator_client.get(reverse("campaigns:dashboard")).content.decode()
    assert '<span class="nav-badge">1<span class="visually-hidden"> unread</span>' in page


def test_replies_from_before_the_migration_count_as_read(account, conversation):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("campaigns.migrations.0014_reply_read_state")
    migration.replies_so_far_are_read(apps, None)
    assert unread(account) == 0
    reply = Reply.objects.filter(account=account).first()
    assert reply.read_at == reply.received_at


# --- search ------------------------------------------------------------------------------------
@pytest.fixture
def french(account):
    account.country = "FR"
    account.save(update_fields=["country"])
    return account


def results(client, q, **headers) -> str:
    page = client.get(INBOX, {"q": q}, headers=headers).content.decode()
    if headers:
        return page
    start = page.index('id="thread-results"')
    return page[start : page.index("</section>", start)]


@pytest.mark.parametrize(
    "typed", ["06 12 34 99 99", "0612349999", "+33 6 12 34 99 99", "0033612349999", "+33612349999"]
)
def test_search_finds_a_conversation_by_its_number_national_or_international(
    operator_client, french, conversation, typed
):
    ReplyFactory(account=french, from_number=OTHER, text="Not this one")
    found = results(operator_client, typed)
    assert f"Conversation with {NUMBER}:" in found
    assert f'href="{thread_url()}"' in found
    assert thread_url(OTHER) not in found


def test_search_by_part_of_a_number(operator_client, french, conversation):
    ReplyFactory(account=french, from_number=OTHER, text="Not this one")
    found = results(operator_client, "9999")
    assert f'href="{thread_url()}"' in found and thread_url(OTHER) not in found
    # A national beginning: 06 12 34 is +33 6 12 34…
    found = results(operator_client, "06 12 34 99")
    assert f'href="{thread_url()}"' in found and thread_url(OTHER) not in found


def test_search_by_the_text_of_replies_and_messages(operator_client, account, conversation):
    MessageFactory(account=account, recipient=OTHER, text="Your parcel arrives on MONDAY")
    ReplyFactory(account=account, from_number="+33612340003", text="Nothing to see")
    found = results(operator_client, "monday")
    # A reply matches (NUMBER's "Appointment Monday" was our message to it) and OTHER's message.
    assert f'href="{thread_url()}"' in found and f'href="{thread_url(OTHER)}"' in found
    assert thread_url("+33612340003") not in found
    assert "2 conversations match “monday”" in found
    assert "<mark>MONDAY</mark>" in found and "You wrote:" in found
    found = results(operator_client, "make it 11")
    assert "1 conversation matches" in found
    assert "Can we <mark>make it 11</mark>?" in found


def test_a_search_without_results_says_so_and_how_to_search(operator_client, account, conversation):
    found = results(operator_client, "zebra")
    assert "No conversation matches “zebra”." in found
    assert "Show all conversations" in found
    assert "Conversation with" not in found  # no conversation is opened on a search
    found = results(operator_client, "+33 6 12 34 56 78")
    assert "No message to or reply from +33612345678." in found


def test_search_is_an_htmx_fragment_and_a_plain_get_page(operator_client, account, conversation):
    fragment = results(operator_client, "Great", **{"HX-Request": "true"})
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="thread-results"')
    assert f'href="{thread_url()}"' in fragment
    page = operator_client.get(INBOX, {"q": "Great"}).content.decode()
    assert "<html" in page and 'value="Great"' in page
    assert 'hx-get="/inbox/"' in page and 'hx-push-url="true"' in page


def test_search_stays_in_the_account(operator_client, account, conversation):
    ReplyFactory(from_number="+33612340009", text="Secret plans")
    assert "No conversation matches" in results(operator_client, "Secret plans")
    assert "No message to or reply from" in results(operator_client, "+33612340009")


@pytest.mark.parametrize("q", ["x" * 101, "\x00", "a\x00b", "%", "_", "0" * 40, "+", "((("])
def test_odd_searches_get_an_answer_never_an_error(operator_client, account, conversation, q):
    response = operator_client.get(INBOX, {"q": q})
    assert response.status_code == 200
    if len(q) > 100:
        assert "Search with 100 characters at most." in response.content.decode()


def test_a_text_search_reads_only_the_latest_replies_and_messages(
    operator_client, account, conversation, monkeypatch
):
    monkeypatch.setattr(inbox_views, "SEARCH_DEPTH", 2)
    # "Appointment Monday" is the oldest message of three; "Can we make it 11" the oldest reply.
    MessageFactory(account=account, recipient=NUMBER, text="Third")
    ReplyFactory(account=account, from_number=NUMBER, text="Third reply")
    found = results(operator_client, "Monday")
    assert "No conversation matches" in found
    assert "Only the latest 2 replies and 2 messages were searched." in found


# --- the answer's counter ----------------------------------------------------------------------
def test_the_answer_box_counts_characters_and_segments(operator_client, account, conversation):
    page = operator_client.get(thread_url()).content.decode()
    form = page[page.index('class="reply-form"') :]
    assert f'hx-post="{reverse("campaigns:text_counter")}"' in form
    assert 'aria-describedby="text-counter"' in form
    assert "0 characters" in form and "0 SMS" in form
    # A refused answer keeps its text and its count (161 GSM-7 characters: two SMS).
    response = operator_client.post(reply_url(), {"text": "x" * 1531})
    form = response.content.decode()
    form = form[form.index('class="reply-form"') :]
    assert "1,531 characters" in form or "1531 characters" in form
    counted = operator_client.post(reverse("campaigns:text_counter"), {"text": "é" * 161})
    assert "<strong>2 SMS</strong>" in counted.content.decode()
