"""Expertflow's delivery reports over a real STOMP broker (RabbitMQ's STOMP plugin in CI)."""

import json
import os
import socket
import uuid

import pytest
from django.core.management import call_command

from campaigns.models import Message, WebhookRequest

from ..factories import MessageFactory, ProviderAccountFactory

STOMP = ("127.0.0.1", int(os.environ.get("SMSHUB_STOMP_PORT", "61613")))


def _broker_up() -> bool:
    try:
        socket.create_connection(STOMP, timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.django_db,
    # Skipped only on a developer's machine without a STOMP broker; in CI a missing one fails.
    pytest.mark.skipif(
        not _broker_up() and not os.environ.get("CI"),
        reason="no STOMP broker on 127.0.0.1:61613 (rabbitmq-plugins enable rabbitmq_stomp)",
    ),
]


def publish(queue_name: str, *bodies: str) -> None:
    import stomp

    connection = stomp.Connection([STOMP])
    connection.connect("guest", "guest", wait=True)
    for body in bodies:
        connection.send(
            destination=f"/queue/{queue_name}",
            body=body,
            headers={"content-type": "application/json", "persistent": "true"},
        )
    connection.disconnect()


def consume(queue_name: str, count: int, idle: float = 10) -> None:
    call_command(
        "consume_delivery_reports",
        "--provider",
        "Expertflow",
        "--queue",
        queue_name,
        "--max-messages",
        str(count),
        "--idle-timeout",
        str(idle),
    )


def test_queued_delivery_reports_are_applied_like_webhook_ones():
    expertflow = ProviderAccountFactory(
        name="Expertflow", slug="expertflow", credentials={"channel": "smpp"}
    )
    delivered = MessageFactory(
        provider_account=expertflow, provider_message_id="SM-1", status=Message.Status.SENT
    )
    failed = MessageFactory(
        provider_account=expertflow, provider_message_id="SM-2", status=Message.Status.SENT
    )
    queue_name = f"delivery-report-test-{uuid.uuid4().hex[:8]}"
    publish(
        queue_name,
        json.dumps({"MessageSID": "SM-1", "DeliveryStatus": "DELIVERED", "ProviderStatusCode": 0}),
        json.dumps({"MessageSID": "SM-2", "DeliveryStatus": "FAILED", "ProviderStatusCode": "34"}),
        "this is not json",
    )
    consume(queue_name, 3)

    delivered.refresh_from_db()
    failed.refresh_from_db()
    assert delivered.status == Message.Status.DELIVERED
    assert (failed.status, failed.error_code) == (Message.Status.FAILED, "34")
    logs = WebhookRequest.objects.filter(kind="queue").order_by("id")
    assert [log.status for log in logs] == ["applied", "applied", "failed"]
    assert "not JSON" in logs[2].error  # kept, with its reason, for a replay

    # Everything was acknowledged: a second reader finds the queue empty.
    consume(queue_name, 1, idle=2)
    assert WebhookRequest.objects.filter(kind="queue").count() == 3
