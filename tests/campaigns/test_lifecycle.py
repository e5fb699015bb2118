"""The lifecycle written once: every pair of statuses, moved or refused as the table says."""

import pytest
from django.utils import timezone

from campaigns import statuses
from campaigns.models import MessageEvent
from campaigns.services import lifecycle
from campaigns.services.compose import create_message

from ..factories import MessageFactory

pytestmark = pytest.mark.django_db

Status = statuses.Status


@pytest.mark.parametrize("to_status", Status.values)
@pytest.mark.parametrize("from_status", Status.values)
def test_every_pair_of_statuses(account, from_status, to_status):
    message = MessageFactory(account=account, status=from_status)
    if to_status in statuses.MOVES[from_status]:
        assert lifecycle.transition(message, to_status, source="system", detail="moved")
        message.refresh_from_db()
        assert message.status == to_status
        event = message.events.get()
        assert (event.from_status, event.to_status, event.detail) == (
            from_status,
            to_status,
            "moved",
        )
    else:
        with pytest.raises(lifecycle.IllegalMove):
            lifecycle.transition(message, to_status, source="system", detail="refused")
        message.refresh_from_db()
        assert message.status == from_status
        assert not message.events.exists()


def test_what_the_table_promises():
    for final in statuses.FINAL:
        assert statuses.MOVES[final] == frozenset(), f"{final} is final"
    # Reports only move a message forward: nothing goes back to `sent` once further along.
    for status in Status:
        for to_status in statuses.MOVES[status] & statuses.REPORTED:
            assert statuses.RANK[to_status] > statuses.RANK[status]
    # A waiting message can be canceled and can expire; only a claim sends it.
    for status in statuses.CANCELABLE:
        assert {Status.CANCELED, Status.EXPIRED} <= statuses.MOVES[status]
        assert Status.SENDING not in statuses.MOVES[status] or status == Status.QUEUED
    # Every status can be reached from one a message is created in.
    reached, frontier = set(statuses.INITIAL), list(statuses.INITIAL)
    while frontier:
        for to_status in statuses.MOVES[frontier.pop()] - reached:
            reached.add(to_status)
            frontier.append(to_status)
    assert reached == set(Status)


def test_a_message_is_created_only_in_a_first_status(account):
    for status in statuses.INITIAL:
        assert create_message(account, recipient="+33612345678", text="Hi", status=status)
    for status in set(Status) - statuses.INITIAL:
        with pytest.raises(lifecycle.IllegalMove):
            create_message(account, recipient="+33612345678", text="Hi", status=status)


def test_a_bulk_cancel_refuses_a_message_already_being_sent(account):
    waiting = MessageFactory(account=account, status=Status.QUEUED)
    sending = MessageFactory(account=account, status=Status.SENDING)
    with pytest.raises(lifecycle.IllegalMove):
        lifecycle.cancel_waiting(
            [(waiting.pk, Status.QUEUED), (sending.pk, Status.SENDING)],
            timezone.now(),
            source=MessageEvent.Source.STAFF,
            detail="Campaign canceled.",
        )
