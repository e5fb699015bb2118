"""Campaign control: pause, resume, cancel, the counts staff see, and the admin actions."""

import itertools
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from campaigns import tasks
from campaigns.audit.models import AuditEntry
from campaigns.models import Campaign, Forward, Message, MessageEvent
from campaigns.services import bulk, campaign_control, compose
from campaigns.services.campaign_control import CampaignStateError
from campaigns.services.dispatch.claim import claim_batch

from ..factories import AccountFactory, MessageFactory

pytestmark = pytest.mark.django_db

S = Message.Status
CS = Campaign.Status
WAITING = [S.SCHEDULED, S.QUEUED, S.RETRYING]
UNTOUCHED = [S.SENDING, S.SENT, S.DELIVERED, S.FAILED, S.UNKNOWN]
NUMBERS = itertools.count()


def make_campaign(status: str = CS.RUNNING, **kwargs) -> Campaign:
    account = kwargs.pop("account", None) or AccountFactory()
    return Campaign.objects.create(
        account=account, name=kwargs.pop("name", "Spring sale"), status=status, **kwargs
    )


def add_messages(campaign: Campaign, *statuses: str) -> list[Message]:
    """One message per status, each to its own number (a campaign sends once to a number)."""
    return [
        MessageFactory(
            campaign=campaign,
            account=campaign.account,
            status=status,
            recipient=f"+3361234{next(NUMBERS):04d}",
        )
        for status in statuses
    ]


def statuses(campaign: Campaign) -> dict[int, str]:
    return dict(Message.objects.filter(campaign=campaign).values_list("id", "status"))


@pytest.fixture
def nudges(monkeypatch) -> list[bool]:
    """The dispatcher nudges, recorded instead of sent to a broker."""
    calls: list[bool] = []
    monkeypatch.setattr(compose, "nudge_dispatcher", lambda: calls.append(True))
    return calls


# --- pause -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [CS.SCHEDULED, CS.RUNNING])
def test_pause_stops_the_campaign_and_leaves_its_messages_waiting(status):
    campaign = make_campaign(status)
    add_messages(campaign, *WAITING, S.SENDING, S.SENT)
    before = statuses(campaign)

    assert campaign_control.pause(campaign) is campaign

    assert campaign.status == CS.PAUSED
    campaign.refresh_from_db()
    assert campaign.status == CS.PAUSED
    assert statuses(campaign) == before
    assert not MessageEvent.objects.exists()


@pytest.mark.parametrize("status", [CS.DRAFT, CS.PAUSED, CS.COMPLETED, CS.CANCELED])
def test_pause_is_refused_unless_scheduled_or_running(status):
    campaign = make_campaign(status)
    with pytest.raises(
        CampaignStateError, match="Only scheduled or running campaigns can be paused"
    ):
        campaign_control.pause(campaign)
    campaign.refresh_from_db()
    assert campaign.status == status


def test_pause_reads_the_status_in_the_database_not_a_stale_object():
    campaign = make_campaign(CS.RUNNING)
    stale = Campaign.objects.get(pk=campaign.pk)
    campaign_control.cancel(campaign)
    with pytest.raises(CampaignStateError, match="cannot be paused: its status is canceled"):
        campaign_control.pause(stale)


# --- resume ----------------------------------------------------------------------------------


def test_resume_runs_the_campaign_again_and_nudges_the_dispatcher(
    nudges, django_capture_on_commit_callbacks
):
    campaign = make_campaign(CS.PAUSED)
    add_messages(campaign, S.QUEUED, S.RETRYING)
    before = statuses(campaign)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_control.resume(campaign)

    campaign.refresh_from_db()
    assert campaign.status == CS.RUNNING
    assert statuses(campaign) == before
    assert nudges == [True]


def test_resume_with_nothing_left_to_send_completes_the_campaign(nudges):
    campaign = make_campaign(CS.PAUSED)
    add_messages(campaign, S.SENT, S.DELIVERED)
    campaign_control.resume(campaign)
    campaign.refresh_from_db()
    assert campaign.status == CS.COMPLETED


@pytest.mark.parametrize("status", [CS.DRAFT, CS.SCHEDULED, CS.RUNNING, CS.COMPLETED, CS.CANCELED])
def test_resume_is_refused_unless_paused(status, nudges, django_capture_on_commit_callbacks):
    campaign = make_campaign(status)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(CampaignStateError, match="Only paused campaigns can be resumed"),
    ):
        campaign_control.resume(campaign)
    campaign.refresh_from_db()
    assert campaign.status == status
    assert nudges == []


# --- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [CS.DRAFT, CS.SCHEDULED, CS.RUNNING, CS.PAUSED])
def test_cancel_cancels_exactly_the_waiting_messages(status):
    campaign = make_campaign(status)
    waiting = add_messages(campaign, *WAITING, S.QUEUED)
    others = add_messages(campaign, *UNTOUCHED)
    elsewhere = add_messages(make_campaign(CS.RUNNING, name="Other"), S.QUEUED)
    loose = MessageFactory(account=campaign.account, status=S.QUEUED)  # no campaign
    before = statuses(campaign)

    assert campaign_control.cancel(campaign) == len(waiting)

    campaign.refresh_from_db()
    assert campaign.status == CS.CANCELED
    after = statuses(campaign)
    assert {m.pk for m in waiting} == {pk for pk, s in after.items() if s == S.CANCELED}
    for message in others:
        assert after[message.pk] == before[message.pk]
    for message in [*elsewhere, loose]:
        message.refresh_from_db()
        assert message.status == S.QUEUED


def test_each_canceled_message_gets_a_timeline_event():
    campaign = make_campaign(CS.RUNNING)
    waiting = add_messages(campaign, *WAITING)
    others = add_messages(campaign, S.SENDING, S.DELIVERED)

    campaign_control.cancel(campaign)

    events = MessageEvent.objects.order_by("message_id")
    assert [(e.message_id, e.from_status, e.to_status) for e in events] == [
        (m.pk, status, S.CANCELED) for m, status in zip(waiting, WAITING, strict=True)
    ]
    assert {e.source for e in events} == {MessageEvent.Source.STAFF}
    assert {e.detail for e in events} == {"Campaign canceled."}
    assert not MessageEvent.objects.filter(message__in=others).exists()


def test_canceled_messages_are_forwarded_when_the_account_forwards():
    campaign = make_campaign(CS.RUNNING, account=AccountFactory(forward_url="https://example.com/"))
    waiting = add_messages(campaign, S.QUEUED, S.SCHEDULED)
    add_messages(campaign, S.SENDING)
    campaign_control.cancel(campaign)
    payloads = [f.payload for f in Forward.objects.order_by("id")]
    assert sorted(p["message_id"] for p in payloads) == sorted(m.pk for m in waiting)
    assert {p["status"] for p in payloads} == {"canceled"}


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's path: the ids go as one array"
)
def test_a_large_campaign_is_canceled_in_as_many_statements_as_a_small_one(nudges):
    """A campaign of a million messages is canceled in one web request: the number of its
    statements must not grow with it (events and forwards were written in batches of 1,000)."""

    def cancel(size: int) -> list[dict]:
        account = AccountFactory(forward_url="https://example.com/")
        numbers = [(i, f"+3361{i:07d}") for i in range(size)]
        result = bulk.create_campaign(account, name=f"{size}", text="Hi", recipients=numbers)
        with CaptureQueriesContext(connection) as queries:
            assert campaign_control.cancel(result.campaign) == size
        assert (
            MessageEvent.objects.filter(
                message__campaign=result.campaign, to_status=S.CANCELED
            ).count()
            == size
        )
        assert Forward.objects.filter(account=account, payload__status="canceled").count() == size
        return queries.captured_queries

    cancel(1)  # what a process looks up once
    small, large = cancel(3), cancel(2_500)
    assert len(large) == len(small)


@pytest.mark.skipif(
    connection.vendor == "postgresql", reason="PostgreSQL takes the ids as one array parameter"
)
def test_a_campaign_with_more_messages_than_a_statement_takes_parameters_is_canceled_whole(
    monkeypatch,
):
    """SQLite refuses a statement with more parameters than its limit (32,766 by default,
    250,000 in Debian's build): the ids go in as many statements as that needs."""
    campaign = make_campaign(CS.RUNNING)
    waiting = add_messages(campaign, *WAITING, S.QUEUED, S.QUEUED, S.SCHEDULED, S.QUEUED)
    monkeypatch.setattr(type(connection.features), "max_query_params", 3)  # 2 ids and a status
    with CaptureQueriesContext(connection) as queries:
        assert campaign_control.cancel(campaign) == len(waiting)
    updates = [
        q for q in queries.captured_queries if q["sql"].startswith('UPDATE "campaigns_message"')
    ]
    assert len(updates) == 4  # 2 ids a statement: 4 queued, 2 scheduled, 1 retrying
    assert set(statuses(campaign).values()) == {S.CANCELED}
    assert MessageEvent.objects.filter(to_status=S.CANCELED).count() == len(waiting)


def test_no_worker_claims_a_canceled_campaigns_messages_while_they_are_being_canceled():
    """A cancel commits the campaign's status before it moves its messages, chunk by chunk:
    meanwhile no claim takes them (nor the messages of a paused campaign), and the others go."""
    canceled, paused, running = (
        make_campaign(status) for status in (CS.CANCELED, CS.PAUSED, CS.RUNNING)
    )
    for campaign in (canceled, paused, running):
        add_messages(campaign, S.QUEUED, S.QUEUED)
    claimed = claim_batch(100).messages
    assert {m.campaign_id for m in claimed} == {running.pk}
    assert len(claimed) == 2


def test_a_large_campaign_is_canceled_in_chunks_and_finished_by_a_worker(monkeypatch):
    """Up to `CANCEL_IN_REQUEST` messages are canceled while staff wait, the rest by a worker
    (the task `campaigns.cancel_waiting`, called here as the worker calls it); the count staff
    are told is all of them, and none of them is claimed in between."""
    monkeypatch.setattr(campaign_control, "CANCEL_CHUNK", 2)
    monkeypatch.setattr(campaign_control, "CANCEL_IN_REQUEST", 4)
    campaign = make_campaign(CS.RUNNING)
    waiting = add_messages(campaign, *[S.QUEUED] * 5, S.SCHEDULED, S.RETRYING)
    (sent,) = add_messages(campaign, S.SENT)
    assert campaign_control.cancel(campaign) == len(waiting)
    campaign.refresh_from_db()
    assert campaign.status == CS.CANCELED
    now = statuses(campaign)
    assert sorted(now.values()).count(S.CANCELED) == 4
    assert sum(now[m.pk] in WAITING for m in waiting) == 3
    assert claim_batch(100).messages == []
    running = cache.get(campaign_control.CANCEL_RUNNING.format(pk=campaign.pk))
    assert running, "no worker was asked to finish the cancel"

    assert tasks.cancel_waiting(campaign.pk) == 3
    assert {pk: status for pk, status in statuses(campaign).items() if pk != sent.pk} == {
        m.pk: S.CANCELED for m in waiting
    }
    assert statuses(campaign)[sent.pk] == S.SENT
    assert MessageEvent.objects.filter(to_status=S.CANCELED).count() == len(waiting)
    assert cache.get(campaign_control.CANCEL_RUNNING.format(pk=campaign.pk)) is None


def test_staff_are_told_the_whole_count_of_a_large_cancel_as_the_page_writes_numbers(
    operator_client, account, monkeypatch
):
    """The flash counts the messages left to the worker too, grouped as the page groups them."""
    monkeypatch.setattr(campaign_control, "CANCEL_CHUNK", 500)
    monkeypatch.setattr(campaign_control, "CANCEL_IN_REQUEST", 500)
    campaign = make_campaign(CS.SCHEDULED, account=account)
    Message.objects.bulk_create(
        Message(account=account, campaign=campaign, recipient=f"+3361{i:07d}", text="Hi")
        for i in range(1_200)
    )
    url = reverse("campaigns:campaign_cancel", args=[campaign.pk])
    page = operator_client.post(url, follow=True).content.decode()
    assert "Campaign “Spring sale” canceled: 1,200 waiting messages will not be sent." in page
    assert Message.objects.filter(campaign=campaign, status=S.CANCELED).count() == 500
    assert campaign_control.finish_cancel(campaign.pk) == 700  # the worker's part


def test_a_cancel_the_broker_cannot_hand_to_a_worker_is_left_to_the_sweep(monkeypatch, caplog):
    """The broker refusing the worker's task fails neither the cancel nor the staff member's
    request: the campaign is canceled, the rest waits held for the sweep, which asks again."""
    monkeypatch.setattr(campaign_control, "CANCEL_CHUNK", 1)
    monkeypatch.setattr(campaign_control, "CANCEL_IN_REQUEST", 1)
    campaign = make_campaign(CS.RUNNING)
    add_messages(campaign, S.QUEUED, S.QUEUED, S.QUEUED)

    def refused(*args, **kwargs):
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(campaign_control.wake, "wake", refused)
    assert campaign_control.cancel(campaign) == 3
    assert "could not ask a worker to cancel its last messages: the sweep will" in caplog.text
    assert claim_batch(100).messages == []
    monkeypatch.undo()
    assert campaign_control.finish_cancels() == 1
    assert tasks.cancel_waiting(campaign.pk) == 2
    assert set(statuses(campaign).values()) == {S.CANCELED}


def test_the_sweep_has_a_worker_cancel_what_a_cancel_left_waiting():
    """A message of a canceled campaign that is waiting again (its worker killed mid-cancel, a
    provider's refusal retried after the cancel) is canceled through the sweep; a campaign
    canceled longer ago than `CANCEL_SWEEP_WITHIN` (an hour) is not looked at any more."""
    campaign = make_campaign(CS.RUNNING)
    add_messages(campaign, S.QUEUED)
    campaign_control.cancel(campaign)
    assert campaign_control.finish_cancels() == 0  # nothing left
    (back,) = add_messages(campaign, S.RETRYING)
    assert campaign_control.finish_cancels() == 1
    assert campaign_control.finish_cancels() == 0  # a worker was asked a moment ago
    assert tasks.cancel_waiting(campaign.pk) == 1
    back.refresh_from_db()
    assert back.status == S.CANCELED

    add_messages(campaign, S.QUEUED)
    AuditEntry.objects.filter(object_id=str(campaign.pk)).update(
        at=timezone.now() - campaign_control.CANCEL_SWEEP_WITHIN - timedelta(minutes=1)
    )
    assert campaign_control.finish_cancels() == 0


@pytest.mark.parametrize("status", [CS.COMPLETED, CS.CANCELED])
def test_cancel_is_refused_once_the_campaign_is_over(status):
    campaign = make_campaign(status)
    add_messages(campaign, S.QUEUED)
    with pytest.raises(CampaignStateError, match=f"its status is {status}. Only draft, scheduled"):
        campaign_control.cancel(campaign)
    assert statuses(campaign).popitem()[1] == S.QUEUED
    assert not MessageEvent.objects.exists()


def test_a_paused_campaign_cannot_be_resumed_after_cancel():
    campaign = make_campaign(CS.PAUSED)
    campaign_control.cancel(campaign)
    with pytest.raises(CampaignStateError):
        campaign_control.resume(campaign)


# --- counts and completion -------------------------------------------------------------------


def test_counts_stay_true_before_and_after_cancel():
    campaign = make_campaign(CS.RUNNING)
    add_messages(campaign, S.QUEUED, S.QUEUED, S.SCHEDULED, S.RETRYING, S.SENDING, S.DELIVERED)
    add_messages(make_campaign(name="Other"), S.QUEUED)

    before = campaign_control.counts(campaign)
    assert set(before) == {*S.values, "total"}
    assert before["total"] == 6 == sum(n for s, n in before.items() if s != "total")
    assert before[S.QUEUED] == 2
    assert before[S.CANCELED] == 0

    canceled = campaign_control.cancel(campaign)

    after = campaign_control.counts(campaign)
    assert after["total"] == 6 == sum(n for s, n in after.items() if s != "total")
    assert after[S.CANCELED] == canceled == 4
    assert after[S.QUEUED] == after[S.SCHEDULED] == after[S.RETRYING] == 0
    assert (after[S.SENDING], after[S.DELIVERED]) == (1, 1)


def test_counts_is_one_query(django_assert_num_queries):
    campaign = make_campaign()
    add_messages(campaign, S.QUEUED, S.SENT)
    with django_assert_num_queries(1):
        campaign_control.counts(campaign)


def test_a_running_campaign_completes_when_nothing_is_left_to_send():
    campaign = make_campaign(CS.RUNNING)
    [sending] = add_messages(campaign, S.SENDING)
    add_messages(campaign, S.DELIVERED)
    assert campaign_control.refresh_status(campaign) is False
    assert Campaign.objects.get(pk=campaign.pk).status == CS.RUNNING

    Message.objects.filter(pk=sending.pk).update(status=S.SENT)
    assert campaign_control.refresh_status(campaign) is True
    assert campaign.status == CS.COMPLETED
    assert Campaign.objects.get(pk=campaign.pk).status == CS.COMPLETED


def test_a_paused_campaign_is_not_completed_behind_staffs_back():
    campaign = make_campaign(CS.PAUSED)
    add_messages(campaign, S.SENT)
    assert campaign_control.refresh_status(campaign) is False
    assert Campaign.objects.get(pk=campaign.pk).status == CS.PAUSED


# --- admin -----------------------------------------------------------------------------------

CHANGELIST = reverse("admin:campaigns_campaign_changelist")


def run_action(client, action: str, *campaigns: Campaign):
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [c.pk for c in campaigns]},
        follow=True,
    )
    assert response.status_code == 200
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_admin_pause_reports_each_campaign(admin_client):
    running = make_campaign(CS.RUNNING, name="Running one")
    draft = make_campaign(CS.DRAFT, name="Draft one")
    messages = run_action(admin_client, "pause", running, draft)
    assert sorted(messages) == [
        (
            "error",
            "Campaign “Draft one” cannot be paused: its status is draft. "
            "Only scheduled or running campaigns can be paused.",
        ),
        ("success", "Running one: paused; its waiting messages wait until it is resumed."),
    ]
    running.refresh_from_db()
    draft.refresh_from_db()
    assert (running.status, draft.status) == (CS.PAUSED, CS.DRAFT)


def test_admin_resume(admin_client, nudges):
    paused = make_campaign(CS.PAUSED, name="Paused one")
    add_messages(paused, S.QUEUED)
    running = make_campaign(CS.RUNNING, name="Running one")
    messages = run_action(admin_client, "resume", paused, running)
    assert sorted(messages) == [
        (
            "error",
            "Campaign “Running one” cannot be resumed: its status is running. "
            "Only paused campaigns can be resumed.",
        ),
        ("success", "Paused one: resumed; its waiting messages are being sent."),
    ]
    paused.refresh_from_db()
    assert paused.status == CS.RUNNING


def test_admin_cancel_says_how_many_messages_will_not_be_sent(admin_client):
    campaign = make_campaign(CS.RUNNING, name="Spring sale")
    add_messages(campaign, S.QUEUED, S.SCHEDULED, S.SENT)
    done = make_campaign(CS.CANCELED, name="Old one")
    messages = run_action(admin_client, "cancel", campaign, done)
    assert sorted(messages) == [
        (
            "error",
            "Campaign “Old one” cannot be canceled: its status is canceled. "
            "Only draft, scheduled, running or paused campaigns can be canceled.",
        ),
        ("success", "Spring sale: canceled; 2 messages will not be sent."),
    ]
    assert campaign_control.counts(campaign)[S.CANCELED] == 2


def test_admin_change_page_shows_messages_by_status(admin_client):
    campaign = make_campaign(CS.RUNNING)
    add_messages(campaign, S.QUEUED, S.QUEUED, S.DELIVERED)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = admin_client.get(url).content.decode()
    assert "Messages by status" in page
    assert "2 queued, 1 delivered (3 messages)" in page
    assert "0 sent" not in page

    empty = make_campaign(CS.DRAFT, name="Empty")
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[empty.pk]))
    assert "No messages." in page.content.decode()


def test_admin_add_page_still_opens(admin_client):
    assert admin_client.get(reverse("admin:campaigns_campaign_add")).status_code == 200


@pytest.mark.parametrize(
    ("action", "verb"), [("pause", "paused"), ("resume", "resumed"), ("cancel", "canceled")]
)
def test_admin_actions_leave_a_campaign_being_imported_alone(admin_client, nudges, action, verb):
    importing = make_campaign(CS.IMPORTING, name="Big list")
    add_messages(importing, S.QUEUED, S.QUEUED)
    messages = run_action(admin_client, action, importing)
    assert messages == [
        (
            "error",
            f"Campaign “Big list” cannot be {verb} while its numbers are being imported: "
            "wait until the import is over (the campaign then starts by itself).",
        )
    ]
    importing.refresh_from_db()
    assert importing.status == CS.IMPORTING
    assert set(statuses(importing).values()) == {S.QUEUED}
    assert nudges == []
