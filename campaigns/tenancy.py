"""Which account a staff user is working in. Every staff query goes through the user's accounts."""

import zoneinfo

from django.http import HttpRequest
from django.utils import timezone

from .models import Membership

SESSION_KEY = "account_id"


def memberships(user) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user).select_related("account").order_by("account__name")
    )


def choose(request: HttpRequest, mine: list[Membership]) -> Membership | None:
    """The membership of the account chosen in the session, else the user's first account."""
    chosen = request.session.get(SESSION_KEY)
    for membership in mine:
        if membership.account_id == chosen:
            return membership
    return mine[0] if mine else None


class AccountMiddleware:
    """Sets `request.memberships` and `request.membership` (the current account, or None) and
    shows times in that account's timezone."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.memberships = memberships(request.user)
        request.membership = choose(request, request.memberships)
        if request.membership is not None:
            timezone.activate(zoneinfo.ZoneInfo(request.membership.account.timezone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
