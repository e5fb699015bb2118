"""Categories: what messages are about (statistics, routes per category, provider tags).
Everyone reads the list; account admins add, rename and remove them."""

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from ..models import Campaign, Category, Message
from .shared import MANAGE, READ, can_manage, for_account, get_for_account, role_required


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "tag"]
        labels = {"name": _("Name"), "tag": _("Tag")}
        help_texts = {
            "tag": _(
                "Letters, digits and hyphens, passed to providers that take one. "
                "Empty: made from the name."
            )
        }

    def __init__(self, *args, account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["tag"].required = False

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(gettext("Give the category a name."))
        taken = Category.objects.filter(account=self.account, name__iexact=name)
        if taken.exclude(pk=self.instance.pk).exists():
            raise ValidationError(gettext("This account already has a category with this name."))
        return name

    def clean(self):
        cleaned = super().clean()
        tag = cleaned.get("tag") or slugify(cleaned.get("name") or "")
        if cleaned.get("name") and not tag:
            self.add_error(
                "tag", gettext("Give a tag: the name has no letters or digits to make one.")
            )
        elif tag:
            taken = Category.objects.filter(account=self.account, tag=tag)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error(
                    "tag",
                    gettext("The tag “%(tag)s” is already used by another category.")
                    % {"tag": tag},
                )
            cleaned["tag"] = tag
        return cleaned

    def save(self, commit: bool = True) -> Category:
        self.instance.account = self.account
        return super().save(commit)


def _page(request: HttpRequest, form: CategoryForm | None = None, status: int = 200):
    return render(
        request,
        "campaigns/categories.html",
        {
            "categories": for_account(Category.objects, request).order_by("name"),
            "form": form or CategoryForm(account=request.membership.account),
            "can_manage": can_manage(request.membership),
        },
        status=status,
    )


@role_required(READ)
def category_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@role_required(MANAGE)
@require_POST
def category_add(request: HttpRequest) -> HttpResponse:
    form = CategoryForm(request.POST, account=request.membership.account)
    if not form.is_valid():
        return _page(request, form, status=400)
    category = form.save()
    flash.success(request, gettext("Category “%(name)s” added.") % {"name": category.name})
    return redirect("campaigns:category_list")


@role_required(MANAGE)
@require_POST
def category_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a category no message or campaign uses (their statistics would lose it)."""
    category = get_for_account(Category.objects, request, pk=pk)
    used = (
        Message.objects.filter(category=category).exists()
        or Campaign.objects.filter(category=category).exists()
    )
    if used:
        flash.error(
            request,
            gettext(
                "“%(name)s” is used by messages or campaigns: it stays, so that their "
                "statistics keep it."
            )
            % {"name": category.name},
        )
    else:
        category.delete()
        flash.success(request, gettext("Category “%(name)s” removed.") % {"name": category.name})
    return redirect("campaigns:category_list")
