"""The contacts pages, under the `contacts` namespace."""

from django.urls import include, path

from .views import contacts, custom_fields, lists, segments, templates

app_name = "contacts"

urlpatterns = [
    path("contacts/", contacts.contact_list, name="contact_list"),
    path("contacts/add/", contacts.contact_add, name="contact_add"),
    path("contacts/<int:pk>/", contacts.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", contacts.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/lists/", contacts.contact_add_to_list, name="contact_add_to_list"),
    path(
        "contacts/<int:pk>/lists/<int:list_pk>/remove/",
        contacts.contact_remove_from_list,
        name="contact_remove_from_list",
    ),
    path("contacts/fields/", custom_fields.field_list, name="field_list"),
    path("contacts/fields/<int:pk>/edit/", custom_fields.field_edit, name="field_edit"),
    path("contacts/fields/<int:pk>/delete/", custom_fields.field_delete, name="field_delete"),
    path("contacts/lists/", lists.list_index, name="list_index"),
    path("contacts/lists/<int:pk>/", lists.list_detail, name="list_detail"),
    path("contacts/lists/<int:pk>/edit/", lists.list_edit, name="list_edit"),
    path("contacts/lists/<int:pk>/delete/", lists.list_delete, name="list_delete"),
    path("contacts/segments/", segments.segment_list, name="segment_list"),
    path("contacts/segments/add/", segments.segment_add, name="segment_add"),
    path("contacts/segments/count/", segments.segment_count, name="segment_count"),
    path("contacts/segments/<int:pk>/", segments.segment_detail, name="segment_detail"),
    path("contacts/segments/<int:pk>/edit/", segments.segment_edit, name="segment_edit"),
    path("contacts/segments/<int:pk>/delete/", segments.segment_delete, name="segment_delete"),
    path("contacts/templates/", templates.template_list, name="template_list"),
    path("contacts/templates/<int:pk>/edit/", templates.template_edit, name="template_edit"),
    path("contacts/templates/<int:pk>/delete/", templates.template_delete, name="template_delete"),
    # Import and export (campaigns.contacts.transfer_urls).
    path("", include("campaigns.contacts.transfer_urls")),
]
