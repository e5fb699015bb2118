"""Lists of contacts: creating, reading, renaming and deleting them; adding and removing members."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from campaigns.contacts import services
from campaigns.contacts.models import Contact, ContactList, Membership
from campaigns.models import Account

from .. import idempotency, validation
from ..contact_schemas import (
    ListDeleted,
    ListFilters,
    ListIn,
    ListOut,
    ListPage,
    ListPatch,
    MembersAdded,
    MembersIn,
    MembersRemoved,
    text_problem,
)
from ..errors import AUTH_ERRORS, ApiError, Error, not_found
from ..idempotency import Outcome
from ..schemas import IdempotencyKey, PathId
from . import paging

logger = logging.getLogger(__name__)

router = Router(tags=["Lists"])

CHUNK = 1000  # ids or numbers per query (SQLite's variables per statement)


def account_lists(account: Account) -> QuerySet:
    return ContactList.objects.filter(account=account).annotate(members=Count("membership"))


def list_out(contact_list: ContactList) -> ListOut:
    return ListOut(
        id=contact_list.pk,
        name=contact_list.name,
        description=contact_list.description,
        members=contact_list.members,
        created_at=contact_list.created_at,
    )


def _get(account: Account, list_id: int, *, lock: bool = False) -> ContactList:
    lists = ContactList.objects.select_for_update() if lock else ContactList.objects
    found = lists.filter(account=account, pk=list_id).first()
    if found is None:
        raise not_found("list")
    return found


def _name_taken(name: str) -> ApiError:
    return ApiError(
        409,
        "already_exists",
        f"This account has a list named “{name}” already: choose another name.",
        {"name": ["Another list of this account has this name."]},
    )


@router.get(
    "/lists",
    operation_id="list_lists",
    response={200: ListPage, 422: Error, **AUTH_ERRORS},
    summary="List the contact lists, newest first, with their member counts",
)
def list_lists(request: HttpRequest, filters: Query[ListFilters]):
    rows, cursor = paging.page(account_lists(request.auth.account), filters.cursor, filters.limit)
    return ListPage(results=[list_out(row) for row in rows], next_cursor=cursor)


@router.post(
    "/lists",
    operation_id="create_list",
    response={201: ListOut, 400: Error, 409: Error, 413: Error, 422: Error, **AUTH_ERRORS},
    summary="Create a list",
    description="A name another list of the account has is a 409. Send an `Idempotency-Key` "
    "header to make retries safe.",
)
def create_list(request: HttpRequest, payload: ListIn, idempotency_key: IdempotencyKey = None):
    account = request.auth.account

    def operation() -> Outcome:
        name = payload.name.strip()
        try:
            with transaction.atomic():
                created = ContactList.objects.create(
                    account=account, name=name, description=payload.description.strip()
                )
        except IntegrityError:
            raise _name_taken(name) from None
        logger.info("api: list created: list=%s key=%s", created.pk, request.auth.prefix)
        created.members = 0
        return Outcome(201, list_out(created).model_dump())

    return idempotency.run(request, operation)


@router.get(
    "/lists/{list_id}",
    operation_id="get_list",
    response={200: ListOut, 404: Error, 422: Error, **AUTH_ERRORS},
    summary="One list and its member count",
    description="Its members: `GET /contacts?list_id=…`.",
)
def get_list(request: HttpRequest, list_id: PathId):
    found = account_lists(request.auth.account).filter(pk=list_id).first()
    if found is None:
        raise not_found("list")
    return list_out(found)


@router.patch(
    "/lists/{list_id}",
    operation_id="update_list",
    response={200: ListOut, 400: Error, 404: Error, 409: Error, 413: Error, 422: Error}
    | AUTH_ERRORS,
    summary="Rename a list or change its description",
)
def update_list(request: HttpRequest, list_id: PathId, payload: ListPatch):
    account = request.auth.account
    given = payload.model_dump(exclude_unset=True)
    with transaction.atomic():
        found = _get(account, list_id, lock=True)
        if "name" in given:
            found.name = given["name"].strip()
        if "description" in given:
            found.description = given["description"].strip()
        try:
            with transaction.atomic():
                found.save(update_fields=["name", "description"])
        except IntegrityError:
            raise _name_taken(found.name) from None
    return list_out(account_lists(account).get(pk=found.pk))


@router.delete(
    "/lists/{list_id}",
    operation_id="delete_list",
    response={200: ListDeleted, 404: Error, 422: Error, **AUTH_ERRORS},
    summary="Delete a list",
    description="Its contacts stay contacts. A segment with a condition on this list then "
    "finds nobody in it.",
)
def delete_list(request: HttpRequest, list_id: PathId):
    with transaction.atomic():
        found = _get(request.auth.account, list_id, lock=True)
        members = Membership.objects.filter(contact_list=found).count()
        found.delete()
    logger.info("api: list deleted: list=%s key=%s", list_id, request.auth.prefix)
    return ListDeleted(id=list_id, members=members)


def _contacts(account: Account, payload: MembersIn, errors: validation.Errors) -> list[int]:
    """The ids of the account's contacts named by id or number, each once; the items that are
    none of them named in `errors`."""
    ids: dict[int, None] = {}
    given_ids = list(dict.fromkeys(payload.contact_ids))
    known: set[int] = set()
    for start in range(0, len(given_ids), CHUNK):
        chunk = given_ids[start : start + CHUNK]
        known.update(
            Contact.objects.filter(account=account, pk__in=chunk).values_list("pk", flat=True)
        )
    for index, pk in enumerate(payload.contact_ids):
        if pk in known:
            ids[pk] = None
        else:
            errors[f"contact_ids.{index}"] = ["No contact with this id in your account."]
    numbers: list[tuple[int, str]] = []
    for index, value in enumerate(payload.numbers):
        field = f"numbers.{index}"
        if problem := text_problem(value):
            errors[field] = [problem]
            continue
        number = validation.number(value, field, errors, account.region)
        if number:
            numbers.append((index, number))
    unique = list(dict.fromkeys(number for _, number in numbers))
    by_number: dict[str, int] = {}
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        found = Contact.objects.filter(account=account, number__in=chunk)
        by_number.update(found.values_list("number", "pk"))
    for index, number in numbers:
        if number in by_number:
            ids[by_number[number]] = None
        else:
            errors[f"numbers.{index}"] = [f"{number} is not a contact of this account."]
    return list(ids)


MEMBERS_DESCRIPTION = (
    "Contacts by id (`contact_ids`) or by number (`numbers`, as the account's contacts have "
    "them: international, or national of the account's country), up to 10,000 of each. Items "
    "that are not contacts of the account are named in `errors` by their place "
    "(`numbers.2`); the others are done all the same. Send an `Idempotency-Key` header to make "
    "retries safe."
)


@router.post(
    "/lists/{list_id}/members",
    operation_id="add_list_members",
    response={200: MembersAdded, 400: Error, 404: Error, 409: Error, 413: Error, 422: Error}
    | AUTH_ERRORS,
    summary="Add contacts to a list",
    description=MEMBERS_DESCRIPTION,
)
def add_members(
    request: HttpRequest,
    list_id: PathId,
    payload: MembersIn,
    idempotency_key: IdempotencyKey = None,
):
    account = request.auth.account

    def operation() -> Outcome:
        contact_list = _get(account, list_id, lock=True)
        errors: validation.Errors = {}
        ids = _contacts(account, payload, errors)
        added = services.add_to_list(contact_list, ids)
        members = Membership.objects.filter(contact_list=contact_list).count()
        out = MembersAdded(added=added, already=len(ids) - added, members=members, errors=errors)
        return Outcome(200, out.model_dump())

    return idempotency.run(request, operation)


@router.post(
    "/lists/{list_id}/members/remove",
    operation_id="remove_list_members",
    response={200: MembersRemoved, 400: Error, 404: Error, 409: Error, 413: Error, 422: Error}
    | AUTH_ERRORS,
    summary="Remove contacts from a list",
    description="They stay contacts. " + MEMBERS_DESCRIPTION,
)
def remove_members(
    request: HttpRequest,
    list_id: PathId,
    payload: MembersIn,
    idempotency_key: IdempotencyKey = None,
):
    account = request.auth.account

    def operation() -> Outcome:
        contact_list = _get(account, list_id, lock=True)
        errors: validation.Errors = {}
        ids = _contacts(account, payload, errors)
        removed = 0
        for start in range(0, len(ids), CHUNK):
            removed += services.remove_from_list(contact_list, ids[start : start + CHUNK])
        members = Membership.objects.filter(contact_list=contact_list).count()
        out = MembersRemoved(
            removed=removed, not_members=len(ids) - removed, members=members, errors=errors
        )
        return Outcome(200, out.model_dump())

    return idempotency.run(request, operation)
