"""Every provider end to end through the simulator on loopback: the hub sends with the real
adapter, the simulator answers as the provider's documentation says, and what the provider
documents sending back (delivery reports, replies) reaches the hub's webhooks or is polled."""

import pytest
import requests

from campaigns.models import Message, PendingDeliveryReport, Reply
from campaigns.services import polling
from campaigns.services.compose import enqueue_message

from ..conftest import apply_webhooks, dispatch_batch, wait_for
from ..factories import AccountFactory, ProviderAccountFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = Message.Status

# The credentials the simulator accepts by default, per provider.
CREDENTIALS = {
    "vortext": {"username": "vortext", "password": "vortext-secret"},
    "primotexto": {"api_key": "primotexto-key"},
    "smsadvert": {"token": "smsadvert-token"},
    "expertflow": {"channel": "sms"},
    "ogangi": {
        "instance_id": "1001",
        "public_key": "ogangi-public",
        "private_key": "ogangi-private",
    },
    "simulator": {"api_key": "simulator-key"},
}


@pytest.fixture
def hub(settings, live_server, simulator):
    settings.PUBLIC_BASE_URL = live_server.url
    yield live_server
    simulator.configure(hub_urls={slug: None for slug in CREDENTIALS})


def route_through(simulator, slug):
    provider_account = ProviderAccountFactory(
        name=slug.title(), slug=slug, base_url=simulator.url, credentials=CREDENTIALS[slug]
    )
    simulator.configure(
        hub_urls={
            slug: {
                "dlr": provider_account.webhook_url("dlr"),
                "inbound": provider_account.webhook_url("inbound"),
            }
        }
    )
    return AccountFactory(route=[provider_account]), provider_account


def send(account, to, text="Your appointment is tomorrow at 10:00", **kwargs):
    """Queue a message and send it: here, or by the session's worker that its nudge woke (which
    may hold the row while we try: then we wait for its result)."""
    message = enqueue_message(account, recipient=to, text=text, **kwargs)

    def sent_or_refused():
        dispatch_batch()
        message.refresh_from_db()
        return message.status not in (Status.QUEUED, Status.SENDING)

    wait_for(sent_or_refused, timeout=15)
    return message


def arrives(queryset):
    """Wait, applying what the webhooks stored as a worker would, until `queryset` has a row."""

    def check():
        apply_webhooks()
        return queryset.first()

    return wait_for(check, timeout=15)


def reaches(message, status):
    def check():
        apply_webhooks()  # what a worker does
        message.refresh_from_db()
        return message.status == status

    wait_for(check, timeout=15)


def test_simulator(hub, simulator):
    account, _ = route_through(simulator, "simulator")
    message = send(account, "+33612345678")
    assert message.status == Status.SENT
    reaches(message, Status.DELIVERED)


def test_simulator_reply(hub, simulator):
    account, _ = route_through(simulator, "simulator")
    message = send(account, "+33612349999")  # the simulator answers numbers ending in 9999
    reply = arrives(Reply.objects.filter(message=message))
    assert reply.from_number == "+33612349999"
    assert reply.provider_message_id.startswith("sim-mo-")


def test_smsadvert_delivery_report_through_the_per_message_callback(hub, simulator):
    account, _ = route_through(simulator, "smsadvert")
    message = send(account, "+40740123456")
    assert message.status == Status.SENT
    assert message.provider_message_id
    reaches(message, Status.DELIVERED)
    failed = send(account, "+40740120000")
    reaches(failed, Status.FAILED)


def test_vortext_send_then_a_pushed_reply(hub, simulator):
    account, provider_account = route_through(simulator, "vortext")
    message = send(account, "+33612349999")  # the simulator answers numbers ending in 9999
    assert message.status == Status.SENT
    reply = arrives(Reply.objects.filter(message=message))
    assert reply.from_number == "+33612349999"
    assert reply.provider_account == provider_account


def test_primotexto_send_records_the_cost(hub, simulator):
    account, _ = route_through(simulator, "primotexto")
    message = send(account, "+33612345678", text="a" * 161, sender="Clinic")
    assert message.status == Status.SENT
    assert message.provider_message_id.isdigit()
    assert message.cost == 2


@pytest.mark.parametrize(
    "reading",
    [{}, {"report_sid": "no", "report_to": "digits", "report_status": "MessageStatus"}],
    ids=["twilio-callback", "number-only"],
)
def test_expertflow_reports_are_matched_by_number(hub, simulator, reading):
    account, _ = route_through(simulator, "expertflow")
    simulator.configure(credentials={"expertflow": reading})
    try:
        message = send(account, "+40740123456")
        assert (message.status, message.provider_message_id) == (Status.SENT, "")
        # The connector answers no id (as documented): its report carries the number.
        reaches(message, Status.DELIVERED)
        failed = send(account, "+40740120000")
        reaches(failed, Status.UNDELIVERED)
    finally:
        simulator.configure(credentials={"expertflow": None})
    assert "Matched by number +40740123456" in message.events.last().detail


def test_expertflow_reports_without_a_number_wait_as_unmatched(hub, simulator):
    account, provider_account = route_through(simulator, "expertflow")
    simulator.configure(credentials={"expertflow": {"report_to": "none"}})
    try:
        message = send(account, "+40740123456")
        # The doc's table alone (MessageSid, SmsStatus): nothing names our message.
        pending = arrives(PendingDeliveryReport.objects.filter(provider_account=provider_account))
    finally:
        simulator.configure(credentials={"expertflow": None})
    assert pending.status == "delivered"
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_expertflow_reply_as_a_twilio_form(hub, simulator):
    account, _ = route_through(simulator, "expertflow")
    message = send(account, "+40740129999")
    reply = arrives(Reply.objects.filter(message=message))
    assert reply.from_number == "+40740129999"


def test_ogangi_send_then_replies_polled_once(hub, simulator):
    account, provider_account = route_through(simulator, "ogangi")
    message = send(account, "+584141234567", sender="4545")
    assert message.status == Status.SENT
    assert message.provider_message_id
    answer = requests.post(
        f"{simulator.url}/_simulator/replies",
        json={"provider": "ogangi", "from": "+584141234567", "to": "4545", "text": "SI"},
        timeout=5,
    )
    assert answer.status_code == 202
    assert polling.poll(provider_account) == 1
    provider_account.refresh_from_db()
    assert provider_account.inbound_cursor
    assert polling.poll(provider_account) == 0  # the cursor: nothing fetched twice
    reply = Reply.objects.get()
    assert (reply.message, reply.text, reply.from_number) == (message, "SI", "+584141234567")
