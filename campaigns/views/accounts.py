"""Switching the current account."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ..tenancy import SESSION_KEY


@login_required
@require_POST
def switch_account(request: HttpRequest) -> HttpResponse:
    try:
        account_id = int(request.POST.get("account", ""))
    except ValueError:
        raise Http404("No such account.") from None
    if not any(m.account_id == account_id for m in request.memberships):
        raise Http404("No such account.")
    request.session[SESSION_KEY] = account_id
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "campaigns:dashboard"
    return redirect(target)
