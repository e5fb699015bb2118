"""An account's contacts, the custom fields it defines for them, its lists and segments.

A contact's custom values live in one JSON object (`Contact.values`, keyed by the field's key):
one row per contact, written in one statement by imports, read in one by merge fields. Numbers
are JSON numbers, dates ISO strings (`2026-05-01`), text strings; the field's type says which
(`fields.cast`).
"""

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.models import Account
from campaigns.phone import PhoneNumberField

# A merge field's key: what goes between braces in a text (`{first_name}`).
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Keys of every contact, which custom fields cannot take.
BUILT_IN = ("number", "name", "language")


def validate_key(value: str) -> None:
    if not KEY.match(value or ""):
        raise ValidationError(
            gettext(
                "Use lowercase letters, digits and _, starting with a letter (e.g. first_name), "
                "at most 40 characters."
            )
        )
    if value in BUILT_IN:
        raise ValidationError(
            gettext("“%(key)s” is a field of every contact already.") % {"key": value}
        )


class ContactField(models.Model):
    """A custom field an account defines for its contacts (`city`, `birthday`...)."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contact_fields")
    key = models.CharField(
        max_length=40,
        validators=[validate_key],
        help_text=_("What goes between braces in a text: {first_name}."),
    )
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.TEXT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="contact_field_unique_key")
        ]

    def __str__(self) -> str:
        return self.label


class Contact(models.Model):
    """A person an account sends to: one per number in the account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    number = PhoneNumberField()
    name = models.CharField(max_length=200, blank=True)
    language = models.CharField(
        max_length=8, blank=True, help_text=_("e.g. fr, ro, en: which language they read.")
    )
    values = models.JSONField(default=dict, blank=True)
    lists = models.ManyToManyField("ContactList", through="Membership", related_name="contacts")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "number"], name="contact_unique_number")
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="contact_account_id_idx"),
            models.Index(fields=["account", "name"], name="contact_account_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.number


class ContactList(models.Model):
    """A static list of contacts, chosen one by one or by import."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="contact_list_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_list", "contact"], name="contact_membership_unique"
            )
        ]
        indexes = [models.Index(fields=["contact"], name="contact_membership_contact_idx")]

    def __str__(self) -> str:
        return f"{self.contact} in {self.contact_list}"


class Segment(models.Model):
    """A saved filter over an account's contacts: its members are found when it is used
    (`segments.contacts`), so it is always up to date. `rules` is a list of conditions, all
    of which a contact must meet (`segments.RULES` says which there are)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=100)
    rules = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="segment_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Template(models.Model):
    """A saved text with merge fields, chosen in compose or sent by name through the API."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(
        max_length=100, help_text=_("How it is chosen in compose and named in the API.")
    )
    text = models.TextField(max_length=1530)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="template_unique_name"),
            models.CheckConstraint(condition=~Q(name=""), name="template_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name
