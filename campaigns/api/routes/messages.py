"""Sending, listing, reading and canceling messages."""

import itertools
import logging

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router

from campaigns import statuses
from campaigns.contacts import audience, merge
from campaigns.models import Account, Message, MessageEvent
from campaigns.services import bulk, forwarding, lifecycle, personal
from campaigns.services.campaign_control import counts
from campaigns.services.compose import create_message, enqueue_message

from .. import idempotency, validation
from ..errors import AUTH_ERRORS, ApiError, Error, invalid, not_found
from ..idempotency import Outcome
from ..models import ApiKey
from ..schemas import (
    CampaignOut,
    IdempotencyKey,
    MessageFilters,
    MessageIn,
    MessageOut,
    MessagePage,
    PathId,
    SendOut,
)
from . import paging

logger = logging.getLogger(__name__)

router = Router(tags=["Messages"])

Status = Message.Status
CANCELABLE = statuses.CANCELABLE
OPTED_OUT = "The number opted out of messages from this account: not sent."


def campaign_out(campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.pk,
        name=campaign.name,
        status=campaign.status,
        text=campaign.text,
        sender=campaign.sender,
        category=campaign.category.tag if campaign.category_id else None,
        created_at=campaign.created_at,
        counts=counts(campaign),
    )


def account_messages(account: Account):
    return Message.objects.filter(account=account).select_related("category")


@router.post(
    "/messages",
    operation_id="send_messages",
    response={201: SendOut, 400: Error, 409: Error, 413: Error, 422: Error, **AUTH_ERRORS},
    summary="Send an SMS to one number or many",
    description="One number without a campaign name makes one message; a list of numbers (or a "
    "`campaign` name) makes a campaign. Every number is checked first: one invalid number "
    "refuses the whole request (422, the number named by its place in the list, `to.<index>`). "
    "Send an `Idempotency-Key` header to make retries safe.",
)
def send(request: HttpRequest, payload: MessageIn, idempotency_key: IdempotencyKey = None):
    api_key = request.auth

    def operation() -> Outcome:
        out = validation.outgoing(api_key.account, payload)
        if not out.many and out.campaign is None:
            return Outcome(201, _send_one(api_key, out).model_dump())
        return Outcome(201, _send_many(api_key, out).model_dump())

    # One number: a single autocommitted insert, written all or nothing by `_send_one`.
    one = isinstance(payload.to, str) and not (
        payload.lists or payload.segments or payload.campaign
    )
    return idempotency.run(request, operation, atomic=not one)


def _send_one(api_key: ApiKey, out: validation.Outgoing) -> SendOut:
    """One message; to an opted-out number it is recorded as the dispatcher would record it:
    blocked, never sent."""
    account, number = api_key.account, out.numbers[0]
    text = out.text
    if merge.has_fields(text):
        written = personal.Personaliser(account, text, out.values).write([(number, None)])[0]
        if not written.text.strip():
            fields = ", ".join(f"{{{key}}}" for key in written.missing)
            raise invalid({"values": [f"The text is empty for this recipient: give {fields}."]})
        text = written.text
    common = {
        "recipient": number,
        "text": text,
        "sender": out.sender,
        "category": out.category,
        "source": MessageEvent.Source.API,
    }
    message = enqueue_message(
        account,
        **common,
        send_at=out.send_at,
        window_end=out.window_end,
        detail=f"Queued to send now (API key {api_key.prefix}…).",
        unless_opted_out=True,
    )
    if message is None:  # opted out: checked in the same statement as the insert
        with transaction.atomic(savepoint=False):  # the message and its forward, or neither
            message = create_message(
                account,
                **common,
                status=Status.BLOCKED,
                detail=OPTED_OUT,
                error_code="opted_out",
                error_reason=OPTED_OUT,
            )
            forwarding.enqueue_status(message)
    blocked = message.status == Status.BLOCKED
    return SendOut.model_construct(
        message=MessageOut.of(message),
        campaign=None,
        queued=0 if blocked else 1,
        duplicates=0,
        opted_out=1 if blocked else 0,
    )


def _send_many(api_key: ApiKey, out: validation.Outgoing) -> SendOut:
    """A campaign (`campaigns.services.bulk`): duplicates and opted-out numbers left out."""
    result = bulk.create_campaign(
        api_key.account,
        name=out.campaign or f"API: {api_key.name}",
        text=out.text,
        recipients=itertools.chain(
            enumerate(out.numbers), audience.recipients(api_key.account, out.lists, out.segments)
        ),
        values=out.values,
        sender=out.sender,
        category=out.category,
        send_at=out.send_at,
        window_end=out.window_end,
        source=MessageEvent.Source.API,
    )
    return SendOut(
        message=None,
        campaign=campaign_out(result.campaign),
        queued=result.queued,
        duplicates=result.duplicates,
        opted_out=result.opted_out,
    )


@router.get(
    "/messages",
    operation_id="list_messages",
    response={200: MessagePage, 422: Error, **AUTH_ERRORS},
    summary="List messages, newest first",
)
def list_messages(request: HttpRequest, filters: Query[MessageFilters]):
    account = request.auth.account
    queryset = account_messages(account)
    if filters.status is not None:
        queryset = queryset.filter(status=filters.status)
    if filters.campaign_id is not None:
        queryset = queryset.filter(campaign_id=filters.campaign_id)
    if filters.since is not None:
        errors: validation.Errors = {}
        since = validation.since(account, filters.since, errors)
        if errors:
            raise invalid(errors)
        queryset = queryset.filter(created_at__gte=since)
    rows, cursor = paging.page(queryset, filters.cursor, filters.limit)
    return MessagePage(results=[MessageOut.of(m) for m in rows], next_cursor=cursor)


@router.get(
    "/messages/{message_id}",
    operation_id="get_message",
    response={200: MessageOut, 404: Error, 422: Error, **AUTH_ERRORS},
    summary="One message and its status",
)
def get_message(request: HttpRequest, message_id: PathId):
    message = account_messages(request.auth.account).filter(pk=message_id).first()
    if message is None:
        raise not_found("message")
    return MessageOut.of(message)


@router.post(
    "/messages/{message_id}/cancel",
    operation_id="cancel_message",
    response={200: MessageOut, 404: Error, 409: Error, 422: Error, **AUTH_ERRORS},
    summary="Cancel a message not yet being sent",
    description="A queued, scheduled or retrying message becomes canceled. A message already "
    "being sent (or further along) cannot be canceled: 409.",
)
def cancel_message(
    request: HttpRequest, message_id: PathId, idempotency_key: IdempotencyKey = None
):
    api_key = request.auth

    def operation() -> Outcome:
        message = account_messages(api_key.account).filter(pk=message_id).first()
        if message is None:
            raise not_found("message")
        if message.status in CANCELABLE:
            done = lifecycle.transition(
                message,
                Status.CANCELED,
                source=MessageEvent.Source.API,
                detail=f"Canceled through the API (key {api_key.prefix}…).",
            )
            if done:
                logger.info("api: message canceled: message=%s key=%s", message.pk, api_key.prefix)
                return Outcome(200, MessageOut.of(message).model_dump())
            message.refresh_from_db()
        raise ApiError(
            409,
            "not_cancelable",
            f"This message is {message.status}: only queued, scheduled "
            "or retrying messages can be canceled.",
        )

    return idempotency.run(request, operation)
