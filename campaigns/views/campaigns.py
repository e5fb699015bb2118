"""Campaigns: the list, one campaign's progress (live while it sends), pause / resume / cancel,
and the export of its messages as CSV.

The list pages by keyset on the id (`?after=<id>`: older than that campaign, newest first;
`?before=<id>`: newer), never by COUNT and OFFSET: each page reads its rows from the account's
(account, -id) index.
"""

import csv
import zoneinfo
from datetime import datetime, timedelta

from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from .. import statuses
from ..models import Campaign, Message
from ..services import campaign_control
from ..services.campaign_control import CampaignStateError
from .shared import READ, SEND, can_send, for_account, get_for_account, role_required

PAGE_SIZE = 25
SHOWN_MESSAGES = 50
# How often the detail page refreshes while messages move, and while only delivery reports
# are awaited (for a day at most: some providers never send them).
POLL_ACTIVE, POLL_REPORTS = "2s", "5s"
REPORTS_AWAITED = timedelta(days=1)

Status = Message.Status
WAITING = statuses.WAITING
# The order the counts are shown in.
STATUS_ORDER = [
    Status.SCHEDULED,
    Status.QUEUED,
    Status.RETRYING,
    Status.SENDING,
    Status.SENT,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.EXPIRED,
    Status.FAILED,
    Status.BLOCKED,
    Status.CANCELED,
    Status.UNKNOWN,
]
LABELS = dict(Status.choices)


def progress(counts: dict[str, int]) -> dict:
    """What the progress bar shows: messages done with sending (handed over or final)."""
    total = counts["total"]
    pending = sum(counts[s] for s in WAITING) + counts[Status.SENDING]
    done = total - pending
    return {
        "total": total,
        "done": done,
        "percent": round(100 * done / total) if total else 100,
        "delivered": counts[Status.DELIVERED],
        "rows": [(s, LABELS[s], counts[s]) for s in STATUS_ORDER if counts[s]],
    }


def _poll(campaign: Campaign, counts: dict[str, int]) -> str | None:
    """How often the live part refreshes itself, or None once nothing will change."""
    if campaign.status in (
        Campaign.Status.IMPORTING,
        Campaign.Status.SCHEDULED,
        Campaign.Status.RUNNING,
    ):
        return POLL_ACTIVE
    if counts[Status.SENDING]:
        return POLL_ACTIVE
    if counts[Status.SENT] and campaign.created_at > timezone.now() - REPORTS_AWAITED:
        return POLL_REPORTS
    return None


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def page_of(campaigns: QuerySet[Campaign], after: int | None, before: int | None) -> dict:
    """One page of campaigns, newest (highest id) first, and the cursors of the pages around it:
    `newer` for `?before=`, `older` for `?after=` (None when there is no such page)."""
    if before is not None:
        rows = list(campaigns.filter(id__gt=before).order_by("id")[: PAGE_SIZE + 1])
        has_newer, has_older = len(rows) > PAGE_SIZE, True
        rows = rows[:PAGE_SIZE][::-1]
    else:
        if after is not None:
            campaigns = campaigns.filter(id__lt=after)
        rows = list(campaigns.order_by("-id")[: PAGE_SIZE + 1])
        has_newer, has_older = after is not None, len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    return {
        "rows": rows,
        "newer": rows[0].pk if rows and has_newer else None,
        "older": rows[-1].pk if rows and has_older else None,
        "paged": after is not None or before is not None,
    }


@role_required(READ)
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    after, before = _cursor(request, "after"), _cursor(request, "before")
    cursor_error = ""
    if (request.GET.get("after") and after is None) or (
        request.GET.get("before") and before is None
    ):
        cursor_error = "That page link is not valid: showing the newest campaigns."
    page = page_of(for_account(Campaign.objects.select_related("category"), request), after, before)
    ids = [c.pk for c in page["rows"]]
    by_campaign: dict[int, dict[str, int]] = {pk: dict.fromkeys(Status.values, 0) for pk in ids}
    rows = (
        Message.objects.filter(campaign_id__in=ids)
        .order_by()
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
    )
    for campaign_id, status, n in rows:
        by_campaign[campaign_id][status] = n
    for campaign in page["rows"]:
        counts = by_campaign[campaign.pk]
        # Messages purged by retention still count, as in campaign_control.counts.
        for status, n in (getattr(campaign, "archived_counts", None) or {}).items():
            counts[status] = counts.get(status, 0) + n
        counts["total"] = sum(counts.values())
        campaign.progress = progress(counts)
    return render(
        request,
        "campaigns/campaign_list.html",
        {"page": page, "can_send": can_send(request.membership), "cursor_error": cursor_error},
    )


def _campaign(request: HttpRequest, pk: int) -> Campaign:
    return get_for_account(
        Campaign.objects.select_related("category", "created_by"), request, pk=pk
    )


@role_required(READ)
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(request, pk)
    counts = campaign_control.counts(campaign)
    shown = list(
        campaign.messages.select_related("provider_account").order_by("id")[:SHOWN_MESSAGES]
    )
    template = "campaigns/campaign_detail.html"
    # The status the page showed when it polled: its buttons change only when that changes.
    controls_changed = request.GET.get("shown", campaign.status) != campaign.status
    if request.htmx:
        template += "#live"
    return render(
        request,
        template,
        {
            "campaign": campaign,
            "counts": counts,
            "progress": progress(counts),
            "poll": _poll(campaign, counts),
            "shown": shown,
            "can_send": can_send(request.membership),
            "controls_oob": request.htmx and controls_changed,
            "pausable": campaign.status in campaign_control.PAUSABLE,
            "cancelable": campaign.status in campaign_control.CANCELABLE,
        },
    )


def _control(request: HttpRequest, pk: int, action) -> HttpResponse:
    campaign = _campaign(request, pk)
    try:
        done = action(campaign)
    except CampaignStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("campaigns:campaign_detail", pk=campaign.pk)


@role_required(SEND)
@require_POST
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    def pause(campaign: Campaign) -> str:
        campaign_control.pause(campaign, by=request.user)
        return f"Campaign “{campaign.name}” paused: its waiting messages wait."

    return _control(request, pk, pause)


@role_required(SEND)
@require_POST
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    def resume(campaign: Campaign) -> str:
        campaign_control.resume(campaign, by=request.user)
        if campaign.status == Campaign.Status.COMPLETED:
            return f"Campaign “{campaign.name}” had nothing left to send: it is completed."
        return f"Campaign “{campaign.name}” resumed."

    return _control(request, pk, resume)


@role_required(SEND)
@require_POST
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    def cancel(campaign: Campaign) -> str:
        canceled = campaign_control.cancel(campaign, by=request.user)
        return (
            f"Campaign “{campaign.name}” canceled: {canceled} waiting "
            f"message{'s' if canceled != 1 else ''} will not be sent."
        )

    return _control(request, pk, cancel)


# --- export -----------------------------------------------------------------------------------

EXPORT_COLUMNS = [
    "recipient",
    "status",
    "provider",
    "provider message id",
    "sent at",
    "delivered/updated at",
    "error",
]
EXPORT_CHUNK = 2000
# A cell starting with one of these is a formula to a spreadsheet: such text from a provider
# is prefixed with an apostrophe so that it stays text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    if value.startswith(FORMULA_START) and not value[1:].replace(" ", "").isdigit():
        return "'" + value
    return value


@role_required(READ)
@require_GET
def campaign_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every message of the campaign as CSV, streamed: rows are read in chunks as they are
    sent, so a campaign of any size is exported in constant memory. Times are ISO 8601 in the
    account's time zone."""
    campaign = _campaign(request, pk)
    tz = zoneinfo.ZoneInfo(campaign.account.timezone)
    rows = (
        Message.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list(
            "recipient",
            "status",
            "provider_account__name",
            "provider_message_id",
            "sent_at",
            "delivered_at",
            "updated_at",
            "error_code",
            "error_reason",
        )
        .iterator(chunk_size=EXPORT_CHUNK)
    )

    def when(moment: datetime | None) -> str:
        return moment.astimezone(tz).isoformat(timespec="seconds") if moment else ""

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(EXPORT_COLUMNS)
        chunk = []
        for row in rows:
            recipient, status, provider, provider_id, sent, delivered, updated, code, reason = row
            error = " ".join(part for part in (code, reason) if part)
            cells = [recipient, status, _cell(provider or ""), _cell(provider_id)]
            cells += [when(sent), when(delivered or updated), _cell(error)]
            chunk.append(writer.writerow(cells))
            if len(chunk) >= 500:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    filename = f"campaign-{campaign.pk}-{slugify(campaign.name)[:40] or 'messages'}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
