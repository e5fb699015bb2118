from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "campaigns.contacts"
    label = "contacts"
    verbose_name = "Contacts"
