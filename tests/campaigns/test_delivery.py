"""Delivery reports when a provider gives the same id to several messages (Primotexto's
`snapshotId` has 6 digits): the message still awaiting a report first, the newest otherwise."""

import json

import pytest

from campaigns.models import Message
from campaigns.services.delivery import Applied, apply_delivery_report
from providers.events import DeliveryReport, DeliveryStatus

from ..conftest import apply_webhooks
from ..factories import MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def with_id(account, provider_account, status, provider_message_id="386479"):
    return MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id=provider_message_id,
        status=status,
    )


def report(client, provider_account, *items):
    """Post reports to the webhook as the provider would (in one request), and apply them as a
    worker does: many reports of a batch are matched in one query."""
    response = client.post(
        provider_account.webhook_url("dlr"),
        data=json.dumps(list(items)),
        content_type="application/json",
    )
    assert response.status_code == 200
    apply_webhooks()


def test_a_reused_id_reaches_the_message_still_awaiting_its_report(
    client, account, provider_account
):
    awaiting = with_id(account, provider_account, Status.SENT)
    newer_done = with_id(account, provider_account, Status.DELIVERED)
    report(client, provider_account, {"id": "386479", "status": "undelivered"})
    awaiting.refresh_from_db()
    newer_done.refresh_from_db()
    assert awaiting.status == Status.UNDELIVERED
    assert newer_done.status == Status.DELIVERED


def test_among_messages_awaiting_a_report_the_newest_takes_it(client, account, provider_account):
    older = with_id(account, provider_account, Status.SENT)
    newer = with_id(account, provider_account, Status.SENT)
    report(client, provider_account, {"id": "386479", "status": "delivered"})
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (Status.SENT, Status.DELIVERED)


def test_when_none_awaits_a_report_the_newest_is_named_and_nothing_goes_back(
    account, provider_account
):
    with_id(account, provider_account, Status.UNDELIVERED)
    newest = with_id(account, provider_account, Status.DELIVERED)
    outcome = apply_delivery_report(
        provider_account,
        DeliveryReport(provider_message_id="386479", status=DeliveryStatus.SENT),
    )
    assert outcome == Applied.UNCHANGED
    newest.refresh_from_db()
    assert newest.status == Status.DELIVERED


def test_the_one_report_path_picks_the_same_message(account, provider_account):
    awaiting = with_id(account, provider_account, Status.SENT)
    with_id(account, provider_account, Status.FAILED)
    outcome = apply_delivery_report(
        provider_account,
        DeliveryReport(provider_message_id="386479", status=DeliveryStatus.DELIVERED),
    )
    assert outcome == Applied.CHANGED
    awaiting.refresh_from_db()
    assert awaiting.status == Status.DELIVERED


def test_an_id_of_another_provider_account_is_another_message(
    client, account, provider_account, simulator
):
    elsewhere = ProviderAccountFactory(base_url=simulator.url)
    theirs = with_id(account, elsewhere, Status.SENT)
    ours = with_id(account, provider_account, Status.SENT)
    report(client, provider_account, {"id": "386479", "status": "delivered"})
    theirs.refresh_from_db()
    ours.refresh_from_db()
    assert (theirs.status, ours.status) == (Status.SENT, Status.DELIVERED)
