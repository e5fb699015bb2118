"""Replies through the webhooks: threaded onto their message, STOP honoured, forwarded signed."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from campaigns.models import Forward, Message, OptOut, Reply, RouteEntry, WebhookRequest
from campaigns.services import forwarding, webhook_log
from campaigns.services.compose import enqueue_message
from campaigns.services.inbound import keyword

from ..conftest import apply_webhooks, dispatch_batch
from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status


@pytest.fixture
def vortext(db):
    return ProviderAccountFactory(
        name="Vortext",
        slug="vortext",
        base_url="https://messages.cloud.cegedim.com",
        credentials={"username": "hub", "password": "secret-password"},
    )


@pytest.fixture
def expertflow(db):
    return ProviderAccountFactory(
        name="Expertflow",
        slug="expertflow",
        base_url="http://localhost:8080",
        credentials={"channel": "smpp"},
    )


def sent_message(provider_account, **kwargs):
    account = kwargs.pop("account", None) or AccountFactory(route=[provider_account])
    return MessageFactory(
        account=account,
        provider_account=provider_account,
        status=Status.DELIVERED,
        sent_at=timezone.now() - timedelta(hours=1),
        **kwargs,
    )


def vortext_reply(client, vortext, content, original):
    body = {
        "response": {"content": content, "answeredAt": "2026-11-21T13:00:00.000+0000"},
        "message": original,
    }
    response = client.post(
        vortext.webhook_url("inbound"), data=json.dumps(body), content_type="application/json"
    )
    apply_webhooks()
    return response


def twilio_reply(client, expertflow, body, sid="SM1", sender="+40740123456"):
    response = client.post(
        expertflow.webhook_url("inbound"),
        {"Body": body, "From": sender, "To": "1234", "SmsSid": sid},
    )
    apply_webhooks()
    return response


def test_a_vortext_reply_is_linked_to_the_message_it_answers(client, vortext):
    message = sent_message(vortext, provider_message_id="vx-42", recipient="+33612345678")
    response = vortext_reply(
        client,
        vortext,
        "Response of your customer",
        {"messageId": "vx-42", "phoneNumber": "+33612345678"},
    )
    assert response.status_code == 200
    reply = Reply.objects.get()
    assert (reply.message, reply.account) == (message, message.account)
    assert (reply.from_number, reply.text) == ("+33612345678", "Response of your customer")
    assert reply.received_at.isoformat() == "2026-11-21T13:00:00+00:00"
    assert "Reply received" in message.events.last().detail


def test_the_vortext_docs_own_example_is_kept_from_an_unknown_number(client, vortext):
    """The doc's push names neither the number nor the message: the reply belongs to the one
    account sending through the provider account, from an unknown number, at its time."""
    message = sent_message(vortext, provider_message_id="vx-42")
    response = vortext_reply(client, vortext, "Response of your customer", {})
    assert response.status_code == 200
    reply = Reply.objects.get()
    assert (reply.account, reply.message, reply.from_number) == (message.account, None, "")
    assert reply.text == "Response of your customer"
    assert reply.received_at.isoformat() == "2026-11-21T13:00:00+00:00"
    assert WebhookRequest.objects.get().status == "applied"
    assert str(reply) == "Reply from an unknown number"


def test_a_stop_from_an_unknown_number_opts_no_one_out(client, vortext):
    message = sent_message(vortext, provider_message_id="vx-42", recipient="+33612345678")
    vortext_reply(client, vortext, "STOP", {})
    assert Reply.objects.get().text == "STOP"
    assert not OptOut.objects.exists()
    assert not message.events.filter(detail__contains="Reply received").exists()


def test_a_reply_from_an_unknown_number_is_forwarded_with_an_empty_sender(
    client, vortext, receiver
):
    account = AccountFactory(route=[vortext], forward_url=receiver.url)
    vortext_reply(client, vortext, "Response of your customer", {})
    forward = Forward.objects.get(account=account, event="reply")
    assert (forward.payload["from"], forward.payload["message_id"]) == ("", None)
    assert forward.payload["text"] == "Response of your customer"


@pytest.mark.parametrize("routed", [0, 2])
def test_an_unknown_number_nobody_can_own_is_kept_failed_with_the_reason(client, vortext, routed):
    for _ in range(routed):
        AccountFactory(route=[vortext])
    response = vortext_reply(client, vortext, "Response of your customer", {})
    assert response.status_code == 200  # readable: stored, then refused when applied
    log = WebhookRequest.objects.get()
    assert (log.kind, log.status) == ("inbound", "failed")
    assert "a reply from an unknown number answers no message" in log.error
    assert "no account, or more than one, sends through Vortext" in log.error
    assert not Reply.objects.exists()

    # Once one account sends through it, replaying the request keeps the reply.
    RouteEntry.objects.filter(provider_account=vortext).delete()
    account = AccountFactory(route=[vortext])
    assert webhook_log.replay(log).applied == 1
    assert Reply.objects.get().account == account


def test_a_twilio_style_reply_goes_to_the_latest_message_to_that_number(client, expertflow):
    account = AccountFactory(route=[expertflow])
    sent_message(expertflow, account=account, recipient="+40740123456", text="older")
    latest = sent_message(expertflow, account=account, recipient="+40740123456", text="newer")
    sent_message(expertflow, account=account, recipient="+40740999999")
    assert twilio_reply(client, expertflow, "Da, confirm").status_code == 200
    reply = Reply.objects.get()
    assert reply.message == latest
    assert (reply.from_number, reply.to_number, reply.provider_message_id) == (
        "+40740123456",
        "1234",
        "SM1",
    )


def test_a_reply_after_the_window_is_kept_but_not_threaded(client, expertflow):
    account = AccountFactory(route=[expertflow], reply_window_hours=1)
    MessageFactory(
        account=account,
        provider_account=expertflow,
        recipient="+40740123456",
        status=Status.DELIVERED,
        sent_at=timezone.now() - timedelta(hours=2),
    )
    twilio_reply(client, expertflow, "Late answer")
    reply = Reply.objects.get()
    assert reply.message is None
    assert reply.account == account


def test_the_same_reply_twice_is_stored_once(client, expertflow):
    sent_message(expertflow, recipient="+40740123456")
    twilio_reply(client, expertflow, "Hello", sid="SM9")
    twilio_reply(client, expertflow, "Hello", sid="SM9")
    assert Reply.objects.count() == 1
    assert list(WebhookRequest.objects.order_by("id").values_list("applied", flat=True)) == [1, 0]


def test_a_reply_nobody_can_own_is_kept_failed_with_the_reason(client, expertflow):
    response = twilio_reply(client, expertflow, "Who are you?")
    assert response.status_code == 200  # readable: stored, then refused when applied
    log = WebhookRequest.objects.get()
    assert log.status == "failed"
    assert "no account, or more than one, sends through Expertflow" in log.error
    assert not Reply.objects.exists()


def test_a_reply_to_a_shared_provider_account_goes_to_the_account_that_wrote_to_the_number(
    client, expertflow
):
    """Two accounts send through one provider account: a reply that answers no message within
    a reply window goes to the account that last wrote to that number, never to another."""
    first = AccountFactory(route=[expertflow], reply_window_hours=1)
    second = AccountFactory(route=[expertflow], reply_window_hours=1)
    MessageFactory(
        account=second,
        provider_account=expertflow,
        recipient="+40740123456",
        status=Status.DELIVERED,
        sent_at=timezone.now() - timedelta(hours=5),
    )
    twilio_reply(client, expertflow, "STOP", sid="SM1")
    reply = Reply.objects.get()
    assert (reply.account, reply.message) == (second, None)
    assert OptOut.objects.filter(account=second).exists()
    assert not OptOut.objects.filter(account=first).exists()

    # A number neither account ever wrote to: whose reply it is cannot be told; none guessed.
    twilio_reply(client, expertflow, "Hello?", sid="SM2", sender="+40740999888")
    assert Reply.objects.count() == 1
    failed = WebhookRequest.objects.order_by("id").last()
    assert failed.status == "failed" and "more than one" in failed.error


def test_a_malformed_twilio_form_is_a_400(client, expertflow):
    response = client.post(expertflow.webhook_url("inbound"), {"Body": "no sender"})
    assert response.status_code == 400
    assert not Reply.objects.exists()


@pytest.mark.parametrize(
    "text", ["STOP", "stop", " Stop SMS! ", "ARRÊT", "Dezabonare", "unsubscribe"]
)
def test_stop_keywords_opt_the_number_out(client, expertflow, text):
    message = sent_message(expertflow, recipient="+40740123456")
    twilio_reply(client, expertflow, text)
    opt_out = OptOut.objects.get()
    assert (opt_out.account, opt_out.number, opt_out.source) == (
        message.account,
        "+40740123456",
        "reply",
    )


@pytest.mark.parametrize("text", ["stop calling me after 6", "Please STOP the 2pm slot", "Top"])
def test_words_that_only_contain_stop_do_not_opt_out(client, expertflow, text):
    sent_message(expertflow, recipient="+40740123456")
    twilio_reply(client, expertflow, text)
    assert not OptOut.objects.exists()


def test_start_opts_back_in(client, expertflow):
    sent_message(expertflow, recipient="+40740123456")
    twilio_reply(client, expertflow, "STOP", sid="SM1")
    assert OptOut.objects.exists()
    twilio_reply(client, expertflow, "start", sid="SM2")
    assert not OptOut.objects.exists()


def test_an_opted_out_number_is_never_sent_to_again(account, simulator):
    OptOut.objects.create(account=account, number="+33612345678")
    text = "Promo, only for the opt-out test"
    message = enqueue_message(account, recipient="+33612345678", text=text)
    other = enqueue_message(account, recipient="+33612345679", text=text)
    dispatch_batch()
    message.refresh_from_db()
    other.refresh_from_db()
    assert message.status == Status.BLOCKED
    assert "opted out" in message.error_reason
    assert other.status == Status.SENT
    bodies = [e["body"] for e in simulator.requests_log if isinstance(e.get("body"), dict)]
    assert [b["to"] for b in bodies if b.get("text") == text] == ["+33612345679"]


def test_keyword_normalisation():
    assert keyword("  Arrêt  SMS. ") == "ARRET SMS"
    assert keyword("dézabonare!") == "DEZABONARE"


# --- forwarding --------------------------------------------------------------------------------


class Receiver:
    """A small HTTP server standing for the account's own system."""

    def __init__(self, answers):
        self.answers, self.received = list(answers), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/smshub-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver([500])
    yield server
    server.close()


def test_replies_are_forwarded_signed_and_retried_until_taken(client, expertflow, receiver):
    message = sent_message(expertflow, recipient="+40740123456")
    account = message.account
    account.forward_url = receiver.url
    account.save()
    twilio_reply(client, expertflow, "Yes, see you then")
    forward = Forward.objects.get(event="reply")

    assert forwarding.deliver_due() == 0  # the receiver answers 500 the first time
    forward.refresh_from_db()
    assert (forward.status, forward.attempts) == ("pending", 1)
    assert forward.next_attempt_at > timezone.now()
    assert forward.attempt_log.get().response_status == 500
    assert forwarding.deliver_due() == 0  # not due yet: nothing is sent early
    assert len(receiver.received) == 1

    Forward.objects.update(next_attempt_at=timezone.now())
    assert forwarding.deliver_due() == 1
    forward.refresh_from_db()
    assert (forward.status, forward.attempts) == ("delivered", 2)
    headers, body = receiver.received[-1]
    expected = hmac.new(account.forward_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-SMSHub-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["event"] == "reply"
    assert (payload["message_id"], payload["from"], payload["text"]) == (
        message.pk,
        "+40740123456",
        "Yes, see you then",
    )


def test_final_statuses_are_forwarded(client, account, provider_account, receiver):
    account.forward_url = receiver.url
    account.save()
    message = MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="sim-7",
        status=Status.SENT,
    )
    client.post(
        provider_account.webhook_url("dlr"),
        data=json.dumps({"id": "sim-7", "status": "delivered"}),
        content_type="application/json",
    )
    apply_webhooks()
    forward = Forward.objects.get()
    assert forward.payload["status"] == "delivered"
    assert forward.payload["message_id"] == message.pk


def test_forwarding_gives_up_after_the_configured_attempts(settings, account, receiver):
    settings.SMSHUB_FORWARD_MAX_ATTEMPTS = 2
    receiver.answers = [500, 500, 500]
    account.forward_url = receiver.url
    account.save()
    forward = Forward.objects.create(account=account, event="status", payload={"x": 1})
    forwarding.deliver_due()
    Forward.objects.update(next_attempt_at=timezone.now())
    forwarding.deliver_due()
    forward.refresh_from_db()
    assert (forward.status, forward.attempts) == ("failed", 2)
    assert forward.attempt_log.count() == 2
