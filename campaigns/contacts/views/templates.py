"""Templates: saved texts with merge fields, chosen in compose and sent by name through the API.
Everyone reads them; operators and account admins write them. A merge field that is neither a
contact's own (name, number, language) nor a custom field is flagged: contacts have no value
for it (a CSV column of that name fills it in compose)."""

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from campaigns.views.shared import for_account, get_for_account

from .. import merge
from ..forms import TemplateForm, unknown_keys
from ..models import BUILT_IN, ContactField, Template
from .common import EDIT, READ, allowed, can_edit, confirm, forbidden


def described(template: Template, known: set[str]) -> dict:
    """A template with its merge fields, each marked known or not."""
    placeholders = merge.placeholders(template.text)
    return {
        "template": template,
        "placeholders": placeholders,
        "unknown": sorted({p.key for p in placeholders if p.key not in known}),
    }


def _known(request: HttpRequest) -> set[str]:
    custom = for_account(ContactField.objects, request).values_list("key", flat=True)
    return set(BUILT_IN) | set(custom)


def _index(request: HttpRequest, form: TemplateForm | None = None, status: int = 200):
    known = _known(request)
    return render(
        request,
        "contacts/template_list.html",
        {
            "rows": [described(t, known) for t in for_account(Template.objects, request)],
            "form": form or TemplateForm(account=request.membership.account),
            "can_edit": can_edit(request),
        },
        status=status,
    )


def _saved(request: HttpRequest, template: Template, verb: str) -> None:
    """Say the template was `verb` ("added" or "saved"), warning of unknown merge fields."""
    said = (
        _("Template “%(name)s” added.") if verb == "added" else _("Template “%(name)s” saved.")
    ) % {"name": template.name}
    unknown = unknown_keys(merge.keys(template.text), template.account)
    if unknown:
        fields = ", ".join(f"{{{key}}}" for key in unknown)
        flash.warning(
            request,
            said
            + " "
            + _(
                "%(fields)s: neither a contact field nor a custom field, so contacts get its "
                "fallback or nothing."
            )
            % {"fields": fields},
        )
    else:
        flash.success(request, said)


@allowed(READ)
def template_list(request: HttpRequest) -> HttpResponse:
    """GET: the templates. POST (operators, account admins): add one."""
    if request.method != "POST":
        return _index(request)
    if not can_edit(request):
        return forbidden(request, _("Only operators and account admins can write templates."))
    form = TemplateForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return _index(request, form, status=400)
    _saved(request, form.save(), "added")
    return redirect("contacts:template_list")


@allowed(EDIT)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_for_account(Template.objects, request, pk=pk)
    name = template.name  # as saved, whatever is typed
    form = TemplateForm(request.POST or None, instance=template, account=template.account)
    if request.method == "POST" and form.is_valid():
        _saved(request, form.save(), "saved")
        return redirect("contacts:template_list")
    return render(
        request,
        "contacts/template_form.html",
        {"form": form, "name": name, "row": described(template, _known(request))},
        status=400 if form.is_bound else 200,
    )


@allowed(EDIT)
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_for_account(Template.objects, request, pk=pk)
    if request.method == "POST":
        template.delete()
        flash.success(request, _("Template “%(name)s” deleted.") % {"name": template.name})
        return redirect("contacts:template_list")
    return confirm(
        request,
        title=_("Delete the template “%(name)s”?") % {"name": template.name},
        consequences=[
            _("It is no longer offered in compose, and the API can no longer send it by name."),
            _("Messages already sent with it keep their text."),
        ],
        cancel=reverse("contacts:template_list"),
        button=_("Delete the template"),
    )
