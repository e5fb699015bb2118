"""Delivery reports matched by number: Expertflow's send answer has no id, so its Twilio-style
reports (`To`, the doc's `MessageSid` and `SmsStatus`) go to the oldest message of that provider
account to that number still awaiting a report. Reports that still match nothing are shown
(admin, dashboard) and purged by retention."""

import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message, PendingDeliveryReport, WebhookRequest
from campaigns.services import delivery, retention, webhook_log
from campaigns.services.compose import enqueue_message
from campaigns.services.delivery import Applied, apply_delivery_report
from providers.events import DeliveryReport, DeliveryStatus

from ..conftest import apply_webhooks, dispatch_batch
from ..factories import AccountFactory, MembershipFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status
NUMBER = "+923001234567"  # the doc's send example is a Pakistani number (+92)
SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


@pytest.fixture
def expertflow(db, simulator):
    return ProviderAccountFactory(
        name="Expertflow", slug="expertflow", base_url=simulator.url, credentials={"channel": "sms"}
    )


@pytest.fixture
def account(expertflow):
    return AccountFactory(name="Clinic", route=[expertflow])


def sent(account, provider_account, *, to=NUMBER, ago=timedelta(minutes=5), status=Status.SENT):
    """A message handed to the provider `ago`, with no provider id, as an Expertflow send
    leaves it."""
    at = timezone.now() - ago
    return MessageFactory(
        account=account,
        provider_account=provider_account,
        recipient=to,
        status=status,
        claimed_at=at,
        sent_at=at if status != Status.SENDING else None,
        created_at=at,
    )


def post_report(client, provider_account, form, *, apply=True):
    """POST a Twilio-style form to the provider account's delivery-report webhook, as the
    connector does, then apply what was stored as a worker does."""
    response = client.post(
        provider_account.webhook_url("dlr"),
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",
    )
    if apply:
        apply_webhooks()
    return response


def status_of(*messages):
    for message in messages:
        message.refresh_from_db()
    return [message.status for message in messages]


# --- a report finds its message by number --------------------------------------------------------
def test_a_message_sent_through_expertflow_gets_its_report_by_number(client, account, expertflow):
    message = enqueue_message(account, recipient=NUMBER, text="Your ticket 123 is resolved.")
    dispatch_batch()  # sent through the simulator's connector: 200 with no content, no id
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.SENT, "")

    response = post_report(
        client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER}
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.delivered_at is not None
    # The report's id names the message from now on: the next report about it finds it by id.
    assert message.provider_message_id == SID
    event = message.events.get(to_status=Status.DELIVERED)
    assert event.source == "webhook"
    assert f"Matched by number {NUMBER}" in event.detail
    assert "Expertflow SMS Connector gives no message id" in event.detail
    assert event.payload["To"] == NUMBER
    assert WebhookRequest.objects.get().status == WebhookRequest.Status.APPLIED
    assert not PendingDeliveryReport.objects.exists()


@pytest.mark.parametrize(
    "form",
    [
        {"MessageSid": SID, "SmsStatus": "undelivered", "To": NUMBER},
        {"MessageSid": SID, "MessageStatus": "undelivered", "To": NUMBER},
        {"SmsStatus": "undelivered", "To": NUMBER},
        {"MessageSid": SID, "SmsStatus": "undelivered", "To": NUMBER.lstrip("+")},
    ],
    ids=["doc-parameters", "doc-definitions", "without-MessageSid", "MSISDN-without-plus"],
)
def test_every_reading_of_the_form_with_a_number_matches(client, account, expertflow, form):
    message = sent(account, expertflow)
    post_report(client, expertflow, form)
    assert status_of(message) == [Status.UNDELIVERED]
    assert message.provider_message_id == form.get("MessageSid", "")


def test_two_reports_for_two_messages_to_one_number_go_to_both_oldest_first(
    client, account, expertflow
):
    older = sent(account, expertflow, ago=timedelta(minutes=10))
    newer = sent(account, expertflow, ago=timedelta(minutes=5))
    post_report(client, expertflow, {"MessageSid": "SMa", "SmsStatus": "undelivered", "To": NUMBER})
    assert status_of(older, newer) == [Status.UNDELIVERED, Status.SENT]
    post_report(client, expertflow, {"MessageSid": "SMb", "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(older, newer) == [Status.UNDELIVERED, Status.DELIVERED]
    assert (older.provider_message_id, newer.provider_message_id) == ("SMa", "SMb")


def test_reports_without_an_id_go_to_both_messages_too(client, account, expertflow):
    older = sent(account, expertflow, ago=timedelta(minutes=10))
    newer = sent(account, expertflow, ago=timedelta(minutes=5))
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": NUMBER})
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": NUMBER})
    assert status_of(older, newer) == [Status.DELIVERED, Status.DELIVERED]


def test_two_reports_in_one_batch_go_to_two_messages(client, account, expertflow):
    older = sent(account, expertflow, ago=timedelta(minutes=10))
    newer = sent(account, expertflow, ago=timedelta(minutes=5))
    for sid in ("SMa", "SMb"):
        post_report(
            client,
            expertflow,
            {"MessageSid": sid, "SmsStatus": "delivered", "To": NUMBER},
            apply=False,
        )
    assert apply_webhooks() == 2  # one worker's batch
    assert status_of(older, newer) == [Status.DELIVERED, Status.DELIVERED]
    assert {older.provider_message_id, newer.provider_message_id} == {"SMa", "SMb"}


def test_the_same_report_twice_changes_nothing(client, account, expertflow):
    first = sent(account, expertflow, ago=timedelta(minutes=10))
    second = sent(account, expertflow, ago=timedelta(minutes=5))
    form = {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER}
    post_report(client, expertflow, form)
    post_report(client, expertflow, form)
    assert status_of(first, second) == [Status.DELIVERED, Status.SENT]
    assert first.events.filter(source="webhook").count() == 1
    assert not second.events.exists()
    assert list(WebhookRequest.objects.order_by("id").values_list("applied", flat=True)) == [1, 0]


def test_the_same_report_twice_in_one_batch_changes_nothing_either(client, account, expertflow):
    first = sent(account, expertflow, ago=timedelta(minutes=10))
    second = sent(account, expertflow, ago=timedelta(minutes=5))
    form = {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER}
    post_report(client, expertflow, form, apply=False)
    post_report(client, expertflow, form, apply=False)
    apply_webhooks()
    assert status_of(first, second) == [Status.DELIVERED, Status.SENT]


def test_replaying_a_stored_report_without_an_id_changes_nothing(
    admin_client, client, account, expertflow
):
    first = sent(account, expertflow, ago=timedelta(minutes=10))
    second = sent(account, expertflow, ago=timedelta(minutes=5))
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": NUMBER})
    log = WebhookRequest.objects.get()
    assert webhook_log.replay(log).applied == 0
    assert status_of(first, second) == [Status.DELIVERED, Status.SENT]


def test_a_replayed_unmatched_report_is_matched_once_its_message_is_there(
    client, account, expertflow
):
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": NUMBER})
    log = WebhookRequest.objects.get()
    assert log.status == WebhookRequest.Status.UNMATCHED
    assert PendingDeliveryReport.objects.get().recipient == NUMBER
    assert webhook_log.replay(log).pending == 1  # still nothing to match: not kept twice
    assert PendingDeliveryReport.objects.count() == 1

    message = sent(account, expertflow)
    assert webhook_log.replay(log).applied == 1
    assert status_of(message) == [Status.DELIVERED]
    assert not PendingDeliveryReport.objects.exists()


def test_a_report_never_moves_a_message_back(client, account, expertflow):
    message = sent(account, expertflow)
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    for word in ("sent", "queued", "undelivered"):
        post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": word, "To": NUMBER})
    assert status_of(message) == [Status.DELIVERED]
    assert list(message.events.values_list("to_status", flat=True)) == ["delivered"]


def test_a_first_report_that_changes_no_status_still_names_the_message(client, account, expertflow):
    """`queued`/`sent` reports come before the final one: the final one, with the same id,
    finds the same message, not the next one awaiting a report to that number."""
    first = sent(account, expertflow, ago=timedelta(minutes=10))
    second = sent(account, expertflow, ago=timedelta(minutes=5))
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "sent", "To": NUMBER})
    first.refresh_from_db()
    assert (first.status, first.provider_message_id) == (Status.SENT, SID)
    assert "Matched by number" in first.events.get().detail
    post_report(client, expertflow, {"MessageSid": "SMother", "SmsStatus": "failed", "To": NUMBER})
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(first, second) == [Status.DELIVERED, Status.FAILED]


def test_a_report_that_overtook_the_send_result_finds_the_message_being_sent(
    client, account, expertflow
):
    message = sent(account, expertflow, status=Status.SENDING, ago=timedelta(seconds=1))
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.sent_at is not None  # it was accepted: counted as sent on the dashboard


def test_a_message_already_reported_is_not_taken_again(client, account, expertflow):
    done = sent(account, expertflow, status=Status.DELIVERED)
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "undelivered", "To": NUMBER})
    assert status_of(done) == [Status.DELIVERED]
    pending = PendingDeliveryReport.objects.get()
    assert (pending.provider_message_id, pending.recipient, pending.status) == (
        SID,
        NUMBER,
        "undelivered",
    )


# --- what is never matched by number -------------------------------------------------------------
def test_only_messages_handed_over_within_the_window_are_matched(
    client, settings, account, expertflow
):
    settings.SMSHUB_DLR_NUMBER_WINDOW_HOURS = 24
    stale = sent(account, expertflow, ago=timedelta(hours=25))
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(stale) == [Status.SENT]
    assert PendingDeliveryReport.objects.get().recipient == NUMBER
    assert WebhookRequest.objects.get().status == WebhookRequest.Status.UNMATCHED

    recent = sent(account, expertflow, ago=timedelta(hours=23))
    post_report(client, expertflow, {"MessageSid": "SM2", "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(stale, recent) == [Status.SENT, Status.DELIVERED]


def test_a_window_of_zero_turns_matching_by_number_off(client, settings, account, expertflow):
    settings.SMSHUB_DLR_NUMBER_WINDOW_HOURS = 0
    message = sent(account, expertflow)
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(message) == [Status.SENT]
    assert PendingDeliveryReport.objects.count() == 1


def test_only_the_provider_accounts_own_messages_are_matched(
    client, account, expertflow, simulator
):
    other_connector = ProviderAccountFactory(
        name="Expertflow 2", slug="expertflow", base_url=simulator.url, credentials={"channel": "x"}
    )
    theirs = sent(account, other_connector, ago=timedelta(minutes=10))
    ours = sent(account, expertflow, ago=timedelta(minutes=5))
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(theirs, ours) == [Status.SENT, Status.DELIVERED]


def test_another_number_is_another_message(client, account, expertflow):
    message = sent(account, expertflow, to="+923001234568")
    post_report(client, expertflow, {"MessageSid": SID, "SmsStatus": "delivered", "To": NUMBER})
    assert status_of(message) == [Status.SENT]


def test_providers_whose_send_gives_an_id_keep_exact_id_matching(account, provider_account):
    """The simulator's send answers an id: a report naming no message by its id waits, even
    when it carries a number a message awaits a report to."""
    message = sent(account, provider_account)
    report = DeliveryReport("sim-unknown", DeliveryStatus.DELIVERED, to_number=NUMBER)
    assert apply_delivery_report(provider_account, report) == Applied.PENDING
    assert status_of(message) == [Status.SENT]


@pytest.mark.parametrize(
    "form",
    [
        {"MessageSid": SID, "SmsStatus": "delivered"},  # the doc's table: no number
        {"MessageSid": SID, "SmsStatus": "delivered", "To": "not a number"},
    ],
    ids=["no-To", "To-not-a-number"],
)
def test_a_report_without_a_usable_number_waits_as_unmatched(client, account, expertflow, form):
    message = sent(account, expertflow)
    response = post_report(client, expertflow, form)
    assert response.status_code == 200
    assert status_of(message) == [Status.SENT]
    pending = PendingDeliveryReport.objects.get()
    assert (pending.provider_message_id, pending.status) == (SID, "delivered")


@pytest.mark.parametrize(
    "body",
    [
        {"SmsStatus": "delivered"},
        {"To": NUMBER},
        {"MessageSid": SID, "SmsStatus": "read", "To": NUMBER},
        {"MessageSid": SID, "SmsStatus": "delivered", "To": "+" + "9" * 5000},
    ],
    ids=["neither-id-nor-number", "no-status", "unknown-word", "huge-number"],
)
def test_nothing_a_connector_sends_is_a_500(client, account, expertflow, body):
    message = sent(account, expertflow)
    response = post_report(client, expertflow, body)
    assert response.status_code in (200, 400)
    assert status_of(message) == [Status.SENT]


def test_one_reports_trouble_never_touches_another(client, account, expertflow):
    message = sent(account, expertflow)
    post_report(client, expertflow, {"SmsStatus": "delivered"}, apply=False)  # refused: 400
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": "+1"}, apply=False)
    post_report(client, expertflow, {"SmsStatus": "delivered", "To": NUMBER}, apply=False)
    apply_webhooks()
    assert status_of(message) == [Status.DELIVERED]


# --- performance: one indexed query, not a scan --------------------------------------------------
def test_the_message_awaiting_a_report_is_found_through_its_index(account, expertflow):
    sent(account, expertflow)
    if connection.vendor == "postgresql":  # a tiny table: make the planner show its index
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    since = timezone.now() - timedelta(days=1)
    plan = (
        delivery.awaiting_by_number(expertflow, NUMBER, since)
        .filter(delivery.BY_NUMBER)
        .order_by("claimed_at", "id")
        .explain()
    )
    assert "message_awaiting_number_idx" in plan


def test_a_batch_of_reports_costs_a_few_queries_per_report(
    client, account, expertflow, django_assert_max_num_queries
):
    messages = [sent(account, expertflow, to=f"+92300123{i:04d}") for i in range(20)]
    for i in range(20):
        post_report(
            client,
            expertflow,
            {"MessageSid": f"SM{i}", "SmsStatus": "delivered", "To": f"+92300123{i:04d}"},
            apply=False,
        )
    # Per report: by id, by number, (PostgreSQL: by id again once locked), the move, its event.
    with django_assert_max_num_queries(20 * 5 + 10):
        assert apply_webhooks() == 20
    assert set(status_of(*messages)) == {Status.DELIVERED}


# --- concurrency: workers applying at once ----------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_reports_applied_by_four_workers_at_once_go_to_as_many_messages(
    client, expertflow, monkeypatch
):
    monkeypatch.setattr(webhook_log, "nudge", lambda: None)  # the threads are the workers
    account = AccountFactory(route=[expertflow])
    messages = [sent(account, expertflow, ago=timedelta(minutes=30 - i)) for i in range(8)]
    sids = [f"SM{i:032x}" for i in range(8)]
    for sid in sids:
        for _ in range(3):  # each report three times in a row: taken by workers at once
            post_report(
                client,
                expertflow,
                {"MessageSid": sid, "SmsStatus": "delivered", "To": NUMBER},
                apply=False,
            )
    run_workers(4)
    assert set(status_of(*messages)) == {Status.DELIVERED}
    assert sorted(m.provider_message_id for m in messages) == sorted(sids)
    assert sum(WebhookRequest.objects.values_list("applied", flat=True)) == 8
    assert not PendingDeliveryReport.objects.exists()


def run_workers(n: int) -> None:
    barrier = threading.Barrier(n)
    errors = []

    def work():
        barrier.wait()
        try:
            while webhook_log.apply_received(limit=1):
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert not WebhookRequest.objects.filter(status=WebhookRequest.Status.FAILED).exists()


# --- unmatched reports: shown, counted, purged -------------------------------------------------
def unmatched(provider_account, n=1, ago=timedelta(0)):
    for i in range(n):
        PendingDeliveryReport.objects.create(
            provider_account=provider_account,
            recipient=NUMBER,
            status="delivered",
            received_at=timezone.now() - ago,
            raw={"SmsStatus": "delivered", "To": NUMBER, "n": i},
        )


def test_the_dashboard_counts_unmatched_reports_and_links_staff_to_them(
    client, account, expertflow, admin_user
):
    unmatched(expertflow, 3)
    elsewhere = ProviderAccountFactory(name="Not on this route")
    unmatched(elsewhere, 5)
    MembershipFactory(account=account, user=admin_user)
    client.force_login(admin_user)

    page = client.get(reverse("campaigns:dashboard")).content.decode()

    assert "Unmatched delivery reports" in page
    assert "<strong>3</strong> from Expertflow" in page
    assert "Not on this route" not in page
    changelist = reverse("admin:campaigns_pendingdeliveryreport_changelist")
    link = f"{changelist}?provider_account__id__exact={expertflow.pk}"
    assert f'href="{link}"' in page
    listed = client.get(link).content.decode()
    assert listed.count(NUMBER) >= 3  # the number each report names is listed


def test_operators_see_the_count_without_a_link_to_admin(operator_client, account, expertflow):
    unmatched(expertflow, 2)
    page = operator_client.get(reverse("campaigns:dashboard")).content.decode()
    assert "<strong>2</strong> from Expertflow" in page
    assert "An administrator sees them in admin" in page
    assert "/admin/" not in page


def test_no_unmatched_reports_no_notice(operator_client, account, expertflow):
    page = operator_client.get(reverse("campaigns:dashboard")).content.decode()
    assert "Unmatched delivery reports" not in page


def test_a_pile_of_unmatched_reports_is_counted_up_to_a_limit(
    operator_client, account, expertflow, monkeypatch
):
    from campaigns.services import stats

    monkeypatch.setattr(stats, "UNMATCHED_COUNTED_UP_TO", 3)
    unmatched(expertflow, 5)
    [item] = stats.unmatched_reports(account)
    assert item.shown == "3+"
    fragment = operator_client.get(
        reverse("campaigns:dashboard"), {"part": "figures"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<strong>3+</strong> from Expertflow" in fragment


def test_retention_purges_old_unmatched_reports_and_keeps_recent_ones(settings, expertflow):
    settings.SMSHUB_LOG_RETENTION_DAYS = 30
    settings.SMSHUB_RETENTION_EXPORT_DIR = ""
    unmatched(expertflow, 2, ago=timedelta(days=31))
    unmatched(expertflow, 1, ago=timedelta(days=29))
    purged = retention.purge()
    assert purged["unmatched_delivery_reports"] == 2
    assert PendingDeliveryReport.objects.count() == 1
