"""Contacts: creating, reading, changing, listing and deleting them, one or 10,000 at a time;
and the custom fields an account defines for them."""

import contextlib
import logging
import re

from django.core.exceptions import FieldError, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from campaigns import phone, timerange
from campaigns.contacts import importing, segments, services
from campaigns.contacts.models import Contact, ContactField, ContactList, Membership, Segment
from campaigns.models import Account, OptOut

from .. import idempotency, validation
from ..contact_schemas import (
    LANGUAGE_MAX,
    NAME_MAX,
    BulkContact,
    BulkIn,
    BulkOut,
    ContactDeleted,
    ContactFieldOut,
    ContactFilters,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    text_problem,
)
from ..errors import AUTH_ERRORS, ApiError, Error, invalid, not_found
from ..idempotency import Outcome
from ..schemas import IdempotencyKey, PathId
from . import paging

logger = logging.getLogger(__name__)

router = Router(tags=["Contacts"])

# Queries of ids or numbers are made in chunks of this many (SQLite's variables per statement).
CHUNK = 1000
NO_LIST = "No list with this id in your account."


def account_contacts(account: Account, queryset: QuerySet | None = None) -> QuerySet:
    """The account's contacts, each with whether its number opted out."""
    queryset = Contact.objects.filter(account=account) if queryset is None else queryset
    opted_out = OptOut.objects.filter(account=account, number=OuterRef("number"))
    return queryset.annotate(opted_out=Exists(opted_out))


def contacts_out(contacts: list[Contact]) -> list[ContactOut]:
    """The contacts as the API shows them, their lists read in one query."""
    lists: dict[int, list[int]] = {contact.pk: [] for contact in contacts}
    memberships = Membership.objects.filter(contact_id__in=list(lists)).order_by("contact_list_id")
    for contact_id, list_id in memberships.values_list("contact_id", "contact_list_id"):
        lists[contact_id].append(list_id)
    return [
        ContactOut.model_construct(
            id=contact.pk,
            number=contact.number,
            name=contact.name,
            language=contact.language,
            fields=contact.values or {},
            lists=lists[contact.pk],
            opted_out=bool(getattr(contact, "opted_out", False)),
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )
        for contact in contacts
    ]


def contact_out(account: Account, contact_id: int) -> ContactOut:
    contact = account_contacts(account).filter(pk=contact_id).first()
    if contact is None:
        raise not_found("contact")
    return contacts_out([contact])[0]


def _save(account: Account, contact: Contact | None, **given) -> Contact:
    """`services.save_contact`, its errors in the API's words: `fields.<key>` for a custom
    value, 409 for a number another contact has."""
    try:
        return services.save_contact(account, contact=contact, **given)
    except ValidationError as error:
        fields = {
            re.sub(r"^values\.", "fields.", name): messages
            for name, messages in error.message_dict.items()
        }
        if "number" in fields:
            other = _other_contact(account, given["number"], contact)
            if other is not None:
                raise ApiError(
                    409,
                    "already_exists",
                    f"{other.number} is already a contact of this account (id {other.pk}): "
                    f"change it with PATCH /api/v1/contacts/{other.pk}.",
                    {"number": [f"{other.number} is already a contact of this account."]},
                ) from None
        raise invalid(fields) from None


def _other_contact(account: Account, number: str, contact: Contact | None) -> Contact | None:
    try:
        number = phone.normalize(number, account.region)
    except ValidationError:
        return None
    others = Contact.objects.filter(account=account, number=number)
    if contact is not None:
        others = others.exclude(pk=contact.pk)
    return others.first()


@router.post(
    "/contacts",
    operation_id="create_contact",
    response={201: ContactOut, 400: Error, 409: Error, 413: Error, 422: Error, **AUTH_ERRORS},
    summary="Create a contact",
    description="A number that is already a contact of the account is a 409 naming it (change "
    "it with PATCH). A custom value must be of a field the account defines, of its type "
    "(`GET /contact-fields`): otherwise 422 naming it (`fields.age`).",
)
def create_contact(
    request: HttpRequest, payload: ContactIn, idempotency_key: IdempotencyKey = None
):
    account = request.auth.account

    def operation() -> Outcome:
        contact = _save(
            account,
            None,
            number=payload.number,
            name=payload.name,
            language=payload.language,
            values=payload.fields,
        )
        logger.info("api: contact created: contact=%s key=%s", contact.pk, request.auth.prefix)
        return Outcome(201, contact_out(account, contact.pk).model_dump())

    return idempotency.run(request, operation)


@router.get(
    "/contacts",
    operation_id="list_contacts",
    response={200: ContactPage, 422: Error, **AUTH_ERRORS},
    summary="List contacts, newest first",
    description="Filters combine: the members of a list, the contacts of a segment (its "
    "conditions as they stand now), one number, a search in names and numbers, changed since.",
)
def list_contacts(request: HttpRequest, filters: Query[ContactFilters]):
    account = request.auth.account
    errors: validation.Errors = {}
    queryset = None
    if filters.segment_id is not None:
        queryset = _segment_contacts(account, filters.segment_id, errors)
    queryset = account_contacts(account, queryset)
    if filters.list_id is not None:
        if not ContactList.objects.filter(account=account, pk=filters.list_id).exists():
            errors.setdefault("list_id", []).append(NO_LIST)
        member = Membership.objects.filter(contact=OuterRef("pk"), contact_list=filters.list_id)
        queryset = queryset.filter(Exists(member))
    if filters.number is not None:
        number = validation.number(filters.number, "number", errors, account.region)
        queryset = queryset.filter(number=number)
    if filters.search is not None and filters.search.strip():
        queryset = queryset.filter(_search(account, filters.search.strip()))
    if filters.updated_since is not None:
        clamped = timerange.clamp(filters.updated_since)
        since = validation.moment(account, clamped, "updated_since", errors)
        queryset = queryset.filter(updated_at__gte=since)
    if errors:
        raise invalid(errors)
    rows, cursor = paging.page(queryset, filters.cursor, filters.limit)
    return ContactPage(results=contacts_out(rows), next_cursor=cursor)


def _segment_contacts(account: Account, segment_id: int, errors: validation.Errors):
    segment = Segment.objects.filter(account=account, pk=segment_id).first()
    if segment is None:
        errors.setdefault("segment_id", []).append("No segment with this id in your account.")
        return None
    try:
        return segments.contacts(account, segment.rules)
    except (KeyError, TypeError, ValueError, AttributeError, FieldError, ValidationError):
        # Conditions changed by hand into something `segments` cannot read.
        logger.warning("api: segment rules unreadable: segment=%s", segment.pk)
        errors.setdefault("segment_id", []).append(
            "This segment's conditions cannot be read: an account admin can fix them on its page."
        )
        return None


def _search(account: Account, text: str) -> Q:
    condition = Q(name__icontains=text)
    digits = re.sub(r"\D", "", text)
    if digits:
        condition |= Q(number__contains=digits)
        with contextlib.suppress(ValidationError):  # not a whole number: the digits will do
            condition |= Q(number=phone.normalize(text, account.region))
    return condition


@router.post(
    "/contacts/bulk",
    operation_id="upsert_contacts",
    response={200: BulkOut, 400: Error, 409: Error, 413: Error, 422: Error, **AUTH_ERRORS},
    summary="Create or update up to 10,000 contacts",
    description="Each row is a contact by its number: a new number makes a contact, a number "
    "that is already one updates it (its name and language when given, the values given; "
    "other values kept), or leaves it as it is with `update_existing: false`. Each row is "
    "checked on its own, as `POST /contacts` checks one: **the rows that pass are written even "
    "when others do not**; those that do not are answered in `errors` by their place and field "
    "(`contacts.17.number`), and their `ids` are null. A number given twice is written once. "
    "Only a body of the wrong shape (not JSON, more than 10,000 rows, a value of the wrong JSON "
    "type, an unknown key) or a `list_id` not of the account refuses the whole request (422), "
    "and then nothing is written. With `list_id`, every contact of the rows that pass is added "
    "to that list. Send an `Idempotency-Key` header to make retries safe.",
)
def upsert_contacts(request: HttpRequest, payload: BulkIn, idempotency_key: IdempotencyKey = None):
    account = request.auth.account

    def operation() -> Outcome:
        contact_list = None
        if payload.list_id is not None:
            contact_list = ContactList.objects.filter(account=account, pk=payload.list_id).first()
            if contact_list is None:
                raise invalid({"list_id": [NO_LIST]})
        errors: validation.Errors = {}
        types = services.field_types(account)
        rows = [
            row
            for index, given in enumerate(payload.contacts)
            if (row := _row(account, index, given, types, errors)) is not None
        ]
        result = importing.upsert_rows(
            account, rows, update_existing=payload.update_existing, contact_list=contact_list
        )
        refused = {row.line for row in result.rejected}  # not expected: the rows were checked
        for row in result.rejected:
            errors.setdefault(f"contacts.{row.line}", []).append(row.reason)
        ids = _ids(account, [row.number for row in rows])
        by_index = {row.line: ids.get(row.number) for row in rows if row.line not in refused}
        logger.info(
            "api: contacts upserted: account=%s key=%s rows=%s created=%s updated=%s rejected=%s",
            account.pk,
            request.auth.prefix,
            len(payload.contacts),
            result.created,
            result.updated,
            len(payload.contacts) - len(rows) + result.rejected_count,
        )
        out = BulkOut.model_construct(
            created=result.created,
            updated=result.updated,
            skipped=result.skipped,
            duplicates=result.duplicates,
            rejected=len(payload.contacts) - len(rows) + result.rejected_count,
            added_to_list=result.added_to_list,
            ids=[by_index.get(index) for index in range(len(payload.contacts))],
            errors=errors,
        )
        return Outcome(200, out.model_dump())

    return idempotency.run(request, operation)


def _row(
    account: Account,
    index: int,
    given: BulkContact,
    types: dict[str, str],
    errors: validation.Errors,
) -> importing.ContactRow | None:
    """Row `index` checked as `services.save_contact` checks one contact; None (and its errors
    in `errors`) when it cannot be written."""
    at = f"contacts.{index}"
    found: validation.Errors = {}
    number = ""
    if problem := text_problem(given.number):
        found[f"{at}.number"] = [problem]
    else:
        number = validation.number(given.number, f"{at}.number", found, account.region)
    for name, value, limit in (
        ("name", given.name, NAME_MAX),
        ("language", given.language, LANGUAGE_MAX),
    ):
        if value is None:
            continue
        if problem := text_problem(value):
            found[f"{at}.{name}"] = [problem]
        elif len(value.strip()) > limit:
            found[f"{at}.{name}"] = [f"At most {limit} characters."]
    values: dict[str, str] = {}
    for key, value in given.fields.items():
        if isinstance(value, str) and (problem := text_problem(value)):
            found[f"{at}.fields.{key}"] = [problem]
        else:
            values[key] = "" if value is None else str(value)
    try:
        services.clean_values(account, values, types)
    except ValidationError as error:
        for key, messages in error.message_dict.items():
            found[f"{at}.fields.{key}"] = messages
    if found:
        errors.update(found)
        return None
    return importing.ContactRow(
        line=index, number=number, name=given.name, language=given.language, values=values
    )


def _ids(account: Account, numbers: list[str]) -> dict[str, int]:
    """The account's contacts with these numbers: number → id."""
    unique = list(dict.fromkeys(numbers))
    ids: dict[str, int] = {}
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        found = Contact.objects.filter(account=account, number__in=chunk)
        ids.update(found.values_list("number", "pk"))
    return ids


@router.get(
    "/contacts/{contact_id}",
    operation_id="get_contact",
    response={200: ContactOut, 404: Error, 422: Error, **AUTH_ERRORS},
    summary="One contact",
)
def get_contact(request: HttpRequest, contact_id: PathId):
    return contact_out(request.auth.account, contact_id)


@router.patch(
    "/contacts/{contact_id}",
    operation_id="update_contact",
    response={200: ContactOut, 400: Error, 404: Error, 409: Error, 413: Error, 422: Error}
    | AUTH_ERRORS,
    summary="Change a contact",
    description="Only what is given changes; in `fields`, only the values given (null or an "
    "empty string removes one). A number another contact has is a 409.",
)
def update_contact(request: HttpRequest, contact_id: PathId, payload: ContactPatch):
    account = request.auth.account
    given = payload.model_dump(exclude_unset=True)
    with transaction.atomic():  # an error answered undoes what was done
        contact = Contact.objects.select_for_update().filter(account=account, pk=contact_id).first()
        if contact is None:
            raise not_found("contact")
        _save(
            account,
            contact,
            number=given.get("number", contact.number),
            name=given.get("name", contact.name),
            language=given.get("language", contact.language),
            values=given.get("fields") or {},
        )
    return contact_out(account, contact.pk)


@router.delete(
    "/contacts/{contact_id}",
    operation_id="delete_contact",
    response={200: ContactDeleted, 404: Error, 409: Error, 422: Error, **AUTH_ERRORS},
    summary="Delete a contact and its personal data",
    description="Its custom values and list memberships go with it; messages to it still "
    "waiting to be sent are canceled; its number is masked on every message sent to it and "
    "every reply from it (+33•••••5678). An opt-out of its number stays, so that it is not "
    "sent to again. While a message to it is being handed to a provider (a moment): 409, "
    "try again.",
)
def delete_contact(request: HttpRequest, contact_id: PathId):
    api_key = request.auth
    contact = Contact.objects.filter(account=api_key.account, pk=contact_id).first()
    if contact is None:
        raise not_found("contact")
    try:
        deleted = services.delete_contact(contact, by=f"API key {api_key.prefix}…")
    except services.StillSending:
        raise ApiError(
            409,
            "still_sending",
            "A message to this contact is being handed to a provider right now: try again "
            "in a few seconds.",
            headers={"Retry-After": "5"},
        ) from None
    logger.info("api: contact deleted: contact=%s key=%s", contact_id, api_key.prefix)
    return ContactDeleted(
        id=contact_id,
        canceled_messages=deleted.canceled,
        masked_messages=deleted.masked_messages,
        masked_replies=deleted.masked_replies,
    )


@router.get(
    "/contact-fields",
    operation_id="list_contact_fields",
    response={200: list[ContactFieldOut], **AUTH_ERRORS},
    summary="The custom fields of contacts",
    description="The keys a contact's `fields` may have, and the type of each. Account admins "
    "define them on the contact fields page.",
    tags=["Contacts"],
)
def list_contact_fields(request: HttpRequest):
    fields = ContactField.objects.filter(account=request.auth.account)
    return [ContactFieldOut(key=f.key, label=f.label, type=f.type) for f in fields]
