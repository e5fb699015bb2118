"""The landing page: today's and the week's figures, the queue, recent replies, a chart, and
the provider accounts on hold or with delivery reports that matched no message.

Its two live parts (figures, replies) poll every 10 seconds; an htmx request with `?part=` gets
that part alone.
"""

import math
import re
from datetime import date

import pygal
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

from ..services import holds, stats
from .shared import READ, role_required

PARTS = ("figures", "replies")
PYGAL_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)

CHART_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1d2430",
    foreground_strong="#1d2430",
    foreground_subtle="#dde2ea",
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif',
    label_font_size=15,
    major_label_font_size=15,
    legend_font_size=15,
    title_font_size=16,
    value_font_size=12,
    colors=("#1f5fbf", "#12703a", "#b42318"),
)


def week_chart(days: list[tuple[date, stats.Tally]]) -> SafeString:
    """The last seven days as a bar chart, rendered to inline SVG on the server (no script)."""
    chart = pygal.Bar(
        js=[],  # pygal would otherwise link its tooltip script from the web
        disable_xml_declaration=True,
        explicit_size=False,
        width=480,
        height=280,
        style=CHART_STYLE,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        show_y_guides=True,
        print_zeroes=False,
        truncate_label=-1,
        margin=8,
    )
    chart.x_labels = [day.strftime("%a %d") for day, _ in days]
    # Whole numbers on the axis, about five of them, whatever the scale.
    top = max([tally.sent for _, tally in days] + [tally.failed for _, tally in days] + [1])
    step = max(1, math.ceil(top / 5))
    chart.y_labels = list(range(0, top + step, step))
    chart.add("Sent", [tally.sent for _, tally in days])
    chart.add("Delivered", [tally.delivered for _, tally in days])
    chart.add("Failed", [tally.failed for _, tally in days])
    # Only numbers and fixed words go into the chart: nothing a user typed.
    # pygal adds an inline <script> (its tooltips' settings, unused without its JS): left out,
    # the Content-Security-Policy would refuse it.
    svg = PYGAL_SCRIPT.sub("", chart.render(is_unicode=True))
    return mark_safe(svg)  # noqa: S308


def _figures(request: HttpRequest) -> dict:
    account = request.membership.account
    summary = stats.summary(account)
    return {
        "summary": summary,
        "breakdowns": [
            ("provider", "provider", summary.breakdown("provider")),
            ("category", "category", summary.breakdown("category")),
        ],
        "queue": stats.queue_depth(account),
        "chart": week_chart(summary.days),
        "held": holds.held_on_routes(account.pk),
        "unmatched": stats.unmatched_reports(account),
        "retention_days": settings.SMSHUB_LOG_RETENTION_DAYS,
    }


def _replies(request: HttpRequest) -> dict:
    return {"replies": stats.recent_replies(request.membership.account)}


@role_required(READ)
def dashboard(request: HttpRequest) -> HttpResponse:
    part = request.GET.get("part")
    if request.htmx and part in PARTS:
        context = _figures(request) if part == "figures" else _replies(request)
        return render(request, f"campaigns/dashboard.html#{part}", context)
    return render(request, "campaigns/dashboard.html", {**_figures(request), **_replies(request)})
