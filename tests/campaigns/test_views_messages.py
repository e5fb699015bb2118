"""The messages list (`/messages/`: filters, keyset pages, live badges) and the detail page."""

import re
import zoneinfo
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Membership, Message, MessageEvent
from campaigns.views.messages import PAGE_SIZE

from ..factories import (
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    ProviderAccountFactory,
    ReplyFactory,
)

pytestmark = pytest.mark.django_db

Status = Message.Status
LIST = reverse("campaigns:message_list")


def shown(response) -> list[int]:
    """The ids of the messages listed, in page order."""
    return [m.pk for m in response.context["page"]["rows"]]


def test_login_is_required(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_lists_this_accounts_messages_newest_first(operator_client, account):
    first = MessageFactory(account=account, text="First one")
    second = MessageFactory(account=account, text="Second one")
    MessageFactory(text="Not ours")
    response = operator_client.get(LIST)
    assert shown(response) == [second.pk, first.pk]
    page = response.content.decode()
    assert "Not ours" not in page
    assert reverse("campaigns:message_detail", args=[first.pk]) in page
    assert "<caption>" in page


def test_keyset_pages_never_offset_nor_count(operator_client, account):
    messages = MessageFactory.create_batch(PAGE_SIZE * 2 + 5, account=account)
    newest_first = [m.pk for m in reversed(messages)]
    with CaptureQueriesContext(connection) as queries:
        first = operator_client.get(LIST)
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql
    assert shown(first) == newest_first[:PAGE_SIZE]
    older = first.context["page"]["older"]
    assert f"after={older}" in first.content.decode()
    second = operator_client.get(LIST, {"after": older})
    assert shown(second) == newest_first[PAGE_SIZE : PAGE_SIZE * 2]
    third = operator_client.get(LIST, {"after": second.context["page"]["older"]})
    assert shown(third) == newest_first[PAGE_SIZE * 2 :]
    assert third.context["page"]["older"] is None
    # And back: the newer page of the third is the second.
    back = operator_client.get(LIST, {"before": third.context["page"]["newer"]})
    assert shown(back) == shown(second)


def test_with_a_date_filter_pages_follow_the_time_written(operator_client, account, monkeypatch):
    """With dates, pages come from the (account, created_at, id) index: newest written first,
    even when ids and times disagree (a message imported with an earlier time)."""
    from campaigns.views import messages as views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    now = timezone.now()
    ages = [5, 1, 3, 2, 4]  # hours ago, in id order
    made = [
        MessageFactory(account=account, created_at=now - timedelta(hours=hours)) for hours in ages
    ]
    by_time = [m.pk for m in sorted(made, key=lambda m: m.created_at, reverse=True)]
    day = {
        "date_from": (now - timedelta(days=2)).date(),
        "date_to": (now + timedelta(days=1)).date(),
    }
    seen, after = [], None
    while True:
        response = operator_client.get(LIST, {**day, **({"after": after} if after else {})})
        seen += shown(response)
        after = response.context["page"]["older"]
        if after is None:
            break
    assert seen == by_time
    last = operator_client.get(LIST, {**day, "after": by_time[3]})
    back = operator_client.get(LIST, {**day, "before": last.context["page"]["newer"]})
    assert shown(back) == by_time[2:4]


def test_a_broken_page_link_says_so(operator_client, account):
    MessageFactory(account=account)
    page = operator_client.get(LIST, {"after": "abc"}).content.decode()
    assert "That page link is not valid" in page


def test_filters(operator_client, account, provider_account):
    backup = ProviderAccountFactory(name="Backup")
    from campaigns.models import RouteEntry

    RouteEntry.objects.create(account=account, provider_account=backup, position=1)
    reminders = CategoryFactory(account=account, name="Reminders")
    spring = Campaign.objects.create(account=account, name="Spring sale")
    now = timezone.now()
    failed = MessageFactory(account=account, status=Status.FAILED, recipient="+33612340001")
    in_campaign = MessageFactory(account=account, campaign=spring, recipient="+33612340002")
    categorised = MessageFactory(account=account, category=reminders, recipient="+33612340003")
    via_backup = MessageFactory(account=account, provider_account=backup, recipient="+33612340004")
    old = MessageFactory(account=account, created_at=now - timedelta(days=40))
    MessageFactory(status=Status.FAILED, recipient="+33612340001")  # another account

    def ids(**params):
        response = operator_client.get(LIST, params)
        assert response.status_code == 200
        return set(shown(response))

    assert ids(status="failed") == {failed.pk}
    assert ids(campaign=spring.pk) == {in_campaign.pk}
    assert ids(category=reminders.pk) == {categorised.pk}
    assert ids(provider=backup.pk) == {via_backup.pk}
    assert ids(number="+33 6 12 34 00 02") == {in_campaign.pk}
    assert ids(number="0033612340003") == {categorised.pk}
    # Days are the account's (Europe/Paris): not UTC's, from 22:00 or 23:00 UTC on.
    old_day = timezone.localtime(old.created_at, zoneinfo.ZoneInfo(account.timezone)).date()
    assert ids(date_from=old_day, date_to=old_day) == {old.pk}
    assert old.pk not in ids(date_from=(now - timedelta(days=1)).date())
    assert ids(status="failed", number="+33612340002") == set()


def test_filter_errors_are_shown_next_to_the_field(operator_client, account):
    MessageFactory(account=account)
    response = operator_client.get(
        LIST, {"number": "12", "date_from": "2026-02-10", "date_to": "2026-02-01"}
    )
    page = response.content.decode()
    assert shown(response) == []
    assert "is not a phone number" in page
    assert 'id="id_number_error"' in page
    assert 'aria-invalid="true"' in page
    assert "Must be on or after" in page
    # Another account's campaign is not a choice.
    foreign = Campaign.objects.create(account=MessageFactory().account, name="Theirs")
    response = operator_client.get(LIST, {"campaign": foreign.pk})
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize(
    "days",
    [
        {"date_from": "0001-01-01"},
        {"date_to": "9999-12-31"},
        {"date_from": "1999-12-31", "date_to": "2100-01-01"},
    ],
)
def test_days_out_of_range_are_a_form_error_not_a_500(operator_client, account, days):
    MessageFactory(account=account)
    response = operator_client.get(LIST, days)
    assert response.status_code == 200
    assert shown(response) == []
    page = response.content.decode()
    for name in days:
        assert f'id="id_{name}_error"' in page
    assert page.count("Choose a day from 2000 to 2099.") == len(days)


def test_htmx_gets_the_results_alone(operator_client, account):
    MessageFactory(account=account, text="Fragment please")
    fragment = operator_client.get(LIST, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment
    assert 'id="message-browser"' in fragment
    assert "Fragment please" in fragment


HX = {"HX-Request": "true"}


def badge(page: str, message: Message) -> str:
    start = page.index(f'id="status-{message.pk}"')
    return page[start : page.index("</span>", start)]


def poller(page: str) -> str:
    """The messages list's one poller (the badges of the list do not poll one by one)."""
    match = re.search(
        r'<div id="message-poller" hidden hx-get="([^"]+)" hx-trigger="([^"]+)"', page
    )
    return f"{match.group(1)} {match.group(2)}" if match else ""


def test_one_poller_watches_the_badges_not_final(operator_client, account):
    waiting = MessageFactory(account=account, status=Status.SENT)
    done = MessageFactory(account=account, status=Status.DELIVERED)
    page = operator_client.get(LIST).content.decode()
    assert "hx-trigger" not in badge(page, waiting) and "hx-trigger" not in badge(page, done)
    watching = poller(page)
    assert f"s={waiting.pk}.sent&amp;" in watching and f"{done.pk}." not in watching
    assert watching.endswith("every 5s")  # a delivery report is awaited
    queued = MessageFactory(account=account, status=Status.QUEUED)
    page = operator_client.get(LIST).content.decode()
    assert poller(page).endswith("every 1s")  # something is on its way: every second
    Message.objects.filter(pk__in=[waiting.pk, queued.pk]).update(status=Status.DELIVERED)
    assert poller(operator_client.get(LIST).content.decode()) == ""  # all final: no polling


def test_the_poll_answers_204_until_a_status_changes_then_only_the_changed_badges(
    operator_client, account
):
    first = MessageFactory(account=account, status=Status.QUEUED)
    second = MessageFactory(account=account, status=Status.QUEUED)
    url = reverse("campaigns:message_live")
    now = int(timezone.now().timestamp())
    query = f"?s={first.pk}.queued,{second.pk}.queued&p=1&t={now}"
    assert operator_client.get(url + query, headers=HX).status_code == 204
    Message.objects.filter(pk=first.pk).update(status=Status.SENDING)
    answer = operator_client.get(url + query, headers=HX)
    body = answer.content.decode()
    assert answer.status_code == 200
    assert f'id="status-{first.pk}" data-status="sending" hx-swap-oob="true"' in body
    assert f'id="status-{second.pk}"' not in body  # unchanged: not sent again
    assert f"s={first.pk}.sending,{second.pk}.queued&amp;" in poller(body)
    # Quiet for 10 s: the poller slows down to every 3 s (one answer that says so).
    quiet = f"?s={first.pk}.sending,{second.pk}.queued&p=1&t={now - 11}"
    assert poller(operator_client.get(url + quiet, headers=HX).content.decode()).endswith(
        "every 3s"
    )
    assert operator_client.get(url + quiet.replace("p=1", "p=3"), headers=HX).status_code == 204


def test_the_poll_is_one_query_and_sees_only_this_accounts_messages(
    operator_client, account, other_account_user, django_assert_max_num_queries
):
    mine = MessageFactory(account=account, status=Status.QUEUED)
    theirs = MessageFactory(account=other_account_user.memberships.get().account)
    url = reverse("campaigns:message_live")
    now = int(timezone.now().timestamp())
    operator_client.get(url + f"?s={mine.pk}.queued&p=1&t={now}", headers=HX)  # warm up
    with django_assert_max_num_queries(4):  # session, user, membership; then the messages
        answer = operator_client.get(url + f"?s={mine.pk}.queued&p=1&t={now}", headers=HX)
    assert answer.status_code == 204
    body = operator_client.get(url + f"?s={theirs.pk}.queued&p=1&t={now}", headers=HX)
    assert str(theirs.pk) not in body.content.decode()


@pytest.mark.parametrize(
    "query", ["?s=abc", "?s=1.nonsense,2", "?s=" + ",".join(["9" * 30] * 500), "?p=x&t=-1", ""]
)
def test_a_mangled_poll_gets_an_answer_not_an_error(operator_client, query):
    answer = operator_client.get(reverse("campaigns:message_live") + query, headers=HX)
    assert answer.status_code in (200, 204)


@pytest.mark.parametrize("status", [Status.SENT, Status.UNKNOWN])
def test_a_badge_that_may_wait_for_good_stops_polling_after_ten_minutes(
    operator_client, account, status
):
    """A delivery report may never come, and an unknown outcome may stay unknown: their badges
    are watched for 10 minutes after the last change, then the page stops asking."""
    recent = MessageFactory(account=account, status=status)
    old = MessageFactory(account=account, status=status)
    queued_long_ago = MessageFactory(account=account, status=Status.QUEUED)
    long_ago = timezone.now() - timedelta(minutes=11)
    Message.objects.filter(pk__in=[old.pk, queued_long_ago.pk]).update(updated_at=long_ago)
    Message.objects.filter(pk=recent.pk).update(updated_at=timezone.now() - timedelta(minutes=9))
    page = operator_client.get(LIST).content.decode()
    watching = poller(page)
    assert f"{recent.pk}.{status}" in watching and f"{old.pk}." not in watching
    # Queued is not a state to wait in for long: it stays watched.
    assert f"{queued_long_ago.pk}.queued" in watching
    # A badge elsewhere (inbox, contact) polls itself and stops the same way.
    url = reverse("campaigns:message_status", args=[old.pk])
    assert "hx-trigger" not in operator_client.get(url).content.decode()
    url = reverse("campaigns:message_status", args=[recent.pk])
    assert 'hx-trigger="every 5s"' in operator_client.get(url).content.decode()
    # Asked with the status it shows, the badge gets 204: nothing to swap.
    assert operator_client.get(url + f"?v={status}", headers=HX).status_code == 204


def test_the_message_detail_page_stays_live(operator_client, account):
    message = MessageFactory(account=account, status=Status.SENT)
    Message.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    url = reverse("campaigns:message_detail", args=[message.pk])
    page = operator_client.get(url).content.decode()
    assert 'hx-trigger="every 30s"' in page  # a report may come late: it still listens
    poll = (
        re.search(r'hx-get="([^"]+)" hx-trigger="every 30s"', page).group(1).replace("&amp;", "&")
    )
    assert operator_client.get(poll, headers=HX).status_code == 204  # nothing changed
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED, updated_at=timezone.now())
    fragment = operator_client.get(poll, headers=HX).content.decode()
    assert 'id="message-status" data-status="delivered"' in fragment
    assert "hx-trigger" not in fragment  # final: it stops


def test_detail_shows_every_event_the_raw_answers_and_replies(operator_client, account):
    message = MessageFactory(account=account, status=Status.DELIVERED, recipient="+33612349999")
    at = timezone.now() - timedelta(minutes=5)
    MessageEvent.objects.create(
        message=message, at=at, to_status="queued", source="staff", detail="Queued to send now."
    )
    MessageEvent.objects.create(
        message=message,
        at=at + timedelta(seconds=1),
        from_status="queued",
        to_status="sent",
        source="dispatch",
        detail="Accepted by Simulator.",
        payload={"id": "sim-123", "status": "accepted"},
    )
    MessageEvent.objects.create(
        message=message,
        at=at + timedelta(seconds=2),
        from_status="sent",
        to_status="delivered",
        source="webhook",
        detail="Delivery report from Simulator: delivered.",
        payload={"id": "sim-123", "status": "DELIVRD", "operator": "Orange"},
    )
    ReplyFactory(
        account=account,
        message=message,
        from_number=message.recipient,
        text="Thanks!",
        received_at=at + timedelta(seconds=3),
        raw={"from": "33612349999"},
    )
    page = operator_client.get(
        reverse("campaigns:message_detail", args=[message.pk])
    ).content.decode()
    assert "Queued to send now." in page
    assert "queued → sent" in page and "sent → delivered" in page
    assert "Provider&#x27;s answer" in page or "Provider's answer" in page
    assert "Delivery report as received" in page
    assert "DELIVRD" in page and "Orange" in page
    assert "Thanks!" in page
    assert page.index("Queued to send now.") < page.index("DELIVRD") < page.index("Thanks!")
    assert reverse("campaigns:thread", args=[message.recipient]) in page


def test_another_accounts_message_is_404_everywhere(client, account, other_account_user):
    message = MessageFactory(account=account)
    client.force_login(other_account_user)
    for name in ("campaigns:message_detail", "campaigns:message_status"):
        assert client.get(reverse(name, args=[message.pk])).status_code == 404
    assert message.pk not in shown(client.get(LIST))


def test_a_message_of_another_of_my_accounts_is_404_until_i_switch(operator_client, operator):
    second = MembershipFactory(user=operator, account__name="Zeta").account  # Acme comes first
    message = MessageFactory(account=second)
    url = reverse("campaigns:message_detail", args=[message.pk])
    assert operator_client.get(url).status_code == 404
    operator_client.post(reverse("campaigns:switch_account"), {"account": second.pk})
    assert operator_client.get(url).status_code == 200


def test_every_role_reads_messages(client, account):
    message = MessageFactory(account=account)
    for role in Membership.Role:
        client.force_login(MembershipFactory(account=account, role=role).user)
        assert client.get(LIST).status_code == 200
        assert client.get(reverse("campaigns:message_detail", args=[message.pk])).status_code == 200
