"""The generic webhook view and the delivery-report service, with the simulator's own format."""

import base64
import json
import threading
from types import SimpleNamespace

import pytest
import requests
import responses
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from campaigns import tasks
from campaigns.models import Message, PendingDeliveryReport, Reply, WebhookRequest
from campaigns.services import dispatch, polling
from campaigns.services.compose import enqueue_message
from campaigns.services.delivery import match
from campaigns.webhooks import rejected_count
from providers.models import ProviderAccount

from ..conftest import apply_webhooks, claim, wait_for
from ..factories import MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


def post(client, url, body, **kwargs):
    """Post as the provider would, then apply as a worker would."""
    response = client.post(url, data=json.dumps(body), content_type="application/json", **kwargs)
    apply_webhooks()
    return response


def test_a_delivery_report_marks_the_message_delivered(client, sent, provider_account):
    response = post(
        client,
        provider_account.webhook_url("dlr"),
        {"id": "sim-1", "status": "delivered", "timestamp": "2026-11-21T10:00:00Z"},
    )
    assert response.status_code == 200
    assert response.json() == {"received": 1}
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    assert sent.delivered_at.isoformat() == "2026-11-21T10:00:00+00:00"
    event = sent.events.get()
    assert (event.from_status, event.to_status, event.source) == ("sent", "delivered", "webhook")
    assert event.payload["id"] == "sim-1"


def test_the_request_is_logged_as_received_without_secrets(client, sent, provider_account):
    provider_account.credentials |= {"webhook_username": "hub", "webhook_password": "pw-123"}
    provider_account.save()
    auth = "Basic " + base64.b64encode(b"hub:pw-123").decode()
    body = {"id": "sim-1", "status": "delivered"}
    post(client, provider_account.webhook_url("dlr"), body, headers={"Authorization": auth})
    log = WebhookRequest.objects.get()
    assert json.loads(log.body) == body
    assert log.status == WebhookRequest.Status.APPLIED
    assert (log.kind, log.events, log.applied) == ("dlr", 1, 1)
    assert "Authorization" not in log.headers
    assert "pw-123" not in json.dumps(log.headers)


def test_a_request_is_stored_exactly_as_it_came(client, provider_account):
    """Quotes, backslashes, percent signs, placeholders and emoji in the headers and body are
    kept as the provider sent them (PostgreSQL binds the values itself: nothing is quoted into
    the statement)."""
    text = 'l\'été 100% \\ "$1" %s %(x)s 🙂 ; DROP TABLE x; --'
    body = json.dumps({"id": "sim-404", "status": "delivered", "note": text}, ensure_ascii=False)
    response = client.post(
        provider_account.webhook_url("dlr"),
        data=body.encode(),
        content_type="application/json; charset=utf-8",
        headers={"X-Note": "50% 'off' %s"},
    )
    assert response.status_code == 200, response.content
    log = WebhookRequest.objects.get()
    assert log.body == body and json.loads(log.body)["note"] == text
    assert log.headers["X-Note"] == "50% 'off' %s"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("conn_max_age", "prepared"), [(60, 1), (0, 0)])
def test_storing_a_request_is_prepared_on_a_kept_connection(
    client, provider_account, conn_max_age, prepared
):
    """PostgreSQL plans a webhook's INSERT once per kept connection; on connections that last
    one request (or behind a transaction pooler, CONN_MAX_AGE=0) never."""
    from campaigns.services.rows import PREPARE_AFTER

    if connections["default"].vendor != "postgresql":
        pytest.skip("binding and preparing are PostgreSQL's")
    connection = connections["default"]
    connection.close()
    kept_for = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = conn_max_age
    try:
        for n in range(PREPARE_AFTER + 2):  # on one connection, as a web thread's requests
            webhook_log_store(provider_account, json.dumps({"id": f"sim-{n}"}))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['INSERT INTO "campaigns_webhookrequest"%'],
            )
            assert cursor.fetchone()[0] == prepared
    finally:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = kept_for
    assert WebhookRequest.objects.count() == PREPARE_AFTER + 2


def webhook_log_store(provider_account, body: str) -> WebhookRequest:
    """What the webhook view stores for a POST of `body`."""
    from django.test import RequestFactory

    from campaigns.services import webhook_log

    request = RequestFactory().post(
        provider_account.webhook_url("dlr"), data=body, content_type="application/json"
    )
    return webhook_log.store(provider_account, "dlr", request, events=1)


def test_the_same_report_twice_changes_nothing(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    post(client, url, {"id": "sim-1", "status": "delivered"})
    second = post(client, url, {"id": "sim-1", "status": "delivered"})
    assert second.json() == {"received": 1}
    assert sent.events.count() == 1
    assert list(WebhookRequest.objects.order_by("id").values_list("applied", flat=True)) == [1, 0]


def test_reports_out_of_order_never_move_a_message_back(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    post(client, url, {"id": "sim-1", "status": "delivered"})
    post(client, url, {"id": "sim-1", "status": "accepted"})
    post(client, url, {"id": "sim-1", "status": "undelivered"})
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    assert list(sent.events.values_list("to_status", flat=True)) == ["delivered"]


def test_an_undelivered_report_keeps_the_error_code(client, sent, provider_account):
    post(
        client,
        provider_account.webhook_url("dlr"),
        {"id": "sim-1", "status": "undelivered", "error_code": "UNREACHABLE"},
    )
    sent.refresh_from_db()
    assert sent.status == Status.UNDELIVERED
    assert sent.error_code == "UNREACHABLE"


def test_a_report_before_the_send_result_waits_and_is_applied_after(
    client, account, provider_account, monkeypatch
):
    """The provider's DLR overtakes our recording of its own answer."""
    message = enqueue_message(account, recipient="+33612345678", text="Race")
    [claimed] = claim(10)
    outcome = dispatch.send_through(claimed, provider_account)
    provider_id = outcome.result.provider_message_id

    response = post(
        client, provider_account.webhook_url("dlr"), {"id": provider_id, "status": "delivered"}
    )
    assert response.json() == {"received": 1}
    assert WebhookRequest.objects.get().status == WebhookRequest.Status.UNMATCHED
    assert PendingDeliveryReport.objects.filter(provider_message_id=provider_id).exists()

    dispatch.record(outcome)
    dispatch.apply_waiting_reports([outcome])
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("to_status", flat=True)) == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]
    assert not PendingDeliveryReport.objects.exists()


def test_a_report_for_an_unknown_id_stays_visible_as_unmatched(client, provider_account):
    post(client, provider_account.webhook_url("dlr"), {"id": "sim-nobody", "status": "delivered"})
    pending = PendingDeliveryReport.objects.get()
    assert (pending.provider_message_id, pending.status) == ("sim-nobody", "delivered")
    assert pending.webhook_request.status == WebhookRequest.Status.UNMATCHED


# --- security: the same cases for any provider -------------------------------------------------


def test_a_wrong_token_is_404_and_stores_nothing(client, sent, provider_account):
    url = provider_account.webhook_url("dlr").replace(provider_account.webhook_token, "guess")
    assert post(client, url, {"id": "sim-1", "status": "delivered"}).status_code == 404
    sent.refresh_from_db()
    assert sent.status == Status.SENT
    assert not WebhookRequest.objects.exists()
    assert rejected_count("simulator", "not_found") >= 1


def test_an_unknown_kind_is_404(client, provider_account):
    url = reverse(
        "webhook",
        kwargs={"slug": "simulator", "token": provider_account.webhook_token, "kind": "other"},
    )
    assert post(client, url, {}).status_code == 404


def test_a_disabled_provider_account_gets_no_webhooks(client, sent, provider_account):
    provider_account.enabled = False
    provider_account.save()
    url = provider_account.webhook_url("dlr")
    assert post(client, url, {"id": "sim-1", "status": "delivered"}).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic " + base64.b64encode(b"hub:wrong").decode(), "Bearer pw-123", "Basic %%%"],
)
def test_basic_auth_when_configured(client, sent, provider_account, authorization):
    provider_account.credentials |= {"webhook_username": "hub", "webhook_password": "pw-123"}
    provider_account.save()
    url = provider_account.webhook_url("dlr")
    headers = {"Authorization": authorization} if authorization else {}
    response = post(client, url, {"id": "sim-1", "status": "delivered"}, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not WebhookRequest.objects.exists()
    good = "Basic " + base64.b64encode(b"hub:pw-123").decode()
    assert (
        post(
            client, url, {"id": "sim-1", "status": "delivered"}, headers={"Authorization": good}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("not json", "application/json", "not JSON"),
        ('{"status": "delivered"}', "application/json", "needs 'id' and 'status'"),
        ('{"id": "sim-1", "status": "exploded"}', "application/json", "unknown simulator status"),
        ("[1, 2]", "application/json", "needs 'id' and 'status'"),
        ("id=sim-1&status=delivered", "application/x-www-form-urlencoded", "not JSON"),
        ("", "text/plain", "not JSON"),
    ],
)
def test_a_malformed_report_is_a_400_and_kept_for_replay(
    client, sent, provider_account, body, content_type, error
):
    response = client.post(
        provider_account.webhook_url("dlr"), data=body, content_type=content_type
    )
    assert response.status_code == 400
    assert error in response.json()["error"]
    sent.refresh_from_db()
    assert sent.status == Status.SENT
    log = WebhookRequest.objects.get()
    assert log.status == WebhookRequest.Status.FAILED
    assert error in log.error
    assert log.body == body


def test_only_post_is_accepted(client, provider_account):
    response = client.get(provider_account.webhook_url("dlr"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_a_body_over_one_megabyte_is_refused(client, sent, provider_account):
    body = json.dumps({"id": "sim-1", "status": "delivered", "pad": "x" * 1024 * 1024})
    response = client.post(
        provider_account.webhook_url("dlr"), data=body, content_type="application/json"
    )
    assert response.status_code == 413
    assert not WebhookRequest.objects.exists()
    sent.refresh_from_db()
    assert sent.status == Status.SENT


def test_replay_applies_a_request_that_failed_before(client, sent, provider_account):
    """A report for a status word the hub did not know: once the adapter knows it, replay."""
    from campaigns.services import webhook_log
    from providers.events import DeliveryStatus
    from providers.simulator.adapter import SimulatorProvider

    url = provider_account.webhook_url("dlr")
    assert post(client, url, {"id": "sim-1", "status": "handed-over"}).status_code == 400
    log = WebhookRequest.objects.get()
    SimulatorProvider.status_map["handed-over"] = DeliveryStatus.DELIVERED
    try:
        result = webhook_log.replay(log)
    finally:
        del SimulatorProvider.status_map["handed-over"]
    assert (result.events, result.applied, result.error) == (1, 1, "")
    log.refresh_from_db()
    assert (log.status, log.replays) == (WebhookRequest.Status.APPLIED, 1)
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED


def test_replay_from_the_admin(admin_client, client, sent, provider_account):
    post(client, provider_account.webhook_url("dlr"), {"id": "sim-1", "status": "delivered"})
    log = WebhookRequest.objects.get()
    sent.status = Status.SENT  # as if the first processing had been lost
    Message.objects.filter(pk=sent.pk).update(status=Status.SENT)
    response = admin_client.post(
        reverse("admin:campaigns_webhookrequest_changelist"),
        {"action": "replay", "_selected_action": [log.pk]},
        follow=True,
    )
    assert f"#{log.pk}: 1 read, 1 applied." in response.content.decode()
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_with_the_database_unreachable_the_webhook_answers_503(client, sent, provider_account):
    url = provider_account.webhook_url("dlr")
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/db.sqlite3"
    else:
        connection.settings_dict["PORT"] = "1"
    try:
        response = client.post(
            url,
            data=json.dumps({"id": "sim-1", "status": "delivered"}),
            content_type="application/json",
        )
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    apply_webhooks()  # nothing was stored, so nothing is applied later either
    assert "try again" in response.json()["error"]
    sent.refresh_from_db()
    assert sent.status == Status.SENT


@pytest.mark.django_db(transaction=True)
def test_the_same_report_ten_times_at_once_changes_the_message_once(
    live_server, sent, provider_account, monkeypatch
):
    """Ten identical reports at once, applied by four workers at once: one change."""
    from campaigns.services import webhook_log
    from campaigns.services.webhook_log import apply_received

    # The four workers are this test's threads: no worker process of the session is woken to
    # take the requests from under them.
    monkeypatch.setattr(webhook_log, "nudge", lambda: None)

    url = live_server.url + provider_account.webhook_url("dlr").split("127.0.0.1:9", 1)[1]
    barrier = threading.Barrier(10)
    answers = []

    def deliver():
        barrier.wait()
        answers.append(requests.post(url, json={"id": "sim-1", "status": "delivered"}, timeout=30))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 10
    assert WebhookRequest.objects.count() == 10

    workers_barrier = threading.Barrier(4)

    def work():
        workers_barrier.wait()
        try:
            apply_received(limit=3)
            apply_received(limit=10)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert WebhookRequest.objects.filter(status="applied").count() == 10
    assert sum(WebhookRequest.objects.values_list("applied", flat=True)) == 1
    assert sent.events.filter(to_status="delivered").count() == 1


def test_the_apply_task_takes_batch_after_batch_and_pauses_only_after_a_short_one(
    client, account, provider_account, monkeypatch
):
    """Reports waiting beyond a full batch are taken at once, batch after batch; after a batch
    short of a full one the task waits `GATHER` for more to gather, and it ends once none came
    for its linger."""
    from campaigns.services import webhook_log

    monkeypatch.setattr(webhook_log, "BATCH", 5)
    url = provider_account.webhook_url("dlr")
    for i in range(12):
        MessageFactory(
            account=account,
            provider_account=provider_account,
            provider_message_id=f"sim-{i}",
            status=Status.SENT,
        )
        body = json.dumps({"id": f"sim-{i}", "status": "delivered"})
        assert client.post(url, data=body, content_type="application/json").status_code == 200
    steps = []
    real_apply, real_sleep = webhook_log.apply_received, webhook_log.time.sleep

    def apply_received(*args, **kwargs):
        steps.append(real_apply(*args, **kwargs))
        return steps[-1]

    def sleep(seconds):
        steps.append(f"pause {seconds}")
        real_sleep(seconds)

    monkeypatch.setattr(webhook_log, "apply_received", apply_received)
    monkeypatch.setattr(webhook_log.time, "sleep", sleep)
    assert webhook_log.apply_batches(budget=60, linger=0.12) == 12
    assert Message.objects.filter(status=Status.DELIVERED).count() == 12
    pause = f"pause {webhook_log.GATHER}"
    assert steps[:4] == [5, 5, 2, pause]
    assert set(steps[4:]) == {0, pause}  # nothing more came: it lingered, then ended


def live_url(live_server, provider_account) -> str:
    return live_server.url + provider_account.webhook_url("dlr").split("127.0.0.1:9", 1)[1]


def post_while_the_first_waits(url: str, provider_ids: list[str]) -> dict[str, int]:
    """A report posted for each id over HTTP: the first alone, its INSERT kept waiting by a lock
    another connection holds, the others once it is writing; the lock is released once they all
    wait behind it. The status code each was answered (PostgreSQL only)."""
    import psycopg

    from campaigns.services import webhook_log

    table, answers = WebhookRequest._meta.db_table, {}

    def deliver(provider_id):
        report = {"id": provider_id, "status": "delivered"}
        answers[provider_id] = requests.post(url, json=report).status_code

    posts = [threading.Thread(target=deliver, args=(provider_id,)) for provider_id in provider_ids]
    with psycopg.connect(**connection.get_connection_params()) as blocker:
        blocker.execute(f'LOCK TABLE "{table}" IN SHARE MODE')  # no INSERT until committed
        posts[0].start()
        wait_for(lambda: webhook_log._group._writing)
        for post in posts[1:]:
            post.start()
        wait_for(lambda: len(webhook_log._group._waiting) == len(posts) - 1)
    for post in posts:
        post.join()
    return answers


def stored_ids() -> list[str]:
    bodies = WebhookRequest.objects.values_list("body", flat=True)
    return sorted(json.loads(body)["id"] for body in bodies)


@pytest.mark.django_db(transaction=True)
def test_requests_arriving_while_one_is_stored_are_stored_together(
    live_server, provider_account, monkeypatch
):
    """While one request's INSERT waits (here on a lock another connection holds), the requests
    arriving meanwhile wait for it, then are stored by one statement (one transaction: one
    xmin), each once, each answered 200."""
    if connection.vendor != "postgresql":
        pytest.skip("requests are stored together on PostgreSQL")
    from campaigns.services import webhook_log

    monkeypatch.setattr(webhook_log, "nudge", lambda: None)
    ids = [f"sim-{i}" for i in range(6)]
    answers = post_while_the_first_waits(live_url(live_server, provider_account), ids)
    assert answers == dict.fromkeys(ids, 200)
    assert stored_ids() == ids
    with connection.cursor() as cursor:
        table = WebhookRequest._meta.db_table
        cursor.execute(f'SELECT count(DISTINCT xmin::text) FROM "{table}"')  # noqa: S608
        assert cursor.fetchone()[0] == 2  # the first alone, the five that waited together


@pytest.mark.django_db(transaction=True)
def test_a_request_the_database_refuses_fails_alone_not_its_group(
    live_server, provider_account, monkeypatch
):
    """If the statement storing a group fails, each of its requests is stored alone: only the
    one the database refuses (here by a constraint this test adds) is answered 503."""
    if connection.vendor != "postgresql":
        pytest.skip("requests are stored together on PostgreSQL")
    from campaigns.services import webhook_log

    monkeypatch.setattr(webhook_log, "nudge", lambda: None)
    table = WebhookRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{table}" ADD CONSTRAINT test_poison CHECK (body NOT LIKE %s)',
            ["%poison%"],
        )
    try:
        answers = post_while_the_first_waits(
            live_url(live_server, provider_account), ["sim-0", "sim-1", "poison", "sim-3"]
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT test_poison')
    assert answers == {"sim-0": 200, "sim-1": 200, "poison": 503, "sim-3": 200}
    assert stored_ids() == ["sim-0", "sim-1", "sim-3"]


@pytest.mark.django_db(transaction=True)
def test_requests_stored_together_are_refused_once_their_account_changed(
    live_server, provider_account, monkeypatch
):
    """The account check holds for requests stored together as for one stored alone."""
    from campaigns.services import webhook_log

    monkeypatch.setattr(webhook_log, "nudge", lambda: None)
    url = live_url(live_server, provider_account)
    report = {"id": "sim-1", "status": "delivered"}
    assert requests.post(url, json=report).status_code == 200  # remembered by the server
    ProviderAccount.objects.filter(pk=provider_account.pk).update(enabled=False)
    assert requests.post(url, json=report).status_code == 404
    assert WebhookRequest.objects.count() == 1


# --- stored requests read again by workers: never a crash --------------------------------------

DEEP = "[" * 50_000


@pytest.fixture
def expertflow(account):
    return ProviderAccountFactory(
        name="Expertflow", slug="expertflow", credentials={"channel": "x"}
    )


def stored(provider_account, kind: str, body: str) -> WebhookRequest:
    """A request as an older hub (or a bug) left it: stored as received, never read."""
    return WebhookRequest.objects.create(
        provider_account=provider_account, kind=kind, content_type="application/json", body=body
    )


def test_the_worker_marks_a_stored_request_it_cannot_read_failed_and_goes_on(
    sent, provider_account, expertflow
):
    unreadable = [
        stored(provider_account, "dlr", DEEP),
        stored(provider_account, "inbound", DEEP),
        stored(expertflow, "queue", DEEP),
    ]
    good = stored(provider_account, "dlr", json.dumps({"id": "sim-1", "status": "delivered"}))

    assert apply_webhooks() == 4

    for log in unreadable:
        log.refresh_from_db()
        assert (log.status, log.error) == ("failed", "the body is nested too deeply to be read")
    good.refresh_from_db()
    assert good.status == "applied"
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED


def test_replaying_a_request_no_adapter_can_read_answers_why(provider_account):
    from campaigns.services import webhook_log

    log = stored(provider_account, "dlr", '{"a":' * 50_000)
    result = webhook_log.replay(log)
    assert result.error == "the body is nested too deeply to be read"
    log.refresh_from_db()
    assert (log.status, log.error, log.replays) == ("failed", result.error, 1)


def test_the_queue_consumer_keeps_an_unreadable_report_with_its_reason(expertflow):
    from campaigns.management.commands.consume_delivery_reports import Command

    class Connection:
        acked: list[str] = []

        def ack(self, message_id, subscription):
            self.acked.append(message_id)

    frame = SimpleNamespace(headers={"message-id": "m-1", "subscription": "smshub"}, body=DEEP)
    connection = Connection()
    Command()._handle(connection, expertflow, frame)

    log = WebhookRequest.objects.get()
    assert (log.kind, log.status) == ("queue", "failed")
    assert log.error == "the body is nested too deeply to be read"
    assert connection.acked == ["m-1"]  # kept: the broker need not deliver it again


# --- replies polled from a provider (Ogangi) -----------------------------------------------------


@pytest.fixture
def ogangi(account):
    from tests.providers.test_ogangi import BASE, CREDENTIALS

    ogangi = ProviderAccountFactory(
        name="Ogangi", slug="ogangi", base_url=BASE + "/", credentials=CREDENTIALS
    )
    account.route_entries.create(position=2, provider_account=ogangi)
    return ogangi


def test_a_polled_reply_dated_out_of_range_is_kept_with_the_time_received(account, ogangi):
    from tests.providers.test_ogangi import mo, mo_answer, mo_url

    before = timezone.now()
    answer = mo_answer(mo("Yes", "+40740123456", "9999-12-31T23:59:59-05:00"))
    with responses.RequestsMock() as rsps:
        rsps.get(mo_url(1), body=answer)
        assert polling.poll(ogangi) == 1
    reply = Reply.objects.get()
    assert before <= reply.received_at <= timezone.now()


def test_an_answer_the_adapter_cannot_read_stops_neither_this_poll_nor_the_next(
    ogangi, monkeypatch
):
    from providers.ogangi import OgangiProvider

    def unreadable(self, cursor=""):
        raise RecursionError("maximum recursion depth exceeded while decoding")

    monkeypatch.setattr(OgangiProvider, "fetch_inbound", unreadable)
    assert tasks.poll_inbound() == 0
    ogangi.refresh_from_db()
    assert ogangi.inbound_cursor == ""  # the same replies are asked for again next time


def test_a_report_that_cannot_be_applied_keeps_no_other_waiting(
    client, account, provider_account, database_refusing_bad
):
    for provider_id in ("bad", "good"):
        MessageFactory(
            account=account,
            provider_account=provider_account,
            provider_message_id=provider_id,
            status=Status.SENT,
        )
    url = provider_account.webhook_url("dlr")
    for provider_id in ("bad", "good"):
        body = json.dumps({"id": provider_id, "status": "delivered"})
        assert client.post(url, data=body, content_type="application/json").status_code == 200
    apply_webhooks()
    assert Message.objects.get(provider_message_id="good").status == Status.DELIVERED
    assert Message.objects.get(provider_message_id="bad").status == Status.SENT
    failed = WebhookRequest.objects.get(status=WebhookRequest.Status.FAILED)
    assert "could not be applied" in failed.error
    assert not WebhookRequest.objects.filter(status=WebhookRequest.Status.RECEIVED).exists()


def test_each_request_of_a_batch_keeps_its_own_outcome(client, account, provider_account):
    """Requests applied together (one batch) are each marked with what became of them."""
    other = ProviderAccountFactory(name="Other simulator")
    for provider, provider_id in [(provider_account, "a"), (provider_account, "b"), (other, "c")]:
        MessageFactory(
            account=account,
            provider_account=provider,
            provider_message_id=provider_id,
            status=Status.SENT,
        )
    requests_made = [
        (provider_account, [{"id": "a", "status": "delivered"}, {"id": "b", "status": "failed"}]),
        (provider_account, {"id": "a", "status": "delivered"}),  # a duplicate: changes nothing
        (provider_account, {"id": "nobody", "status": "delivered"}),  # no such message yet
        (other, {"id": "c", "status": "delivered"}),
    ]
    for provider, body in requests_made:
        url = provider.webhook_url("dlr")
        response = client.post(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200
    assert apply_webhooks() == 4
    outcomes = list(
        WebhookRequest.objects.order_by("id").values_list("status", "events", "applied")
    )
    assert outcomes == [
        ("applied", 2, 2),
        ("applied", 1, 0),
        ("unmatched", 1, 0),
        ("applied", 1, 1),
    ]
    assert all(log.processed_at for log in WebhookRequest.objects.all())
    statuses = dict(Message.objects.values_list("provider_message_id", "status"))
    assert statuses == {"a": Status.DELIVERED, "b": Status.FAILED, "c": Status.DELIVERED}


# --- a batch of reports, applied together ------------------------------------------------------


def store_report(client, provider_account, body) -> None:
    """Post as the provider would; nothing is applied until `apply_webhooks()`."""
    response = client.post(
        provider_account.webhook_url("dlr"), data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content


def sent_messages(account, provider_account, prefix: str, count: int) -> list[Message]:
    return [
        MessageFactory(
            account=account,
            provider_account=provider_account,
            provider_message_id=f"{prefix}{i}",
            status=Status.SENT,
        )
        for i in range(count)
    ]


def test_a_batch_of_reports_moves_each_message_with_its_own_values(
    client, account, provider_account, django_assert_max_num_queries
):
    """Forty reports applied by one worker run: each message gets its own status, time and
    error code and one event; each request counts its report applied. On PostgreSQL the moves
    take one statement per kind of move, not one per report."""
    messages = sent_messages(account, provider_account, "sim-b", 40)
    for i in range(40):
        report = {"id": f"sim-b{i}", "status": "delivered" if i % 4 else "undelivered"}
        stamp = {"timestamp": f"2026-11-21T10:{i:02d}:00.1234{i:02d}Z"}  # to the microsecond
        report |= stamp if i % 4 else {"error_code": "E1"}
        store_report(client, provider_account, report)
    limit = 15 if connections["default"].vendor == "postgresql" else 100
    with django_assert_max_num_queries(limit):
        assert apply_webhooks() == 40
    for i, message in enumerate(messages):
        message.refresh_from_db()
        [event] = message.events.all()
        assert (event.from_status, event.source) == (Status.SENT, "webhook")
        if i % 4:
            assert message.status == event.to_status == Status.DELIVERED
            assert message.delivered_at.isoformat() == f"2026-11-21T10:{i:02d}:00.1234{i:02d}+00:00"
            assert message.error_code == ""
        else:
            assert message.status == event.to_status == Status.UNDELIVERED
            assert message.error_code == "E1" and message.delivered_at is None
        assert event.payload["id"] == f"sim-b{i}"
    logs = WebhookRequest.objects.all()
    assert {(log.status, log.events, log.applied) for log in logs} == {
        (WebhookRequest.Status.APPLIED, 1, 1)
    }


def test_a_batchs_messages_are_matched_with_their_account_read_once(
    account, provider_account, django_assert_num_queries
):
    sent_messages(account, provider_account, "sim-m", 3)
    with django_assert_num_queries(2):  # the messages, then their account
        found = match([provider_account.pk], [f"sim-m{i}" for i in range(4)])
    assert sorted(key[1] for key in found) == ["sim-m0", "sim-m1", "sim-m2"]  # sim-m3: none
    with django_assert_num_queries(0):
        accounts = {id(message.account) for message in found.values()}
        assert [message.account.name for message in found.values()] == [account.name] * 3
    assert len(accounts) == 1


def test_two_reports_for_one_message_in_a_batch_move_it_in_turn(client, account, provider_account):
    """`sent` then `delivered` for a message whose send result never came (unknown), in one
    request: both moves on its timeline, in order, and the furthest status kept; a repeated
    report in another request of the batch changes nothing."""
    message = MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="sim-d1",
        status=Status.UNKNOWN,
    )
    store_report(
        client,
        provider_account,
        [{"id": "sim-d1", "status": "sent"}, {"id": "sim-d1", "status": "delivered"}],
    )
    store_report(client, provider_account, {"id": "sim-d1", "status": "delivered"})
    assert apply_webhooks() == 2
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    moves = [(e.from_status, e.to_status) for e in message.events.order_by("at", "id")]
    assert moves == [(Status.UNKNOWN, Status.SENT), (Status.SENT, Status.DELIVERED)]
    first, second = WebhookRequest.objects.order_by("id")
    assert (first.events, first.applied, second.events, second.applied) == (2, 2, 1, 0)


def test_a_message_another_writer_moved_meanwhile_keeps_that_writers_status(
    client, account, provider_account, monkeypatch
):
    """Between the batch reading its messages and writing their moves, the expiry sweep moves
    one of them: that one stays as the sweep left it, without the report's event, and its
    request counts nothing applied; the others move."""
    from campaigns.services import lifecycle

    expired, delivered = sent_messages(account, provider_account, "sim-c", 2)
    for message in (expired, delivered):
        store_report(
            client, provider_account, {"id": message.provider_message_id, "status": "delivered"}
        )
    real_write = lifecycle.Moves.write

    def write_after_the_sweep(moves):
        Message.objects.filter(pk=expired.pk).update(status=Status.EXPIRED)
        return real_write(moves)

    monkeypatch.setattr(lifecycle.Moves, "write", write_after_the_sweep)
    assert apply_webhooks() == 2
    expired.refresh_from_db()
    delivered.refresh_from_db()
    assert (expired.status, expired.events.count()) == (Status.EXPIRED, 0)
    assert (delivered.status, delivered.events.count()) == (Status.DELIVERED, 1)
    applied = dict(WebhookRequest.objects.values_list("body", "applied"))
    assert sorted(applied.values()) == [0, 1]
    assert applied[json.dumps({"id": "sim-c0", "status": "delivered"})] == 0


def test_a_batch_forwards_each_final_status_to_the_account(
    client, account, provider_account, django_assert_max_num_queries
):
    """An account with a forward URL gets one status forward per message a batch finished,
    written together (on PostgreSQL the batch's queries do not grow with its reports)."""
    from campaigns.models import Forward

    account.forward_url = "https://example.com/sms-status"
    account.save()
    messages = sent_messages(account, provider_account, "sim-f", 30)
    for message in messages:
        report = {"id": message.provider_message_id, "status": "delivered"}
        store_report(client, provider_account, report)
    limit = 16 if connections["default"].vendor == "postgresql" else 100
    with django_assert_max_num_queries(limit):
        assert apply_webhooks() == 30
    forwards = Forward.objects.filter(account=account, event="status")
    assert sorted(f.payload["message_id"] for f in forwards) == sorted(m.pk for m in messages)
    assert {f.payload["status"] for f in forwards} == {"delivered"}
