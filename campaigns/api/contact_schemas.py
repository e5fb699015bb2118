"""What the contacts, lists and custom fields operations take and give (see `schemas` for the
conventions: every rule on an input's shape is a constraint of its field, shown in the schema).

What the schema cannot say is checked afterwards: whether a number is valid for its country, a
custom field one the account defines, a value of that field's type, a list the account's own.
The bulk operations check that content row by row (an error names its row, `contacts.17.number`)
and write the rows that pass; only a body of the wrong shape refuses the whole request.
"""

import math
from datetime import datetime
from typing import Annotated, Literal

from annotated_types import Ge, Le
from ninja import Schema
from pydantic import BeforeValidator, Field, StrictBool
from pydantic_core import PydanticCustomError

from campaigns.contacts.models import ContactField

from .schemas import (
    CURSOR,
    MAX_ID,
    NOT_BLANK,
    SINCE,
    Input,
    Integer,
    Number,
    Time,
    text_type,
)

# Contacts in one bulk request, and contacts in one request to add to (or remove from) a list.
MAX_CONTACTS = 10_000
# Custom values given for one contact.
MAX_FIELDS = 200
NAME_MAX = 200
LANGUAGE_MAX = 8


def text_problem(value: str) -> str:
    """Why a database cannot keep `value` ("" when it can): a NUL or a lone surrogate."""
    if "\x00" in value:
        return "The NUL character (\\u0000) is not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid Unicode text (lone surrogate)."
    return ""


VALUE_TYPES = "Give text, a number or a date (2026-05-31), or null to remove the value."


def _scalar(value: object) -> object:
    """A custom value: text, a finite number or null; not a boolean, list or object."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("field_value", VALUE_TYPES)
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("field_value", VALUE_TYPES)
    return value


def _storable_scalar(value: object) -> object:
    value = _scalar(value)
    if isinstance(value, str) and (problem := text_problem(value)):
        raise PydanticCustomError("text", problem)
    return value


FIELDS_DESCRIPTION = (
    "Custom values by field key (`GET /contact-fields` lists the account's fields and their "
    "types): text, a number, or a date as 2026-05-31 (31/05/2026 is read too). Null or an "
    "empty string removes a value; fields not given are kept."
)
FieldValue = Annotated[str | int | float | None, BeforeValidator(_storable_scalar)]
Fields = Annotated[
    dict[str, FieldValue],
    Field(max_length=MAX_FIELDS, description=FIELDS_DESCRIPTION, examples=[{"city": "Lyon"}]),
]
ContactName = text_type(max_length=NAME_MAX)
Language = text_type(max_length=LANGUAGE_MAX)
# The bounds next to `int` (so that the schema shows them as minimum and maximum), then the
# check of `schemas.Integer` (a JSON integer, not a string or a boolean).
Id = Annotated[int, Ge(1), Le(MAX_ID), *Integer.__metadata__]
ListName = text_type(NOT_BLANK, min_length=1, max_length=100)
ListDescription = text_type(max_length=300)
FieldType = Literal[tuple(ContactField.Type.values)]  # type: ignore[valid-type]


class ContactIn(Input):
    number: Number = Field(
        description="Unique in the account: international (+33612345678) or a national number "
        "of the account's default country (`06 12 34 56 78` for France).",
    )
    name: ContactName = Field("", description="Stored without surrounding spaces.")
    language: Language = Field("", description="Which language they read: fr, ro, en…")
    fields: Fields = Field(default_factory=dict)


class ContactPatch(Input):
    """Only what is given changes."""

    number: Number = Field(None, description="A new number, unique in the account.")
    name: ContactName = Field(None, description="Empty: no name.")
    language: Language = Field(None, description="Empty: not known.")
    fields: Fields = Field(None)


class ContactOut(Schema):
    id: int
    number: str = Field(description="In international form (E.164).")
    name: str
    language: str
    fields: dict[str, str | int | float] = Field(
        description="Custom values by field key: numbers as JSON numbers, dates as 2026-05-31."
    )
    lists: list[int] = Field(description="The ids of the lists it is in.")
    opted_out: bool = Field(description="The number opted out of messages from this account.")
    created_at: datetime
    updated_at: datetime


class ContactPage(Schema):
    results: list[ContactOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class ContactFilters(Input):
    list_id: int = Field(None, ge=1, le=MAX_ID, description="Only the members of this list.")
    segment_id: int = Field(None, ge=1, le=MAX_ID, description="Only the contacts of this segment.")
    number: Number = Field(None, description="Only the contact with this number.")
    search: text_type(max_length=100) = Field(
        None,
        description="Only those whose name contains this (any case) or whose number "
        "contains its digits.",
    )
    updated_since: Time = Field(None, description=f"{SINCE} Created or last changed.")
    cursor: str = Field(None, pattern=CURSOR, description="`next_cursor` of a page.")
    limit: int = Field(50, ge=1, le=200)


class ContactDeleted(Schema):
    id: int
    canceled_messages: int = Field(description="Messages to it still waiting, now canceled.")
    masked_messages: int = Field(description="Messages whose number is now masked (+33•••••5678).")
    masked_replies: int = Field(description="Replies whose number is now masked.")


BulkValue = Annotated[str | int | float | None, BeforeValidator(_scalar)]


class BulkContact(Input):
    """One row of a bulk upsert: its content is checked on its own (see the operation)."""

    number: str = Field(
        description="International (+33612345678) or national of the account's country.",
        examples=["06 12 34 56 78"],
    )
    name: str | None = Field(
        None,
        description=f"At most {NAME_MAX} characters; left out or empty: an existing "
        "contact keeps its own.",
    )
    language: str | None = Field(
        None,
        description=f"At most {LANGUAGE_MAX} characters; left out or empty: an existing "
        "contact keeps its own.",
    )
    fields: dict[str, BulkValue] = Field(
        default_factory=dict, max_length=MAX_FIELDS, description=FIELDS_DESCRIPTION
    )


class BulkIn(Input):
    contacts: list[BulkContact] = Field(min_length=1, max_length=MAX_CONTACTS)
    update_existing: StrictBool = Field(
        True,
        description="A number that is already a contact: true, its name, language and the "
        "values given are updated (other values kept); false, it is left as it is.",
    )
    list_id: Id | None = Field(None, description="Add every contact of the rows to this list.")


class BulkOut(Schema):
    created: int
    updated: int
    skipped: int = Field(description="Existing contacts left as they were (`update_existing`).")
    duplicates: int = Field(description="Rows whose number an earlier row had: left out.")
    rejected: int = Field(description="Rows with errors: not written.")
    added_to_list: int = Field(description="Contacts that were not in the list yet.")
    ids: list[int | None] = Field(
        description="The contact of each row, in the order given (a duplicate row: the contact "
        "of the first); null for a row with errors."
    )
    errors: dict[str, list[str]] = Field(
        description="What is wrong with each row not written, by its place and field "
        "(`contacts.17.number`, `contacts.3.fields.age`), as in an error's `fields`."
    )


class ContactFieldOut(Schema):
    key: str = Field(description="The key in a contact's `fields`, and the merge field {key}.")
    label: str
    type: FieldType = Field(
        description="text; number (a JSON number); date (a string, 2026-05-31)."
    )


class ListIn(Input):
    name: ListName = Field(description="Unique in the account.")
    description: ListDescription = ""


class ListPatch(Input):
    name: ListName = Field(None, description="Unique in the account.")
    description: ListDescription = None


class ListOut(Schema):
    id: int
    name: str
    description: str
    members: int = Field(description="How many contacts it has.")
    created_at: datetime


class ListPage(Schema):
    results: list[ListOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class ListFilters(Input):
    cursor: str = Field(None, pattern=CURSOR, description="`next_cursor` of a page.")
    limit: int = Field(50, ge=1, le=200)


class ListDeleted(Schema):
    id: int
    members: int = Field(description="Contacts it had; they stay contacts.")


class MembersIn(Input):
    contact_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_CONTACTS, description="Contacts by id."
    )
    numbers: list[str] = Field(
        default_factory=list,
        max_length=MAX_CONTACTS,
        description="Contacts by number, international or national of the account's country.",
        examples=[["06 12 34 56 78"]],
    )


MEMBER_ERRORS = (
    "Items that are not contacts of this account, by their place (`numbers.2`, "
    "`contact_ids.0`); the others were done."
)


class MembersAdded(Schema):
    added: int = Field(description="Contacts added.")
    already: int = Field(description="Contacts that were in the list already.")
    members: int = Field(description="How many contacts the list has now.")
    errors: dict[str, list[str]] = Field(description=MEMBER_ERRORS)


class MembersRemoved(Schema):
    removed: int = Field(description="Contacts removed from the list (they stay contacts).")
    not_members: int = Field(description="Contacts that were not in the list.")
    members: int = Field(description="How many contacts the list has now.")
    errors: dict[str, list[str]] = Field(description=MEMBER_ERRORS)
