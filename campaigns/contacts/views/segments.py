"""Segments: saved filters over contacts, with live counts (just after the page in a large
account: `counts`). The editor is a form of condition rows (a field compared with a value, in
or not in a list, opted out or not, replied or not in the last N days) that `segments.clean`
checks; its count follows the rows as they change."""

import logging

from django.contrib import messages as flash
from django.core.exceptions import FieldError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from campaigns.models import Account
from campaigns.views.shared import for_account, get_for_account

from .. import segments
from ..forms import RuleRows, SegmentForm
from ..models import Contact, Segment
from . import counts
from .common import EDIT, READ, allowed, annotate, can_edit, confirm, cursor, keyset

logger = logging.getLogger(__name__)


def segment_contacts(account: Account, rules) -> QuerySet[Contact] | None:
    """The contacts meeting stored `rules`, or None when they cannot be read (changed by hand
    in the admin): the page then says so instead of failing. A list or field deleted since
    needs nothing special: its condition reads as an empty list or value."""
    try:
        return segments.contacts(account, rules)
    except (KeyError, TypeError, ValueError, AttributeError, FieldError):
        logger.warning("Unreadable segment rules in account %s: %r", account.pk, rules)
        return None


def describe(account: Account, rules) -> list[str] | None:
    try:
        return segments.describe(account, rules)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _row(account: Account, segment: Segment, counted: bool) -> dict:
    """A row of the segment list: `count` is None when the rules cannot be read, or when
    `later` (not `counted`: it comes after the page)."""
    queryset = segment_contacts(account, segment.rules)
    return {
        "segment": segment,
        "count": queryset.count() if counted and queryset is not None else None,
        "later": not counted and queryset is not None,
    }


@allowed(READ)
def segment_list(request: HttpRequest) -> HttpResponse:
    """The segments and how many contacts each has now: with the page in a small account, else
    one by one after it (`?count=<id>` with htmx gives one segment's count)."""
    account = request.membership.account
    asked = counts.asked_id(request)
    if asked is not None and request.htmx:
        segment = get_for_account(Segment.objects, request, pk=asked)
        return render(
            request, "contacts/segment_list.html#count", {"row": _row(account, segment, True)}
        )
    counted = counts.with_page(account)
    rows = []
    for segment in for_account(Segment.objects, request):
        row = _row(account, segment, counted)
        row["described"] = describe(account, segment.rules)
        rows.append(row)
    return render(
        request, "contacts/segment_list.html", {"rows": rows, "can_edit": can_edit(request)}
    )


def _count(account: Account, rules: list[dict] | None) -> int | None:
    queryset = None if rules is None else segment_contacts(account, rules)
    return None if queryset is None else queryset.count()


def _editor(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    account = request.membership.account
    if request.method != "POST":
        form = SegmentForm(account=account, instance=segment)
        rows = RuleRows.from_rules(account, segment.rules) if segment else None
        if rows is None or not rows.rows:
            rows = RuleRows(account, [{}])
        rules = segment.rules if segment else []
        return _render_editor(request, segment, form, rows, _count(account, rules))
    rows = RuleRows.posted(account, request.POST)
    action = request.POST.get("action", "")
    if action == "add" or action.startswith("remove-"):
        # Adding or removing a row: the form again, nothing saved, no error shown yet.
        remove = action.removeprefix("remove-")
        rows = rows.changed(
            add=action == "add",
            remove=int(remove) if remove.isascii() and remove.isdigit() else None,
        )
        form = SegmentForm(initial={"name": request.POST.get("name", "")}, account=account)
        return _render_editor(request, segment, form, rows, _count(account, rows.rules()))
    form = SegmentForm(request.POST, account=account, instance=segment)
    rules = rows.clean()
    if form.is_valid() and rules is not None:
        saved = form.save(commit=False)
        saved.rules = rules
        saved.save()
        flash.success(request, gettext("Segment “%(name)s” saved.") % {"name": saved.name})
        return redirect("contacts:segment_detail", saved.pk)
    return _render_editor(request, segment, form, rows, _count(account, rules), status=400)


def _render_editor(request, segment, form, rows: RuleRows, count, status: int = 200):
    return render(
        request,
        "contacts/segment_form.html",
        {"segment": segment, "form": form, "rows": rows, "count": count},
        status=status,
    )


@allowed(EDIT)
def segment_add(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@allowed(EDIT)
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _editor(request, get_for_account(Segment.objects, request, pk=pk))


@allowed(EDIT)
@require_POST
def segment_count(request: HttpRequest) -> HttpResponse:
    """The editor's live count: how many contacts the posted conditions match now."""
    account = request.membership.account
    rows = RuleRows.posted(account, request.POST)
    rules = rows.clean()
    return render(
        request,
        "contacts/segment_form.html#count",
        {"count": _count(account, rules), "problems": rows.problems()},
    )


@allowed(READ)
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A segment's conditions and contacts, a page at a time, and how many it has now: with the
    page in a small account, else just after it (`?count=exact` with htmx gives the count)."""
    account = request.membership.account
    segment = get_for_account(Segment.objects, request, pk=pk)
    queryset = segment_contacts(account, segment.rules)
    exact = counts.asked(request) == "exact"
    if exact and request.htmx:
        total = None if queryset is None else queryset.count()
        return render(request, "contacts/segment_detail.html#total", {"total": total})
    page, total, count_later = {"rows": [], "older": None, "paged": False}, None, False
    if queryset is not None:
        page = keyset(queryset, cursor(request))
        annotate(account, page["rows"])
        if exact or counts.with_page(account):
            total = queryset.count()
        else:
            count_later = True
    return render(
        request,
        "contacts/segment_detail.html",
        {
            "segment": segment,
            "described": describe(account, segment.rules),
            "page": page,
            "total": total,
            "count_later": count_later,
            "unreadable": queryset is None,
            "can_edit": can_edit(request),
        },
    )


@allowed(EDIT)
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_for_account(Segment.objects, request, pk=pk)
    if request.method == "POST":
        segment.delete()
        flash.success(
            request,
            gettext("Segment “%(name)s” deleted. Its contacts stay.") % {"name": segment.name},
        )
        return redirect("contacts:segment_list")
    return confirm(
        request,
        title=gettext("Delete the segment “%(name)s”?") % {"name": segment.name},
        consequences=[
            gettext("Only the saved conditions go: no contact is deleted or changed."),
            gettext("Campaigns already sent to it keep their messages."),
        ],
        cancel=reverse("contacts:segment_detail", args=[segment.pk]),
        button=gettext("Delete the segment"),
    )
