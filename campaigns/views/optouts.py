"""Opt-outs: numbers that must not be sent to. Everyone reads; account admins add, remove and
import. The list pages by keyset (`?after=<id>`, newest first), like the messages."""

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import phone
from ..models import OptOut
from ..phone import PhoneNumberFormField
from ..services import optouts
from .shared import MANAGE, READ, can_manage, for_account, get_for_account, role_required

PAGE_SIZE = 50
MAX_FILE_BYTES = 5 * 1024 * 1024


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Find a number"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "type": "search"}),
    )

    def __init__(self, *args, region: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.region = region

    def clean_q(self) -> str:
        value = self.cleaned_data["q"].strip()
        if not value:
            return ""
        try:
            return phone.normalize(value, self.region)
        except ValidationError as exc:
            raise ValidationError(
                gettext("%(problem)s Search a whole number.") % {"problem": exc.messages[0]}
            ) from None


class OptOutForm(forms.Form):
    number = PhoneNumberFormField(
        label=_("Number to opt out"),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )

    def __init__(self, *args, account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["number"].region = account.region
        self.fields["number"].help_text = phone.help_text(account.region)

    def clean_number(self) -> str:
        number = self.cleaned_data["number"]
        if OptOut.objects.filter(account=self.account, number=number).exists():
            raise ValidationError(gettext("%(number)s is already opted out.") % {"number": number})
        return number


class ImportForm(forms.Form):
    numbers = forms.CharField(
        label=_("Paste numbers"),
        required=False,
        help_text=_("One number per line, with its country code."),
        widget=forms.Textarea(attrs={"rows": 8}),
    )
    file = forms.FileField(
        label=_("Or a CSV file"),
        required=False,
        help_text=_(
            "The column headed “number” (or “phone”, “mobile”), else the first column. "
            "At most 5 MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if not upload:
            return ""
        if upload.size > MAX_FILE_BYTES:
            raise ValidationError(gettext("This file is larger than 5 MB: split it in parts."))
        raw = upload.read()
        for encoding in ("utf-8-sig", "cp1252"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise ValidationError(gettext("This file is not text (UTF-8 or Windows-1252)."))

    def clean(self):
        cleaned = super().clean()
        pasted, uploaded = cleaned.get("numbers", "").strip(), cleaned.get("file")
        if not self.errors and not pasted and not uploaded:
            raise ValidationError(gettext("Paste some numbers or choose a CSV file."))
        if pasted and uploaded:
            raise ValidationError(
                gettext("Paste numbers or choose a file, not both: import one at a time.")
            )
        return cleaned

    def text(self) -> str:
        return self.cleaned_data["file"] or self.cleaned_data["numbers"]


def _list_context(request: HttpRequest, add_form: OptOutForm | None = None) -> dict:
    search = SearchForm(request.GET, region=request.membership.account.region)
    queryset = for_account(OptOut.objects, request)
    rows, older = [], None
    after = request.GET.get("after", "")
    if search.is_valid():
        if search.cleaned_data["q"]:
            queryset = queryset.filter(number=search.cleaned_data["q"])
        if after.isdigit():
            queryset = queryset.filter(id__lt=int(after))
        rows = list(queryset.order_by("-id")[: PAGE_SIZE + 1])
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            older = rows[-1].pk
    return {
        "search": search,
        "rows": rows,
        "older": older,
        "paged": after.isdigit(),
        "add_form": add_form or OptOutForm(account=request.membership.account),
        "can_manage": can_manage(request.membership),
    }


@role_required(READ)
def optout_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/optouts.html", _list_context(request))


@role_required(MANAGE)
@require_POST
def optout_add(request: HttpRequest) -> HttpResponse:
    form = OptOutForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return render(request, "campaigns/optouts.html", _list_context(request, form))
    number = form.cleaned_data["number"]
    optouts.add(request.membership.account, [number])
    flash.success(
        request,
        gettext("%(number)s opted out: messages to it will be blocked.") % {"number": number},
    )
    return redirect("campaigns:optout_list")


@role_required(MANAGE)
@require_POST
def optout_remove(request: HttpRequest, pk: int) -> HttpResponse:
    optout = get_for_account(OptOut.objects, request, pk=pk)
    optout.delete()
    flash.success(
        request,
        gettext("%(number)s removed from the opt-outs: it can be sent to again.")
        % {"number": optout.number},
    )
    return redirect("campaigns:optout_list")


@role_required(MANAGE)
def optout_import(request: HttpRequest) -> HttpResponse:
    result = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            parsed = optouts.parse_numbers(form.text(), request.membership.account.region)
            added = optouts.add(
                request.membership.account, parsed.numbers, source=OptOut.Source.IMPORT
            )
            result = {
                "added": added,
                "already": len(parsed.numbers) - added,
                "duplicates": parsed.duplicates,
                "errors": parsed.errors,
            }
            form = ImportForm()
    else:
        form = ImportForm()
    return render(request, "campaigns/optout_import.html", {"form": form, "result": result})
