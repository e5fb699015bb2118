"""Lists: static groups of contacts, with live member counts (just after the page in a large
account: `counts`). Everyone reads; operators and account admins create, rename and delete them
and add or remove members."""

from django.contrib import messages as flash
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.views.shared import for_account, get_for_account

from .. import services
from ..forms import BulkRemoveForm, ListForm
from ..models import Contact, ContactList, Segment
from . import counts
from .common import (
    EDIT,
    READ,
    allowed,
    annotate,
    can_edit,
    confirm,
    cursor,
    forbidden,
    keyset,
)


def _index(request: HttpRequest, form: ListForm | None = None, status: int = 200):
    """The lists with how many contacts each has: with the page in a small account, else all
    in one query just after it (`?count=all` with htmx gives the table with its counts)."""
    lists = for_account(ContactList.objects, request).order_by("name", "id")
    asked = counts.asked(request) == "all"
    counted = asked or counts.with_page(request.membership.account)
    if counted:
        lists = lists.annotate(members=Count("membership"))
    context = {"lists": lists, "counted": counted}
    if asked and request.htmx:
        return render(request, "contacts/list_index.html#lists-table", context)
    return render(
        request,
        "contacts/list_index.html",
        {
            **context,
            "form": form or ListForm(account=request.membership.account),
            "can_edit": can_edit(request),
        },
        status=status,
    )


@allowed(READ)
def list_index(request: HttpRequest) -> HttpResponse:
    """GET: the lists and their counts. POST (operators, account admins): create one."""
    if request.method != "POST":
        return _index(request)
    if not can_edit(request):
        return forbidden(request, _("Only operators and account admins can create lists."))
    form = ListForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return _index(request, form, status=400)
    contact_list = form.save()
    flash.success(request, _("List “%(name)s” created.") % {"name": contact_list.name})
    return redirect("contacts:list_detail", contact_list.pk)


def _detail(request: HttpRequest, contact_list: ContactList, form=None, status: int = 200):
    """A list's members, a page at a time, and how many it has: with the page in a small
    account, else just after it (`?count=exact` with htmx gives the count alone)."""
    account = request.membership.account
    members = Contact.objects.filter(account=account, lists=contact_list)
    # Its memberships (of its account's contacts only), read from their index alone.
    count = contact_list.membership_set.count
    exact = counts.asked(request) == "exact"
    if exact and request.htmx:
        return render(request, "contacts/list_detail.html#total", {"total": count()})
    page = keyset(members, cursor(request))
    annotate(account, page["rows"])
    counted = exact or counts.with_page(account)
    return render(
        request,
        "contacts/list_detail.html",
        {
            "contact_list": contact_list,
            "page": page,
            "total": count() if counted else None,
            "count_later": not counted,
            "form": form,
            "can_edit": can_edit(request),
            "cursor_error": bool(request.GET.get("after")) and cursor(request) is None,
        },
        status=status,
    )


@allowed(READ)
def list_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the list's members. POST (operators, account admins): remove the ticked ones."""
    contact_list = get_for_account(ContactList.objects, request, pk=pk)
    if request.method != "POST":
        return _detail(request, contact_list)
    if not can_edit(request):
        return forbidden(request, _("Only operators and account admins can change lists."))
    form = BulkRemoveForm(request.POST)
    if not form.is_valid():
        return _detail(request, contact_list, form, status=400)
    removed = services.remove_from_list(contact_list, form.cleaned_data["contact"])
    flash.success(
        request,
        ngettext(
            "%(n)s contact removed from “%(name)s”.",
            "%(n)s contacts removed from “%(name)s”.",
            removed,
        )
        % {"n": intcomma(removed), "name": contact_list.name},
    )
    return redirect(request.get_full_path())


@allowed(EDIT)
def list_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = get_for_account(ContactList.objects, request, pk=pk)
    name = contact_list.name  # as saved, whatever is typed
    form = ListForm(request.POST or None, instance=contact_list, account=contact_list.account)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, _("List “%(name)s” saved.") % {"name": contact_list.name})
        return redirect("contacts:list_detail", contact_list.pk)
    return render(
        request,
        "contacts/list_form.html",
        {"form": form, "contact_list": contact_list, "name": name},
        status=400 if form.is_bound else 200,
    )


def _segments_using(contact_list: ContactList) -> list[str]:
    return [
        segment.name
        for segment in Segment.objects.filter(account=contact_list.account)
        if any(
            isinstance(rule, dict) and rule.get("list") == contact_list.pk
            for rule in (segment.rules if isinstance(segment.rules, list) else [])
        )
    ]


@allowed(EDIT)
def list_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact_list = get_for_account(ContactList.objects, request, pk=pk)
    if request.method == "POST":
        contact_list.delete()
        flash.success(
            request, _("List “%(name)s” deleted. Its contacts stay.") % {"name": contact_list.name}
        )
        return redirect("contacts:list_index")
    members = contact_list.membership_set.count()
    said = [
        ngettext(
            "The list and its %(n)s membership go; its contacts stay, with their other lists.",
            "The list and its %(n)s memberships go; its contacts stay, with their other lists.",
            members,
        )
        % {"n": intcomma(members)},
    ]
    using = _segments_using(contact_list)
    if using:
        said.append(
            _(
                "Segments with a condition on this list (%(segments)s) then read it as an "
                "empty list: edit them."
            )
            % {"segments": ", ".join(using)}
        )
    return confirm(
        request,
        title=_("Delete the list “%(name)s”?") % {"name": contact_list.name},
        consequences=said,
        cancel=reverse("contacts:list_detail", args=[contact_list.pk]),
        button=_("Delete the list"),
    )
