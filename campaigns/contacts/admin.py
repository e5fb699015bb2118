"""Contacts, custom fields, lists, segments and templates in the admin, by account as the
messaging models are. Deleting a contact here does what the contact page does: its number is
masked on its messages and replies and its waiting messages are canceled
(`services.delete_contact`)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.admin import PhoneSearchMixin, translate_labels

from . import segments, services
from .models import Contact, ContactField, ContactList, Membership, Segment, Template

# Names Django derives from attribute and class names, translatable (see `translate_labels`).
translate_labels(
    ContactField,
    _("custom field"),
    _("custom fields"),
    account=_("account"),
    key=_("key"),
    label=_("label"),
    type=_("type"),
    created_at=_("created at"),
)
translate_labels(
    Contact,
    _("contact"),
    _("contacts"),
    account=_("account"),
    number=_("number"),
    name=_("name"),
    language=_("language"),
    values=_("values"),
    created_at=_("created at"),
    updated_at=_("updated at"),
    lists=_("lists"),
)
translate_labels(
    Membership,
    _("list membership"),
    _("list memberships"),
    contact=_("contact"),
    contact_list=_("contact list"),
    added_at=_("added at"),
)
translate_labels(
    ContactList,
    _("contact list"),
    _("contact lists"),
    account=_("account"),
    name=_("name"),
    description=_("description"),
    created_at=_("created at"),
)
translate_labels(
    Segment,
    _("segment"),
    _("segments"),
    account=_("account"),
    name=_("name"),
    rules=_("rules"),
    created_at=_("created at"),
)
translate_labels(
    Template,
    _("template"),
    _("templates"),
    account=_("account"),
    name=_("name"),
    text=_("text"),
    created_at=_("created at"),
    updated_at=_("updated at"),
)


@admin.register(ContactField)
class ContactFieldAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "type", "account", "created_at"]
    list_filter = ["type", "account"]
    search_fields = ["key", "label"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]

    def get_readonly_fields(self, request: HttpRequest, obj: ContactField | None = None):
        # A key is written in texts and stored in every contact's values: set once.
        return ["key", "type"] if obj else []

    def delete_model(self, request: HttpRequest, obj: ContactField) -> None:
        services.delete_field(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ContactField]) -> None:
        for field in queryset:
            services.delete_field(field)


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["contact_list", "added_at"]
    readonly_fields = ["added_at"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields["contact_list"]
        # Only the contact's own account's lists.
        field.queryset = (
            ContactList.objects.filter(account=obj.account) if obj else ContactList.objects.none()
        )
        return formset


@admin.register(Contact)
class ContactAdmin(PhoneSearchMixin, admin.ModelAdmin):
    list_display = ["number", "name", "language", "account", "created_at"]
    list_filter = ["account"]
    search_fields = ["number__exact", "name"]
    phone_search_field = "number"
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]
    show_full_result_count = False

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        self._delete(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        self._delete(request, queryset.select_related("account"))

    def _delete(self, request: HttpRequest, contacts) -> None:
        for contact in contacts:
            try:
                services.delete_contact(contact, by=request.user.get_username())
            except services.StillSending:
                self.message_user(
                    request,
                    gettext(
                        "%(contact)s: a message to it is being sent right now; not deleted, "
                        "try again in a moment."
                    )
                    % {"contact": contact},
                    messages.ERROR,
                )


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "members", "created_at"]
    list_filter = ["account"]
    search_fields = ["name"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContactList]:
        return super().get_queryset(request).annotate(member_count=Count("membership"))

    @admin.display(description=_("contacts"), ordering="member_count")
    def members(self, obj: ContactList) -> int:
        return obj.member_count


class SegmentAdminForm(forms.ModelForm):
    """Rules typed here are checked as the segment editor checks them (`segments.clean`)."""

    class Meta:
        model = Segment
        fields = ["account", "name", "rules"]

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("account")
        if account is not None and "rules" in cleaned:
            try:
                cleaned["rules"] = segments.clean(account, cleaned["rules"])
            except ValidationError as error:
                self.add_error("rules", error)
        return cleaned


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ["name", "account", "created_at"]
    list_filter = ["account"]
    search_fields = ["name"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "updated_at"]
    list_filter = ["account"]
    search_fields = ["name", "text"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
