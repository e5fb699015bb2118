"""The reports page (`/reports/`): an account's figures over a range of days, by day, provider
account, category, campaign, destination country and operator, each table also as CSV
(`?format=csv&table=operator`)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..services import reports
from .shared import READ, role_required

TABLE_TITLES = {
    "provider": reports.DIMENSION_TITLES["provider"],
    "category": reports.DIMENSION_TITLES["category"],
    "campaign": reports.DIMENSION_TITLES["campaign"],
    "country": reports.DIMENSION_TITLES["country"],
    "operator": reports.DIMENSION_TITLES["operator"],
}


def _bad_request(text: str) -> HttpResponse:
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


def _csv(request: HttpRequest, day_range: reports.DayRange, form) -> HttpResponse:
    table = request.GET.get("table", "")
    if table not in reports.DIMENSIONS:
        return _bad_request(
            _("Unknown table “%(table)s”: choose one of %(tables)s.")
            % {"table": table[:50], "tables": ", ".join(reports.DIMENSIONS)}
        )
    if form.errors:
        problems = "; ".join(str(error) for errors in form.errors.values() for error in errors)
        return _bad_request(
            _("The period could not be read: %(problems)s") % {"problems": problems}
        )
    result = reports.report(request.membership.account, day_range, only=(table,), totals=False)
    filename = (
        f"sms-report-{table}-{day_range.first.isoformat()}-to-{day_range.last.isoformat()}.csv"
    )
    response = HttpResponse(reports.csv_text(result, table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@role_required(READ)
def reports_page(request: HttpRequest) -> HttpResponse:
    account = request.membership.account
    day_range, form, notes = reports.pick_range(request.GET, account)
    output = request.GET.get("format", "")
    if output == "csv":
        return _csv(request, day_range, form)
    if output not in ("", "html"):
        return _bad_request(_("Unknown format: use format=csv, or none for the page."))
    result = reports.report(account, day_range)
    query = urlencode(day_range.query())
    tables = [
        (
            by,
            title,
            result.tables[by][: reports.CAMPAIGNS_SHOWN] if by == "campaign" else result.tables[by],
        )
        for by, title in TABLE_TITLES.items()
    ]
    return render(
        request,
        "campaigns/reports.html",
        {
            "form": form,
            "notes": notes,
            "day_range": day_range,
            "range_query": query,
            "presets": reports.PRESETS,
            "result": result,
            "charts": reports.day_charts([(row.key[0], row) for row in result.tables["day"]]),
            "tables": tables,
            "page_url_name": "campaigns:reports",
        },
    )
