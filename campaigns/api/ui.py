"""The API keys page: account admins list, create and revoke their account's keys.

A new key is shown once, in the answer to the request that created it (never stored, never
shown again); pages that show it are not cached. Operators and viewers get 403; another
account's key is a 404.
"""

import logging

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from campaigns.views.shared import MANAGE, for_account, get_for_account, role_required

from . import keys
from .forms import ApiKeyForm
from .models import ApiKey

logger = logging.getLogger(__name__)

TEMPLATE = "campaigns/api_keys.html"


def _render(request: HttpRequest, form: ApiKeyForm | None = None, **extra) -> HttpResponse:
    context = {
        "form": form or ApiKeyForm(),
        "api_keys": for_account(ApiKey.objects.select_related("created_by"), request),
        **extra,
    }
    template = f"{TEMPLATE}#keys" if request.htmx else TEMPLATE
    return render(request, template, context)


@never_cache
@role_required(MANAGE)
def key_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@never_cache
@role_required(MANAGE)
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _render(request, form)
    api_key, secret = keys.issue(
        request.membership.account, name=form.cleaned_data["name"], created_by=request.user
    )
    logger.info(
        "api key created: key=%s account=%s by=%s",
        api_key.prefix,
        api_key.account_id,
        request.user.pk,
    )
    # Shown in this answer only: it is stored nowhere (not even in the session).
    return _render(request, created=api_key, secret=secret)


@role_required(MANAGE)
@require_POST
def key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_for_account(ApiKey.objects, request, pk=pk)
    if keys.revoke(api_key):
        logger.info(
            "api key revoked: key=%s account=%s by=%s",
            api_key.prefix,
            api_key.account_id,
            request.user.pk,
        )
        flash.success(
            request,
            _("Key “%(name)s” (%(prefix)s…) revoked.")
            % {"name": api_key.name, "prefix": api_key.prefix},
        )
    else:
        flash.info(request, _("Key “%(name)s” was already revoked.") % {"name": api_key.name})
    if request.htmx:
        return _render(request)
    return redirect("api_keys:list")
