"""Replies: SMS the account's recipients sent back."""

from django.http import HttpRequest
from ninja import Query, Router

from campaigns.models import Reply

from .. import validation
from ..errors import AUTH_ERRORS, Error, invalid
from ..schemas import ReplyFilters, ReplyOut, ReplyPage
from . import paging

router = Router(tags=["Replies"])


@router.get(
    "/replies",
    operation_id="list_replies",
    response={200: ReplyPage, 422: Error, **AUTH_ERRORS},
    summary="List replies, newest first",
)
def list_replies(request: HttpRequest, filters: Query[ReplyFilters]):
    account = request.auth.account
    queryset = Reply.objects.filter(account=account)
    errors: validation.Errors = {}
    if filters.from_number is not None:
        number = validation.number(filters.from_number, "from_number", errors, account.region)
        queryset = queryset.filter(from_number=number)
    if filters.since is not None:
        since = validation.since(account, filters.since, errors)
        queryset = queryset.filter(received_at__gte=since)
    if errors:
        raise invalid(errors)
    rows, cursor = paging.page(queryset, filters.cursor, filters.limit)
    return ReplyPage(results=[ReplyOut.of(r) for r in rows], next_cursor=cursor)
