"""One SMS from compose to delivered: a real Celery worker process, the simulator on loopback, and
the hub served by a live server that the simulator calls back."""

import re
import time

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Message, MessageEvent

from ..conftest import OUTPUT, wait_for
from ..factories import MessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hub(settings, live_server, celery_worker):
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server


def send_from_compose(client, number: str, text: str):
    """What staff do on the compose page: preview, then confirm that preview."""
    form = {"when": "now", "compose_id": "skeleton", "recipients": number, "text": text}
    shown = client.post(reverse("campaigns:compose"), {**form, "action": "preview"})
    previewed = re.search(r'name="previewed" value="([0-9a-f]+)"', shown.content.decode())
    assert previewed, "the compose page showed no preview"
    return client.post(
        reverse("campaigns:compose"),
        {**form, "action": "confirm", "previewed": previewed.group(1)},
    )


def test_an_sms_goes_from_compose_to_delivered(hub, operator_client, simulator):
    response = send_from_compose(operator_client, "+33612345678", "Walking skeleton")
    assert response.status_code == 302
    message = Message.objects.get()

    def final_status():
        message.refresh_from_db()
        return message.status if message.status == Message.Status.DELIVERED else None

    wait_for(final_status, timeout=30)
    assert message.provider_message_id.startswith("sim-")
    assert [e.to_status for e in message.events.order_by("at", "id")] == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]
    sent = [e for e in simulator.requests_log if e.get("path") == "/simulator/messages"]
    assert sent[-1]["body"]["reference"] == str(message.pk)
    callbacks = [e for e in simulator.requests_log if e.get("kind") == "callback"]
    assert callbacks[-1]["response_status"] == 200


def test_a_number_the_network_cannot_reach_ends_undelivered(hub, operator_client):
    send_from_compose(operator_client, "+33612340000", "Nobody home")
    message = Message.objects.get()

    def final():
        message.refresh_from_db()
        return message.is_final

    wait_for(final, timeout=30)
    assert message.status == Message.Status.UNDELIVERED
    assert message.error_code == "UNREACHABLE"


def test_the_beat_sweep_sends_what_no_nudge_announced(hub, account):
    """A message queued behind the dispatcher's back (a lost nudge, a broker restart) is found
    by the sweep that beat runs every few seconds."""
    from campaigns.tasks import sweep

    message = MessageFactory(account=account, text="Found by the sweep")
    swept = [0.0]

    def delivered():
        if time.monotonic() - swept[0] > 3:  # beat's schedule
            sweep.delay()
            swept[0] = time.monotonic()
        message.refresh_from_db()
        return message.status == Message.Status.DELIVERED

    wait_for(delivered, timeout=30)


def test_a_large_campaigns_cancel_is_finished_by_a_worker(hub, account, monkeypatch):
    """Staff wait for the first chunks of a large campaign's cancel only; the worker cancels the
    rest (`campaigns.cancel_waiting`), and none of its messages is sent."""
    from campaigns.services import campaign_control

    monkeypatch.setattr(campaign_control, "CANCEL_CHUNK", 2)
    monkeypatch.setattr(campaign_control, "CANCEL_IN_REQUEST", 2)
    campaign = Campaign.objects.create(account=account, name="Too big", status="paused")
    for i in range(7):
        MessageFactory(account=account, campaign=campaign, recipient=f"+336123456{i:02d}")
    # Two canceled here, the worker may already be at the others: it alone cancels them.
    assert campaign_control.cancel(campaign) == 7

    def all_canceled():
        return set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
            "canceled"
        }

    wait_for(all_canceled, timeout=30)
    assert (
        MessageEvent.objects.filter(message__campaign=campaign, to_status="canceled").count() == 7
    )
    assert not MessageEvent.objects.filter(message__campaign=campaign, to_status="sending").exists()


def test_each_worker_process_leaves_its_start_up_objects_out_of_garbage_collection(hub):
    """What the collector would walk again and again in every round (Django, the models, the
    tasks) is frozen in each of the worker's two processes (`smshub.celery`)."""
    log = OUTPUT / "celery-worker.log"
    line = re.compile(r"worker process (\d+): (\d+) start-up objects left out of garbage")

    def frozen():
        found = {int(pid): int(n) for pid, n in line.findall(log.read_text())}
        return found if len(found) == 2 else None

    assert all(count > 10_000 for count in wait_for(frozen, timeout=20).values())


def test_a_dispatch_task_that_expired_unstarted_gives_its_slot_back(hub):
    """Workers busy longer than a dispatch task's `expires` discard it unstarted: its slot is
    free again at once (not when it times out), so new messages publish a task."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from campaigns.services import wake

    slot = 7
    wake.hold_slot(slot)  # as publishing it did
    wake.wake(wake.DISPATCH_TASK, slot, expires=timezone.now() - timedelta(seconds=1))
    # Well before the slot would time out on its own (`wake.slot_timeout`, 15 s here).
    wait_for(lambda: cache.get(wake.slot_key(slot)) is None, timeout=wake.slot_timeout() / 3)
    log = (OUTPUT / "celery-worker.log").read_text()
    assert "Discarding revoked task: campaigns.dispatch" in log
