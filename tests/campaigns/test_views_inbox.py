"""The inbox: replies grouped by number into conversations, answered inline."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Membership, Message, MessageEvent
from campaigns.views import inbox as inbox_views

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
