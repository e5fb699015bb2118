"""Writing contacts one at a time (pages, the API) and deleting them with their personal data.

Imports and the API's bulk upsert write many at once: `importing`.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ExpressionWrapper, F, Func, JSONField, TextField, Value
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import phone, statuses
from campaigns.models import Account, Message, MessageEvent, Reply
from campaigns.services import lifecycle
from smshub.logging import PHONE_RE, mask_number

from .fields import cast
from .models import Contact, ContactField, ContactList, Membership

LANGUAGE_MAX = 8


def field_types(account: Account) -> dict[str, str]:
    """The account's custom fields: key → type."""
    return dict(ContactField.objects.filter(account=account).values_list("key", "type"))


def clean_values(account: Account, raw: dict, types: dict[str, str] | None = None) -> dict:
    """Custom values as given (`{"city": "Lyon", "age": "34"}`) made storable: each key one of
    the account's fields, each value cast to its type; an empty value removes the field. Raises
    ValidationError as a dict of messages by key."""
    types = field_types(account) if types is None else types
    values, errors = {}, {}
    for key, value in raw.items():
        if key not in types:
            errors[key] = [
                _("No custom field “%(key)s” in this account: add it first.") % {"key": key}
            ]
            continue
        if (value is not None and not isinstance(value, str | int | float)) or isinstance(
            value, bool
        ):
            errors[key] = ["Give text, a number or a date."]
            continue
        try:
            values[key] = cast("" if value is None else str(value), types[key])
        except ValidationError as error:
            errors[key] = error.messages
    if errors:
        raise ValidationError(errors)
    return values


def merged_values(current: dict, changes: dict) -> dict:
    """`current` with `changes` applied: a None value removes its field."""
    result = {**current, **changes}
    return {key: value for key, value in result.items() if value is not None}


def save_contact(
    account: Account,
    *,
    number: str,
    name: str = "",
    language: str = "",
    values: dict | None = None,
    contact: Contact | None = None,
) -> Contact:
    """Create a contact (or change `contact`): the number read in the account's country, the
    values checked against its fields. Raises ValidationError (a dict by field) for bad input,
    and for a number another contact of the account has."""
    errors: dict[str, list[str]] = {}
    try:
        number = phone.normalize(number, account.region)
    except ValidationError as error:
        errors["number"] = error.messages
    name, language = (name or "").strip(), (language or "").strip().lower()
    if len(name) > 200:
        errors["name"] = ["At most 200 characters."]
    if len(language) > LANGUAGE_MAX:
        errors["language"] = [_("At most %(n)s characters, e.g. fr or ro.") % {"n": LANGUAGE_MAX}]
    cleaned = {}
    try:
        cleaned = clean_values(account, values or {})
    except ValidationError as error:
        errors.update({f"values.{key}": messages for key, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    target = contact or Contact(account=account)
    target.number, target.name, target.language = number, name, language
    target.values = merged_values(contact.values if contact else {}, cleaned)
    target.updated_at = timezone.now()
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise ValidationError(
            {"number": [f"{number} is already a contact of this account."]}
        ) from None
    return target


def add_to_list(contact_list: ContactList, contacts: Iterable[Contact | int]) -> int:
    """Add contacts (of the list's account: the caller checked) to a list; returns how many
    were not in it yet."""
    ids = [c if isinstance(c, int) else c.pk for c in contacts]
    before = Membership.objects.filter(contact_list=contact_list).count()
    Membership.objects.bulk_create(
        (Membership(contact_list=contact_list, contact_id=pk) for pk in ids),
        ignore_conflicts=True,
        batch_size=1000,
    )
    return Membership.objects.filter(contact_list=contact_list).count() - before


def remove_from_list(contact_list: ContactList, contacts: Iterable[Contact | int]) -> int:
    ids = [c if isinstance(c, int) else c.pk for c in contacts]
    deleted, _ = Membership.objects.filter(contact_list=contact_list, contact_id__in=ids).delete()
    return deleted


class StillSending(Exception):
    """A message to the contact is being handed to a provider right now."""


@dataclass
class Deleted:
    canceled: int  # messages that were still waiting to be sent
    masked_messages: int
    masked_replies: int


def masked(number: str) -> str:
    """`+33612345678` → `+33•••••5678`: enough to tell messages apart, not to call anyone."""
    return PHONE_RE.sub(mask_number, number)


def delete_contact(contact: Contact, *, by: str = "") -> Deleted:
    """Delete a contact and its personal data: its custom values and list memberships go with
    it; messages still waiting to be sent to its number are canceled; the number is masked on
    every message sent to it and every reply from it. Its opt-out, if any, stays: it is what
    keeps the number from being sent to again.

    Raises StillSending while a message to it is being handed to a provider (a moment)."""
    account, number = contact.account, contact.number
    hidden = masked(number)
    now = timezone.now()
    with transaction.atomic():
        messages = Message.objects.select_for_update().filter(account=account, recipient=number)
        rows = list(messages.values_list("id", "status"))
        if any(status == statuses.S.SENDING for _, status in rows):
            raise StillSending
        waiting = [(pk, status) for pk, status in rows if status in statuses.CANCELABLE]
        canceled = lifecycle.cancel_waiting(
            waiting,
            now,
            source=MessageEvent.Source.STAFF,
            detail=f"Canceled: the contact was deleted{f' by {by}' if by else ''}.",
        )
        masked_messages = Message.objects.filter(account=account, recipient=number).update(
            recipient=hidden
        )
        masked_replies = Reply.objects.filter(account=account, from_number=number).update(
            from_number=hidden
        )
        contact.delete()
    return Deleted(canceled, masked_messages, masked_replies)


def delete_field(field: ContactField) -> int:
    """Delete a custom field and remove its key from the values of every contact of its
    account, in one statement; returns how many contacts had a value."""
    holders = Contact.objects.filter(account=field.account, values__has_key=field.key)
    if connection.vendor == "postgresql":
        key = Cast(Value(field.key), TextField())
        without = Func(F("values"), key, function="", arg_joiner=" - ")
    else:  # SQLite (and MySQL): keys are [a-z0-9_], a plain JSON path
        without = Func(F("values"), Value(f"$.{field.key}"), function="JSON_REMOVE")
    with transaction.atomic():
        changed = holders.update(values=ExpressionWrapper(without, output_field=JSONField()))
        field.delete()
    return changed
