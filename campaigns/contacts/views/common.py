"""What every contacts page needs: who may change what, keyset pages, the delete confirmation.

Roles: viewers read everything; operators and account admins change contacts, lists, segments
and templates; only account admins manage custom fields. Everything is read through the current
account (`campaigns.views.shared`): another account's object is a 404.
"""

from collections import defaultdict
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from campaigns.models import Membership, OptOut
from campaigns.views.shared import membership_required

from ..models import Contact
from ..models import Membership as InList

Role = Membership.Role
READ = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
EDIT = (Role.ADMIN, Role.OPERATOR)
MANAGE = (Role.ADMIN,)

EDIT_REFUSAL = _(
    "Only operators and account admins can change contacts, lists, segments and templates."
)
MANAGE_REFUSAL = _("Only account admins can change custom fields.")

PAGE_SIZE = 50


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "campaigns/forbidden.html", {"reason": reason}, status=403)


def allowed(roles: tuple[str, ...], reason: str = EDIT_REFUSAL):
    """Log in, have a current account and one of `roles` in it; else a 403 page with `reason`."""

    def decorator(view):
        @login_required
        @membership_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.membership.role not in roles:
                return forbidden(request, reason)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def can_edit(request: HttpRequest) -> bool:
    return request.membership.role in EDIT


def can_manage(request: HttpRequest) -> bool:
    return request.membership.role in MANAGE


def cursor(request: HttpRequest, name: str = "after") -> int | None:
    """A page cursor from the address (an id), or None when absent or not an id."""
    value = request.GET.get(name, "")
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def keyset(queryset: QuerySet, after: int | None, size: int = PAGE_SIZE) -> dict:
    """One page of `queryset`, highest id first, older than `after`; `older` is the next
    page's cursor. Never OFFSET: each page reads `size + 1` rows along an index."""
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: size + 1])
    return {
        "rows": rows[:size],
        "older": rows[size - 1].pk if len(rows) > size else None,
        "paged": after is not None,
    }


def annotate(account, contacts: list[Contact]) -> list[Contact]:
    """Give each contact of a page its lists (`in_lists`) and opt-out (`opted_out`): two
    queries for the page, whatever its size."""
    in_lists = defaultdict(list)
    memberships = (
        InList.objects.filter(contact__in=contacts)
        .select_related("contact_list")
        .order_by("contact_list__name")
    )
    for membership in memberships:
        in_lists[membership.contact_id].append(membership.contact_list)
    opted = set(
        OptOut.objects.filter(
            account=account, number__in=[contact.number for contact in contacts]
        ).values_list("number", flat=True)
    )
    for contact in contacts:
        contact.in_lists = in_lists[contact.pk]
        contact.opted_out = contact.number in opted
    return contacts


def amount(count: int) -> str:
    """A count as the user's language writes it (1,851 · 1 851 · 1.851), for ngettext texts."""
    return number_format(count, force_grouping=True)


def confirm(
    request: HttpRequest,
    *,
    title: str,
    consequences: list[str],
    cancel: str,
    button: str,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The page asking to confirm a deletion, saying what it does."""
    return render(
        request,
        "contacts/confirm_delete.html",
        {
            "title": title,
            "consequences": consequences,
            "cancel": cancel,
            "button": button,
            "error": error,
        },
        status=status,
    )
