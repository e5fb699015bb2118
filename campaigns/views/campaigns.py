"""Campaigns: the list, one campaign's progress (live while it sends), pause / resume / cancel,
and the export of its messages as CSV.

The list pages by keyset on the id (`?after=<id>`: older than that campaign, newest first;
`?before=<id>`: newer), never by COUNT and OFFSET: each page reads its rows from the account's
(account, -id) index.
"""

import csv
import zoneinfo
from datetime import datetime

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from ..models import Campaign, Message
from ..services import campaign_control, monitoring
from ..services.campaign_control import CampaignStateError
from .shared import READ, SEND, can_send, for_account, get_for_account, role_required

PAGE_SIZE = 25
SHOWN_MESSAGES = 50


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
        cursor_error = _("That page link is not valid: showing the newest campaigns.")
    page = page_of(for_account(Campaign.objects.select_related("category"), request), after, before)
    account = request.membership.account
    # Every row's state from a fixed number of queries (see monitoring.monitor_many).
    monitors = monitoring.monitor_many(page["rows"], account)
    for campaign in page["rows"]:
        campaign.monitor = monitors[campaign.pk]
    return render(
        request,
        "campaigns/campaign_list.html",
        {"page": page, "can_send": can_send(request.membership), "cursor_error": cursor_error},
    )


def _campaign(request: HttpRequest, pk: int) -> Campaign:
    return get_for_account(
        Campaign.objects.select_related("category", "created_by", "account"), request, pk=pk
    )


@role_required(READ)
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign page; polled by htmx, its live part alone, or 204 when nothing changed since
    the version the page shows (`v`), so that an open page costs two small queries a second."""
    campaign = _campaign(request, pk)
    now = timezone.now()
    shown_version = request.GET.get("v", "")
    since = monitoring.stamp(request.GET.get("t", ""))
    interval = monitoring.stamp(request.GET.get("p", ""))
    base = monitoring.stamp(request.GET.get("b", ""))
    if request.htmx and shown_version and since is not None:
        counts = campaign_control.counts(campaign)
        unchanged = monitoring.version(campaign.status, counts, base) == shown_version
        idle = now.timestamp() - since
        if unchanged and monitoring.backoff(base, idle) == interval:
            return HttpResponse(status=204)
    monitor = monitoring.monitor(campaign, now)
    changed = monitor.version != shown_version
    since = int(now.timestamp()) if changed or since is None else since
    poll = monitoring.backoff(monitor.poll, now.timestamp() - since)
    shown = list(
        campaign.messages.select_related("provider_account").order_by("id")[:SHOWN_MESSAGES]
    )
    # The first messages' table is swapped (out of band) only when one of their statuses moved.
    shown_version = monitoring.version("", {f"{m.pk}.{m.status}": 1 for m in shown}, None)
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
            "monitor": monitor,
            "counts": monitor.counts,
            "poll": poll,
            "since": since,
            "shown": shown,
            "shown_version": shown_version,
            "shown_oob": request.htmx and request.GET.get("m") != shown_version,
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
        return _("Campaign “%(name)s” paused: its waiting messages wait.") % {"name": campaign.name}

    return _control(request, pk, pause)


@role_required(SEND)
@require_POST
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    def resume(campaign: Campaign) -> str:
        campaign_control.resume(campaign, by=request.user)
        if campaign.status == Campaign.Status.COMPLETED:
            return _("Campaign “%(name)s” had nothing left to send: it is completed.") % {
                "name": campaign.name
            }
        return _("Campaign “%(name)s” resumed.") % {"name": campaign.name}

    return _control(request, pk, resume)


@role_required(SEND)
@require_POST
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    def cancel(campaign: Campaign) -> str:
        canceled = campaign_control.cancel(campaign, by=request.user)
        return ngettext(
            "Campaign “%(name)s” canceled: %(n)s waiting message will not be sent.",
            "Campaign “%(name)s” canceled: %(n)s waiting messages will not be sent.",
            canceled,
        ) % {"name": campaign.name, "n": formats.number_format(canceled, force_grouping=True)}

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
