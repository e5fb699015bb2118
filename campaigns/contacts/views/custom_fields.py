"""Custom fields: what an account records about its contacts besides number, name and language
(text, number or date). Everyone reads them; account admins add, rename and delete them."""

from django.contrib import messages as flash
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from campaigns.views.shared import for_account, get_for_account

from .. import merge, services
from ..forms import FieldForm, FieldLabelForm
from ..models import Contact, ContactField, Segment, Template
from .common import MANAGE, MANAGE_REFUSAL, READ, allowed, can_manage, confirm, forbidden


def _page(request: HttpRequest, form: FieldForm | None = None, status: int = 200):
    return render(
        request,
        "contacts/field_list.html",
        {
            "fields": for_account(ContactField.objects, request),
            "form": form or FieldForm(account=request.membership.account),
            "can_manage": can_manage(request),
        },
        status=status,
    )


@allowed(READ)
def field_list(request: HttpRequest) -> HttpResponse:
    """GET: the account's fields. POST (account admins): add one."""
    if request.method != "POST":
        return _page(request)
    if not can_manage(request):
        return forbidden(request, MANAGE_REFUSAL)
    form = FieldForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return _page(request, form, status=400)
    field = form.save()
    flash.success(
        request,
        _("Field “%(label)s” added: write %(key)s in a text.")
        % {"label": field.label, "key": f"{{{field.key}}}"},
    )
    return redirect("contacts:field_list")


@allowed(MANAGE, MANAGE_REFUSAL)
def field_edit(request: HttpRequest, pk: int) -> HttpResponse:
    field = get_for_account(ContactField.objects, request, pk=pk)
    form = FieldLabelForm(request.POST or None, instance=field)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(
            request,
            _("Field %(key)s is now labelled “%(label)s”.")
            % {"key": f"{{{field.key}}}", "label": field.label},
        )
        return redirect("contacts:field_list")
    return render(
        request,
        "contacts/field_form.html",
        {"form": form, "field": field},
        status=400 if form.is_bound else 200,
    )


def users_of(field: ContactField) -> dict:
    """What uses the field: contacts with a value, segments with a condition on it, templates
    with its merge field."""
    account = field.account
    return {
        "contacts": Contact.objects.filter(account=account, values__has_key=field.key).count(),
        "segments": [
            segment.name
            for segment in Segment.objects.filter(account=account)
            if any(
                isinstance(rule, dict) and rule.get("field") == field.key
                for rule in (segment.rules if isinstance(segment.rules, list) else [])
            )
        ],
        "templates": [
            template.name
            for template in Template.objects.filter(account=account)
            if field.key in merge.keys(template.text)
        ],
    }


@allowed(MANAGE, MANAGE_REFUSAL)
def field_delete(request: HttpRequest, pk: int) -> HttpResponse:
    field = get_for_account(ContactField.objects, request, pk=pk)
    if request.method == "POST":
        removed = services.delete_field(field)
        flash.success(
            request,
            ngettext(
                "Field “%(label)s” deleted, and its value removed from %(n)s contact.",
                "Field “%(label)s” deleted, and its value removed from %(n)s contacts.",
                removed,
            )
            % {"label": field.label, "n": intcomma(removed)},
        )
        return redirect("contacts:field_list")
    used = users_of(field)
    said = [
        ngettext(
            "%(key)s is removed from the values of every contact: %(n)s contact has one now. "
            "This cannot be undone (export the contacts first to keep them).",
            "%(key)s is removed from the values of every contact: %(n)s contacts have one now. "
            "This cannot be undone (export the contacts first to keep them).",
            used["contacts"],
        )
        % {"key": f"{{{field.key}}}", "n": intcomma(used["contacts"])},
    ]
    if used["segments"]:
        said.append(
            _(
                "Segments with a condition on it (%(segments)s) then read it as empty for every "
                "contact: edit them."
            )
            % {"segments": ", ".join(used["segments"])}
        )
    if used["templates"]:
        said.append(
            _("Templates using %(key)s (%(templates)s) then give its fallback, or nothing.")
            % {"key": f"{{{field.key}}}", "templates": ", ".join(used["templates"])}
        )
    return confirm(
        request,
        title=_("Delete the field “%(label)s”?") % {"label": field.label},
        consequences=said,
        cancel=reverse("contacts:field_list"),
        button=_("Delete the field and its values"),
    )
