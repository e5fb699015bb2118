"""Custom fields: what an account records about its contacts besides number, name and language
(text, number or date). Everyone reads them; account admins add, rename and delete them."""

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from campaigns.views.shared import for_account, get_for_account

from .. import merge, services
from ..forms import FieldForm, FieldLabelForm
from ..models import Contact, ContactField, Segment, Template
from .common import MANAGE, MANAGE_REFUSAL, READ, allowed, can_manage, confirm, forbidden, plural


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
    flash.success(request, f"Field “{field.label}” added: write {{{field.key}}} in a text.")
    return redirect("contacts:field_list")


@allowed(MANAGE, MANAGE_REFUSAL)
def field_edit(request: HttpRequest, pk: int) -> HttpResponse:
    field = get_for_account(ContactField.objects, request, pk=pk)
    form = FieldLabelForm(request.POST or None, instance=field)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, f"Field {{{field.key}}} is now labelled “{field.label}”.")
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
            f"Field “{field.label}” deleted, and its value removed from "
            f"{plural(removed, 'contact')}.",
        )
        return redirect("contacts:field_list")
    used = users_of(field)
    said = [
        f"{{{field.key}}} is removed from the values of every contact: "
        f"{plural(used['contacts'], 'contact')} {'has' if used['contacts'] == 1 else 'have'} "
        "one now. This cannot be undone (export the contacts first to keep them).",
    ]
    if used["segments"]:
        said.append(
            f"Segments with a condition on it ({', '.join(used['segments'])}) then read it as "
            "empty for every contact: edit them."
        )
    if used["templates"]:
        said.append(
            f"Templates using {{{field.key}}} ({', '.join(used['templates'])}) then give its "
            "fallback, or nothing."
        )
    return confirm(
        request,
        title=f"Delete the field “{field.label}”?",
        consequences=said,
        cancel=reverse("contacts:field_list"),
        button="Delete the field and its values",
    )
