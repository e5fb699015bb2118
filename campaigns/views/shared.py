"""What every staff view needs: the current account, and 404 for anything outside it."""

from functools import wraps

from django.http import HttpRequest
from django.shortcuts import render


def membership_required(view):
    """Staff views need a current account; a user in none gets a page that says so."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.membership is None:
            return render(request, "campaigns/no_account.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def for_user(queryset, user):
    """Restrict a queryset of account-owned objects to the accounts `user` is a member of."""
    return queryset.filter(account__memberships__user=user)
