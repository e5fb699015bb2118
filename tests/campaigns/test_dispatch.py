"""The dispatch service against the real simulator on loopback (no Celery: plain function calls)."""

from decimal import Decimal
from unittest.mock import patch

import pytest
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaigns.models import Campaign, Message
from campaigns.services import bulk, compose, dispatch
from campaigns.services.compose import enqueue_message
from campaigns.services.dispatch import accepted
from providers.events import SendResult
from providers.simulator.server import mask_url

from ..conftest import claim, dispatch_batch, wait_for
from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def test_a_queued_message_is_sent_through_the_first_provider_of_the_route(account, simulator):
    message = enqueue_message(account, recipient="+33612345678", text="Hello from the hub")
    assert dispatch_batch() == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_message_id.startswith("sim-")
    assert message.attempts == 1
    assert message.sent_at is not None
    sent = wait_for(
        lambda: [
            e
            for e in simulator.requests_log
            if e.get("path") == "/simulator/messages"
            and e["body"].get("reference") == str(message.pk)
        ]
    )
    assert sent[-1]["body"]["to"] == "+33612345678"
    assert sent[-1]["body"]["text"] == "Hello from the hub"
    # The simulator's log masks the webhook token of the callback URL.
    assert sent[-1]["body"]["callback_url"] == mask_url(message.provider_account.webhook_url("dlr"))
    assert [e.to_status for e in message.events.all()] == ["queued", "sending", "sent"]


def test_a_message_is_claimed_once(account):
    enqueue_message(account, recipient="+33612345678", text="Only once")
    first = claim(10)
    assert len(first) == 1
    assert claim(10) == []
    assert Message.objects.get().status == Status.SENDING


def test_a_message_not_yet_due_is_not_claimed(account):
    MessageFactory(account=account, next_attempt_at=timezone.now() + timezone.timedelta(minutes=5))
    assert claim(10) == []


def test_an_unreachable_provider_is_retried_later_not_failed(db):
    closed = ProviderAccountFactory(base_url="http://127.0.0.1:9")
    account = AccountFactory(route=[closed])
    message = enqueue_message(account, recipient="+33612345678", text="Retry me")
    dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.RETRYING
    assert message.attempts == 1
    assert message.next_attempt_at > timezone.now()
    assert "could not reach" in message.error_reason
    # When the wait is over the sweep puts it back in the queue.
    assert dispatch.promote_due(now=message.next_attempt_at) == 1
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_a_batch_leaves_its_provider_accounts_health_for_admin(account, simulator):
    """The last success and the last error admin shows come from real sends."""
    enqueue_message(account, recipient="+33612345678", text="Health")
    dispatch_batch()
    provider = Message.objects.get().provider_account
    provider.refresh_from_db()
    assert provider.last_success_at is not None and provider.last_error_at is None

    closed = ProviderAccountFactory(base_url="http://127.0.0.1:9")
    enqueue_message(AccountFactory(route=[closed]), recipient="+33612345679", text="Unreachable")
    dispatch_batch()
    closed.refresh_from_db()
    assert closed.last_success_at is None
    assert closed.last_error_at is not None and "could not reach" in closed.last_error


def test_retries_stop_after_the_configured_attempts(db, settings):
    settings.SMSHUB_MAX_ATTEMPTS = 2
    closed = ProviderAccountFactory(base_url="http://127.0.0.1:9")
    message = MessageFactory(account=AccountFactory(route=[closed]), attempts=1, step_attempts=1)
    dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.attempts == 2


def test_an_account_without_a_route_fails_with_a_clear_reason(db):
    message = MessageFactory(account=AccountFactory())
    dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "no enabled provider account" in message.error_reason


def test_a_claim_moves_each_message_to_sending_with_its_provider_account_and_an_event(account):
    routed = [MessageFactory(account=account, recipient=f"+33612{i:06d}") for i in range(3)]
    unrouted = MessageFactory(account=AccountFactory(), recipient="+33612999998")
    taken = claim(10)
    assert [m.pk for m in taken] == sorted(m.pk for m in [*routed, unrouted])  # in id order
    provider_account = account.route()[0]
    for message in taken:
        assert message.status == Status.SENDING
        stored = Message.objects.get(pk=message.pk)
        assert (stored.status, stored.claim_token) == (Status.SENDING, message.claim_token)
        expected = None if message.pk == unrouted.pk else provider_account.pk
        assert stored.provider_account_id == message.provider_account_id == expected
        event = stored.events.get()
        name = "no provider" if expected is None else provider_account.name
        assert (event.from_status, event.to_status) == (Status.QUEUED, Status.SENDING)
        assert event.detail == f"Claimed by a worker for {name}."
    assert claim(10) == []  # taken once


def test_a_message_stuck_in_sending_becomes_unknown_not_resent(account, settings):
    settings.SMSHUB_SENDING_TIMEOUT = 60
    message = MessageFactory(
        account=account,
        status=Status.SENDING,
        claimed_at=timezone.now() - timezone.timedelta(seconds=61),
    )
    fresh = MessageFactory(account=account, status=Status.SENDING, claimed_at=timezone.now())
    assert dispatch.expire_stuck_sending() == 1
    message.refresh_from_db()
    fresh.refresh_from_db()
    assert message.status == Status.UNKNOWN
    assert fresh.status == Status.SENDING
    assert claim(10) == []


@pytest.fixture
def one_snapshot_id(simulator):
    """The simulator's Primotexto answers every send with the same snapshotId."""
    fake = simulator.fakes["primotexto"]
    fake.id_space = 1
    yield
    del fake.id_space  # back to the class's


def test_a_provider_id_given_again_still_records_every_message_sent(
    settings, simulator, one_snapshot_id
):
    """Primotexto's snapshotId has 6 digits (its doc's answer is `"snapshotId": "386479"`):
    ids come back. Every message the provider accepted is recorded sent, in batches."""
    settings.SMSHUB_DISPATCH_BATCH_SIZE = 40
    primotexto = ProviderAccountFactory(
        slug="primotexto", base_url=simulator.url, credentials={"api_key": "primotexto-key"}
    )
    account = AccountFactory(route=[primotexto])
    earlier = MessageFactory(
        account=account,
        status=Status.DELIVERED,
        provider_account=primotexto,
        provider_message_id="100000",
    )
    waiting = [MessageFactory(account=account, recipient=f"+33612{i:06d}") for i in range(100)]
    assert dispatch.dispatch_for(30) == 100
    statuses = Message.objects.filter(pk__in=[m.pk for m in waiting]).values_list(
        "status", "provider_message_id", "cost"
    )
    assert set(statuses) == {(Status.SENT, "100000", Decimal("1.0000"))}
    earlier.refresh_from_db()
    assert earlier.status == Status.DELIVERED


def test_campaigns_sent_in_batches_in_flight_together_are_completed(
    account, simulator, settings, monkeypatch
):
    """Batches of one campaign are on their way together (batch 10, 40 in flight): the campaign
    is completed once its last one is recorded, and a small one sent beside it too."""
    settings.SMSHUB_DISPATCH_BATCH_SIZE, settings.SMSHUB_SEND_CONCURRENCY = 10, 40
    monkeypatch.setattr(compose, "nudge_dispatcher", lambda: None)
    numbers = [(i, f"+33612{i:06d}") for i in range(1, 41)]
    big = bulk.create_campaign(account, name="Big", text="Hi", recipients=numbers[:35]).campaign
    small = bulk.create_campaign(account, name="Small", text="Hi", recipients=numbers[35:]).campaign
    assert dispatch.dispatch_for(30) == 40
    big.refresh_from_db()
    small.refresh_from_db()
    assert (big.status, small.status) == (Campaign.Status.COMPLETED, Campaign.Status.COMPLETED)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


def sent_outcome(message, provider_account, **result):
    return dispatch.Outcome(
        message, provider_account, result=SendResult(**result), answered=timezone.now()
    )


def claimed(account, count):
    for i in range(count):
        MessageFactory(account=account, recipient=f"+33612{i:06d}")
    return claim(count)


def test_an_answer_the_database_could_not_store_as_is_costs_no_other_message(account):
    """What a provider answers is made storable: an id longer than its column, a cost beyond
    its digits, text the JSON column cannot hold (NUL characters, bytes)."""
    messages = claimed(account, 4)
    provider_account = messages[0].provider_account
    outcomes = [
        sent_outcome(messages[0], provider_account, provider_message_id="a" * 300),
        sent_outcome(messages[1], provider_account, provider_message_id="b", cost=Decimal("1e12")),
        sent_outcome(messages[2], provider_account, provider_message_id="c", raw={"x": "\x00!"}),
        sent_outcome(messages[3], provider_account, provider_message_id="d", raw={"x": b"\xff"}),
    ]
    dispatch.record_batch(messages, outcomes)
    rows = dict(Message.objects.values_list("pk", "status"))
    assert set(rows.values()) == {Status.SENT}
    first = Message.objects.get(pk=messages[0].pk)
    assert first.provider_message_id == "a" * 100
    assert first.events.last().payload["provider_message_id"] == "a" * 300  # kept whole
    assert Message.objects.get(pk=messages[1].pk).cost is None
    assert Message.objects.get(pk=messages[2].pk).events.last().payload == {"x": "!"}


def test_a_row_the_database_refuses_fails_no_other_and_is_still_recorded_sent(
    account, database_refusing_bad
):
    messages = claimed(account, 5)
    provider_account = messages[0].provider_account
    outcomes = [
        sent_outcome(m, provider_account, provider_message_id="bad" if i == 2 else f"ok-{i}")
        for i, m in enumerate(messages)
    ]
    dispatch.record_batch(messages, outcomes)
    rows = {m.pk: m for m in Message.objects.all()}
    assert {m.status for m in rows.values()} == {Status.SENT}
    assert [rows[m.pk].provider_message_id for m in messages] == [
        "ok-0",
        "ok-1",
        "",
        "ok-3",
        "ok-4",
    ]
    bad = rows[messages[2].pk]
    assert "its answer could not be stored" in bad.events.last().detail
    assert [e.to_status for e in bad.events.all()].count(Status.SENT) == 1


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_LIKE)
@example({"id": "a\x00b", "n": [1.5, 2]})
@example({"k\x00": [True, None]})
@example({"n": [1.5, float("nan")]})
@example(float("inf"))
def test_an_answer_taken_as_it_is_is_stored_as_writing_and_reading_it_would(value):
    """A provider's answer that is plain JSON is stored without a trip through `json` (the
    quick path): for any answer, what is stored is what the trip would give (NUL characters
    dropped, NaN, bytes and tuples written as JSON or as text)."""
    quick = accepted._json_safe(value)
    with patch.object(accepted, "_plain", return_value=False):
        assert repr(quick) == repr(accepted._json_safe(value))  # NaN is not equal to NaN
