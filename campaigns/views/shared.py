"""What every staff view needs: the current account, roles, and 404 for anything outside it.

Roles, per account (`Membership.Role`): viewers read; operators also send; account admins also
manage sender names, categories and opt-outs.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from ..models import Membership

Role = Membership.Role

# Who may do what, by role.
READ = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
SEND = (Role.ADMIN, Role.OPERATOR)
MANAGE = (Role.ADMIN,)

# What a refused role is told, by the roles that would have been enough.
_REFUSALS = {
    SEND: _("Only operators and account admins can send messages."),
    MANAGE: _("Only account admins can change this."),
}


def membership_required(view):
    """Staff views need a current account; a user in none gets a page that says so."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.membership is None:
            return render(request, "campaigns/no_account.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def role_required(roles: tuple[str, ...] = READ):
    """Log in, have a current account, and hold one of `roles` in it (else a 403 page saying
    which roles may). Use `READ`, `SEND` or `MANAGE`."""

    def decorator(view):
        @login_required
        @membership_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.membership.role not in roles:
                return render(
                    request,
                    "campaigns/forbidden.html",
                    {"reason": _REFUSALS.get(roles, _("Your role does not allow this."))},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def can_send(membership: Membership) -> bool:
    return membership.role in SEND


def can_manage(membership: Membership) -> bool:
    return membership.role in MANAGE


def for_account(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    """Restrict a queryset of account-owned objects to the account the user is working in."""
    return queryset.filter(account=request.membership.account)


def get_for_account(queryset: QuerySet, request: HttpRequest, **lookup) -> Model:
    """One object of the current account, or 404 (another account's object does not exist)."""
    return get_object_or_404(for_account(queryset, request), **lookup)
