"""Retention: old final rows go in small batches, everything else stays, campaign counts stay
right, and purged rows can be exported first."""

import csv
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import tasks
from campaigns.models import (
    Campaign,
    Forward,
    ForwardAttempt,
    Message,
    MessageEvent,
    PendingDeliveryReport,
    Reply,
    WebhookRequest,
)
from campaigns.services import campaign_control, retention

from ..factories import AccountFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

Status = Message.Status
NOW = timezone.now()
OLD = NOW - timedelta(days=401)  # past the 400-day default
RECENT = NOW - timedelta(days=10)
OLD_LOG = NOW - timedelta(days=31)  # past the 30-day default for logs


@pytest.fixture(autouse=True)
def ages(settings):
    settings.SMSHUB_RETENTION_DAYS = 400
    settings.SMSHUB_LOG_RETENTION_DAYS = 30
    settings.SMSHUB_RETENTION_EXPORT_DIR = ""


@pytest.fixture
def world():
    """A campaign with old and recent messages in every kind of status, and the logs around."""
    provider = ProviderAccountFactory()
    account = AccountFactory(route=[provider])
    campaign = Campaign.objects.create(account=account, name="Spring", text="Hi")
    n = iter(range(100))

    def message(status, created_at, **kwargs):
        return MessageFactory(
            account=account,
            campaign=campaign,
            recipient=f"+336123456{next(n):02d}",
            status=status,
            created_at=created_at,
            provider_account=provider,
            **kwargs,
        )

    old_final = [
        message(Status.DELIVERED, OLD),
        message(Status.DELIVERED, OLD - timedelta(days=1)),
        message(Status.FAILED, OLD, error_reason="refused"),
        message(Status.UNDELIVERED, OLD),
        message(Status.CANCELED, OLD),
    ]
    # Sent without a report, or unknown: as done as a delivered one past the retention age.
    old_without_outcome = [message(Status.SENT, OLD), message(Status.UNKNOWN, OLD)]
    old_unfinished = [message(Status.QUEUED, OLD), message(Status.SCHEDULED, OLD)]
    recent = [message(Status.DELIVERED, RECENT), message(Status.QUEUED, RECENT)]
    lonely = MessageFactory(account=account, status=Status.DELIVERED, created_at=OLD)
    for m in [*old_final, *old_without_outcome, *old_unfinished, *recent]:
        MessageEvent.objects.create(
            message=m, at=m.created_at, from_status="queued", to_status=m.status, source="system"
        )
    replies = {
        "old": Reply.objects.create(
            account=account, message=old_final[0], from_number="+33612345600", received_at=OLD
        ),
        "recent_to_old": Reply.objects.create(
            account=account, message=old_final[1], from_number="+33612345601", received_at=RECENT
        ),
    }
    forwards = {
        "old_done": Forward.objects.create(
            account=account, event="reply", payload={"text": "hi"}, status="delivered"
        ),
        "old_pending": Forward.objects.create(account=account, event="reply", payload={}),
        "recent": Forward.objects.create(account=account, event="reply", payload={}),
    }
    Forward.objects.filter(pk__in=[forwards["old_done"].pk, forwards["old_pending"].pk]).update(
        created_at=OLD
    )
    ForwardAttempt.objects.create(forward=forwards["old_done"], url="http://127.0.0.1:9/", at=OLD)
    logs = {
        "old_applied": WebhookRequest.objects.create(
            provider_account=provider, kind="dlr", body="{}", status="applied", received_at=OLD_LOG
        ),
        "old_unapplied": WebhookRequest.objects.create(
            provider_account=provider, kind="dlr", body="{}", status="received", received_at=OLD_LOG
        ),
        "recent": WebhookRequest.objects.create(
            provider_account=provider, kind="dlr", body="{}", status="applied", received_at=RECENT
        ),
    }
    pending = {
        "old": PendingDeliveryReport.objects.create(
            provider_account=provider,
            provider_message_id="gone-1",
            status="delivered",
            webhook_request=logs["old_applied"],
            received_at=OLD_LOG,
        ),
        "recent": PendingDeliveryReport.objects.create(
            provider_account=provider,
            provider_message_id="soon-1",
            status="delivered",
            received_at=RECENT,
        ),
    }
    return {
        "campaign": campaign,
        "old_final": old_final,
        "old_unfinished": old_unfinished,
        "recent": recent,
        "lonely": lonely,
        "replies": replies,
        "forwards": forwards,
        "logs": logs,
        "pending": pending,
    }


def ids(objs) -> set[int]:
    return {o.pk for o in objs}


def test_old_final_rows_go_and_everything_else_stays(world):
    purged = retention.purge(now=NOW, batch_size=2)

    assert purged == {
        "messages": 8,  # the campaign's seven old done ones and the lonely one
        "replies": 1,
        "forwards": 1,
        "webhook_requests": 1,
        "unmatched_delivery_reports": 1,
    }
    kept = ids(world["old_unfinished"]) | ids(world["recent"])
    assert set(Message.objects.values_list("pk", flat=True)) == kept
    assert set(MessageEvent.objects.values_list("message_id", flat=True)) == kept
    # A recent reply to a purged message stays, without its link.
    assert list(Reply.objects.values_list("pk", "message_id")) == [
        (world["replies"]["recent_to_old"].pk, None)
    ]
    assert set(Forward.objects.values_list("pk", flat=True)) == {
        world["forwards"]["old_pending"].pk,
        world["forwards"]["recent"].pk,
    }
    assert not ForwardAttempt.objects.exists()
    assert set(WebhookRequest.objects.values_list("pk", flat=True)) == {
        world["logs"]["old_unapplied"].pk,
        world["logs"]["recent"].pk,
    }
    assert list(PendingDeliveryReport.objects.values_list("pk", flat=True)) == [
        world["pending"]["recent"].pk
    ]


def test_campaign_counts_are_the_same_after_a_purge(world):
    campaign = world["campaign"]
    before = campaign_control.counts(Campaign.objects.get(pk=campaign.pk))
    assert (before["delivered"], before["total"]) == (3, 11)

    retention.purge(now=NOW, batch_size=2)
    retention.purge(now=NOW, batch_size=2)  # a second run finds nothing more to count

    campaign = Campaign.objects.get(pk=campaign.pk)
    assert campaign.messages.count() == 4
    assert campaign.archived_counts == {
        "delivered": 2,
        "failed": 1,
        "undelivered": 1,
        "canceled": 1,
        "sent": 1,
        "unknown": 1,
    }
    assert campaign_control.counts(campaign) == before


def test_messages_are_deleted_in_small_batches(world):
    with CaptureQueriesContext(connection) as queries:
        retention.purge(now=NOW, batch_size=2)
    statement = "DELETE FROM " + connection.ops.quote_name(Message._meta.db_table)  # noqa: S608
    deletes = [q["sql"] for q in queries if q["sql"].startswith(statement)]
    assert len(deletes) == 4  # 8 messages, 2 at a time
    for sql in deletes:
        [listed] = re.findall(r" IN \(([^)]*)\)", sql)
        assert len(listed.split(",")) <= 2


def test_export_writes_one_csv_per_table_and_day_before_deleting(world, tmp_path):
    export_dir = tmp_path / "export"
    retention.purge(now=NOW, batch_size=2, export_dir=str(export_dir))

    day = OLD.date().isoformat()
    with (export_dir / "messages" / f"{day}.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7  # six of the campaign's and the lonely one; one is a day older
    assert {row["status"] for row in rows} == {
        "delivered",
        "failed",
        "undelivered",
        "canceled",
        "sent",
        "unknown",
    }
    assert {"refused"} <= {row["error_reason"] for row in rows}
    older = (OLD - timedelta(days=1)).date().isoformat()
    assert (export_dir / "messages" / f"{older}.csv").read_text().count("\n") == 2
    events = (export_dir / "message_events").glob("*.csv")
    assert sum(path.read_text().count("\n") - 1 for path in events) == 7
    for table in ("replies", "forwards", "forward_attempts", "webhook_requests"):
        assert list((export_dir / table).glob("*.csv")), table
    [pending] = (export_dir / "unmatched_delivery_reports").glob("*.csv")
    assert "gone-1" in pending.read_text()

    # A later run appends to the day's file, under the same header.
    message = MessageFactory(
        account=world["campaign"].account, status=Status.EXPIRED, created_at=OLD
    )
    retention.purge(now=NOW, export_dir=str(export_dir))
    text = (export_dir / "messages" / f"{day}.csv").read_text()
    assert text.count("\n") == 9 and text.count("id,account_id") == 1
    assert f"\n{message.pk}," in text


def test_a_failed_export_deletes_nothing(world, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(OSError):
        retention.purge(now=NOW, export_dir=str(not_a_folder))
    assert Message.objects.count() == 12


def test_an_age_of_zero_keeps_everything(world, settings):
    settings.SMSHUB_RETENTION_DAYS = 0
    settings.SMSHUB_LOG_RETENTION_DAYS = 0
    assert retention.purge(now=NOW) == {}
    assert Message.objects.count() == 12


def test_beat_runs_the_purge_task(world, tmp_path, settings):
    settings.SMSHUB_RETENTION_EXPORT_DIR = str(tmp_path)
    assert settings.CELERY_BEAT_SCHEDULE["purge"]["task"] == "campaigns.purge"
    result = tasks.purge.apply().get()
    assert result["messages"] == 8
    assert list((tmp_path / "messages").glob("*.csv"))
