"""Sender names: the names messages can come from. Everyone reads the list; account admins
request new ones, which wait for approval in admin (Sender names → Approve)."""

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from ..models import SenderName, validate_sender_name
from .shared import MANAGE, READ, can_manage, for_account, role_required


class SenderNameRequestForm(forms.Form):
    name = forms.CharField(
        label=_("Sender name"),
        max_length=15,
        help_text=_("3 to 11 letters and digits (no spaces or accents), or a phone number."),
        validators=[validate_sender_name],
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        existing = SenderName.objects.filter(account=self.account, name__iexact=name).first()
        if existing is not None:
            raise self.duplicate(existing)
        return name

    @staticmethod
    def duplicate(existing: SenderName) -> ValidationError:
        return ValidationError(
            gettext("This account already has “%(name)s” (%(status)s).")
            % {"name": existing.name, "status": existing.get_status_display().lower()}
        )


def _context(request: HttpRequest, form: SenderNameRequestForm | None = None) -> dict:
    return {
        "senders": for_account(SenderName.objects, request).order_by("name"),
        "form": form or SenderNameRequestForm(account=request.membership.account),
        "can_manage": can_manage(request.membership),
    }


@role_required(READ)
def sender_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/senders.html", _context(request))


@role_required(MANAGE)
@require_POST
def sender_request(request: HttpRequest) -> HttpResponse:
    form = SenderNameRequestForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return render(request, "campaigns/senders.html", _context(request, form))
    account, name = request.membership.account, form.cleaned_data["name"]
    try:
        with transaction.atomic():
            sender = SenderName.objects.create(
                account=account, name=name, status=SenderName.Status.PENDING
            )
    except IntegrityError:
        # The same request sent twice at once: the other one created it since the check.
        existing = SenderName.objects.filter(account=account, name=name).first()
        if existing is None:
            raise
        form.add_error("name", form.duplicate(existing))
        return render(request, "campaigns/senders.html", _context(request, form))
    flash.success(
        request,
        gettext("“%(name)s” requested. It can be used once an administrator approves it.")
        % {"name": sender.name},
    )
    return redirect("campaigns:sender_list")
