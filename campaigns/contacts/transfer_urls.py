"""Importing contacts from CSV and exporting lists and segments (included by `urls`)."""

from django.urls import path

from . import transfer

urlpatterns = [
    path("contacts/import/", transfer.contact_import, name="import"),
    path(
        "contacts/import/progress/<str:token>/",
        transfer.import_progress,
        name="import_progress",
    ),
    path("contacts/export/", transfer.export_all, name="export"),
    path("contacts/lists/<int:pk>/export/", transfer.export_list, name="export_list"),
    path("contacts/segments/<int:pk>/export/", transfer.export_segment, name="export_segment"),
]
