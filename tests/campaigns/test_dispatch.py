"""The dispatch service against the real simulator on loopback (no Celery: plain function calls)."""

import pytest
from django.utils import timezone

from campaigns.models import Message
from campaigns.services import dispatch
from campaigns.services.compose import enqueue_message

from ..conftest import wait_for
from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def test_a_queued_message_is_sent_through_the_first_provider_of_the_route(account, simulator):
    message = enqueue_message(account, recipient="+33612345678", text="Hello from the hub")
    assert dispatch.dispatch_batch() == 1
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
    assert sent[-1]["body"]["callback_url"] == message.provider_account.webhook_url("dlr")
    assert [e.to_status for e in message.events.all()] == ["queued", "sending", "sent"]


def test_a_message_is_claimed_once(account):
    enqueue_message(account, recipient="+33612345678", text="Only once")
    first = dispatch.claim(10)
    assert len(first) == 1
    assert dispatch.claim(10) == []
    assert Message.objects.get().status == Status.SENDING


def test_a_message_not_yet_due_is_not_claimed(account):
    MessageFactory(account=account, next_attempt_at=timezone.now() + timezone.timedelta(minutes=5))
    assert dispatch.claim(10) == []


def test_a_refusal_fails_the_message_with_the_providers_reason(db, simulator):
    wrong_key = ProviderAccountFactory(base_url=simulator.url, credentials={"api_key": "wrong"})
    account = AccountFactory(route=[wrong_key])
    message = enqueue_message(account, recipient="+33612345678", text="Refused")
    dispatch.dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == "401"
    assert "invalid api key" in message.error_reason


def test_an_unreachable_provider_is_retried_later_not_failed(db):
    closed = ProviderAccountFactory(base_url="http://127.0.0.1:9")
    account = AccountFactory(route=[closed])
    message = enqueue_message(account, recipient="+33612345678", text="Retry me")
    dispatch.dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.RETRYING
    assert message.attempts == 1
    assert message.next_attempt_at > timezone.now()
    assert "could not reach" in message.error_reason
    # When the wait is over the sweep puts it back in the queue.
    assert dispatch.promote_due(now=message.next_attempt_at) == 1
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_retries_stop_after_the_configured_attempts(db, settings):
    settings.SMSHUB_MAX_ATTEMPTS = 2
    closed = ProviderAccountFactory(base_url="http://127.0.0.1:9")
    message = MessageFactory(account=AccountFactory(route=[closed]), attempts=1, step_attempts=1)
    dispatch.dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.attempts == 2


def test_an_account_without_a_route_fails_with_a_clear_reason(db):
    message = MessageFactory(account=AccountFactory())
    dispatch.dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "no enabled provider account" in message.error_reason


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
    assert dispatch.claim(10) == []
