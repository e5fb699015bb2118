"""The landing page: today's figures and a range's (the last 7 days unless picked otherwise),
the queue, recent replies, a chart, and the provider accounts on hold or with delivery reports
that matched no message.

Its two live parts (figures, replies) poll every 10 seconds; an htmx request with `?part=` gets
that part alone, for the same range.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from ..services import holds, reports, stats
from .shared import READ, role_required

PARTS = ("figures", "replies")


def _figures(request: HttpRequest, day_range: reports.DayRange) -> dict:
    account = request.membership.account
    summary = stats.summary(account, first_day=day_range.first, last_day=day_range.last)
    return {
        "summary": summary,
        "day_range": day_range,
        "range_query": urlencode(day_range.query()),
        "breakdowns": [
            ("provider", reports.DIMENSION_TITLES["provider"], summary.breakdown("provider")),
            ("category", reports.DIMENSION_TITLES["category"], summary.breakdown("category")),
        ],
        "queue": stats.queue_depth(account),
        "charts": reports.day_charts(summary.days),
        "held": holds.held_on_routes(account.pk),
        "unmatched": stats.unmatched_reports(account),
        "retention_days": settings.SMSHUB_LOG_RETENTION_DAYS,
    }


def _replies(request: HttpRequest) -> dict:
    return {"replies": stats.recent_replies(request.membership.account)}


@role_required(READ)
def dashboard(request: HttpRequest) -> HttpResponse:
    day_range, form, notes = reports.pick_range(request.GET, request.membership.account)
    part = request.GET.get("part")
    if request.htmx and part in PARTS:
        context = _figures(request, day_range) if part == "figures" else _replies(request)
        return render(request, f"campaigns/dashboard.html#{part}", context)
    context = {
        **_figures(request, day_range),
        **_replies(request),
        "form": form,
        "notes": notes,
        "presets": reports.PRESETS,
        "page_url_name": "campaigns:dashboard",
    }
    return render(request, "campaigns/dashboard.html", context)
