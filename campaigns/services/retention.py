"""Retention: what is older than its age is purged, in small batches, optionally exported first.

- Messages in a final status (never one still on its way) created more than
  `SMSHUB_RETENTION_DAYS` ago, with their timeline events; replies received and forwards
  (delivered or given up) created that long ago, with their attempts.
- Webhook requests that were processed, and unmatched delivery reports, older than
  `SMSHUB_LOG_RETENTION_DAYS`. A request still waiting to be applied is kept.

An age of 0 keeps that kind forever. Each batch (`SMSHUB_RETENTION_BATCH_SIZE` rows, picked by
primary key and locked with SKIP LOCKED on PostgreSQL) is exported, counted and deleted in one
short transaction: nothing holds a table for long, and a concurrent purge takes other rows.

Before a campaign's messages go, their number per status is added to the campaign's
`archived_counts`, in the same transaction, so `campaign_control.counts` stays right.

With `SMSHUB_RETENTION_EXPORT_DIR` set, each batch is first appended to
`<dir>/<table>/<YYYY-MM-DD>.csv` (one file per table and UTC day of the row's age, a header
line when the file is new); a batch whose export fails is not deleted. A purge interrupted
after writing may export a batch twice, never lose one.
"""

import csv
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import statuses
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dependent:
    """Rows deleted with their parent (by cascade), exported alongside it."""

    name: str
    model: type[models.Model]
    parent_field: str
    date_field: str


@dataclass(frozen=True)
class Target:
    name: str  # the result key and the export folder
    model: type[models.Model]
    date_field: str
    days_setting: str
    keep: Q = field(default_factory=Q)  # rows matching it are never purged
    dependents: tuple[Dependent, ...] = ()


IN_FLIGHT = statuses.ON_ITS_WAY

TARGETS = (
    Target(
        "messages",
        Message,
        "created_at",
        "SMSHUB_RETENTION_DAYS",
        # Only messages that may still be sent are kept: a `sent` message whose report never
        # came, or an `unknown` one, is as done as a delivered one after the retention age.
        keep=Q(status__in=IN_FLIGHT),
        dependents=(Dependent("message_events", MessageEvent, "message", "at"),),
    ),
    Target("replies", Reply, "received_at", "SMSHUB_RETENTION_DAYS"),
    Target(
        "forwards",
        Forward,
        "created_at",
        "SMSHUB_RETENTION_DAYS",
        keep=Q(status=Forward.Status.PENDING),
        dependents=(Dependent("forward_attempts", ForwardAttempt, "forward", "at"),),
    ),
    Target(
        "webhook_requests",
        WebhookRequest,
        "received_at",
        "SMSHUB_LOG_RETENTION_DAYS",
        keep=Q(status=WebhookRequest.Status.RECEIVED),
    ),
    Target(
        "unmatched_delivery_reports",
        PendingDeliveryReport,
        "received_at",
        "SMSHUB_LOG_RETENTION_DAYS",
    ),
)


# --- export ------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal | bool):
        return str(value)
    return value


class CsvExport:
    """Appends rows to one CSV file per table and day, under `directory`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(
        self, name: str, model: type[models.Model], date_field: str, rows: models.QuerySet
    ) -> int:
        columns = [f.attname for f in model._meta.concrete_fields]
        day_index = columns.index(model._meta.get_field(date_field).attname)
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[date, Any] = {}
        written = 0
        try:
            for row in rows.order_by("pk").values_list(*columns).iterator(chunk_size=500):
                day = row[day_index].astimezone(UTC).date()
                if day not in files:
                    path = folder / f"{day.isoformat()}.csv"
                    new = not path.exists() or path.stat().st_size == 0
                    handle = path.open("a", newline="", encoding="utf-8")
                    files[day] = (handle, csv.writer(handle))
                    if new:
                        files[day][1].writerow(columns)
                files[day][1].writerow([_cell(value) for value in row])
                written += 1
        finally:
            for handle, _ in files.values():
                handle.close()
        return written


# --- purging -----------------------------------------------------------------------------------


def _archive_counts(rows: Iterable[tuple[int, int | None, str]]) -> None:
    """Add purged messages to their campaigns' `archived_counts` (locked: no lost update)."""
    by_campaign: dict[int, Counter] = defaultdict(Counter)
    for _, campaign_id, status in rows:
        if campaign_id is not None:
            by_campaign[campaign_id][status] += 1
    if not by_campaign:
        return
    campaigns = (
        Campaign.objects.select_for_update()
        .filter(pk__in=by_campaign)
        .order_by("pk")
        .only("pk", "archived_counts")
    )
    for campaign in campaigns:
        archived = dict(campaign.archived_counts or {})
        for status, n in by_campaign[campaign.pk].items():
            archived[status] = archived.get(status, 0) + n
        Campaign.objects.filter(pk=campaign.pk).update(archived_counts=archived)


def purge_batch(
    target: Target, cutoff: datetime, batch_size: int, export: CsvExport | None = None
) -> int:
    """Purge up to `batch_size` rows of `target` older than `cutoff`, in one transaction.
    Returns how many rows of the target table went."""
    model = target.model
    with transaction.atomic():
        due = (
            model.objects.filter(**{f"{target.date_field}__lt": cutoff})
            .exclude(target.keep)
            .order_by(target.date_field)  # the age's index: the oldest come first
            .select_for_update(skip_locked=True)
        )
        if model is Message:
            rows = list(due.values_list("pk", "campaign_id", "status")[:batch_size])
        else:
            rows = [(pk,) for pk in due.values_list("pk", flat=True)[:batch_size]]
        if not rows:
            return 0
        pks = [row[0] for row in rows]
        if export is not None:
            for dependent in target.dependents:
                children = dependent.model.objects.filter(**{f"{dependent.parent_field}__in": pks})
                export.write(dependent.name, dependent.model, dependent.date_field, children)
            export.write(target.name, model, target.date_field, model.objects.filter(pk__in=pks))
        if model is Message:
            _archive_counts(rows)
        _, deleted = model.objects.filter(pk__in=pks).only("pk").delete()
    return deleted.get(model._meta.label, 0)


def purge(
    now: datetime | None = None,
    *,
    batch_size: int | None = None,
    time_budget: float | None = None,
    export_dir: str | None = None,
) -> dict[str, int]:
    """Purge every kind of row past its age. Returns the rows purged per table.

    With a `time_budget` (seconds) it stops starting new batches once that is spent; the next
    run goes on where it stopped.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.SMSHUB_RETENTION_BATCH_SIZE
    export_dir = settings.SMSHUB_RETENTION_EXPORT_DIR if export_dir is None else export_dir
    export = CsvExport(export_dir) if export_dir else None
    started = time.monotonic()
    purged: dict[str, int] = {}
    for target in TARGETS:
        days = getattr(settings, target.days_setting)
        if not days or days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        total = 0
        while time_budget is None or time.monotonic() - started < time_budget:
            deleted = purge_batch(target, cutoff, batch_size, export)
            total += deleted
            if deleted < batch_size:
                break
        purged[target.name] = total
        if total:
            logger.info(
                "retention: purged %s %s older than %s days (before %s)",
                total,
                target.name,
                days,
                cutoff.isoformat(),
            )
    return purged
