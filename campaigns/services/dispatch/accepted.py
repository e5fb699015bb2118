"""The messages providers accepted, recorded `sent` in bulk (one statement on PostgreSQL), with
what the providers answered first made storable."""

import json
import math
from dataclasses import replace
from decimal import Decimal

from django.utils import timezone

from campaigns.models import Message, MessageEvent

from .. import lifecycle
from .send import Outcome

Status = Message.Status
Source = MessageEvent.Source


def record_accepted(outcomes: list[Outcome], events: list[MessageEvent]) -> list[Outcome]:
    """Record every message a provider accepted as `sent`, with its event, in bulk; return the
    other outcomes for `record`. Runs inside the caller's transaction. Only messages still
    `sending` are moved: one moved meanwhile (to `unknown` by the stuck-message sweep) is left
    as it is."""
    accepted = {
        o.message.pk: o for o in outcomes if o.result is not None and o.result.status == Status.SENT
    }
    if not accepted:
        return outcomes
    now = timezone.now()
    moved = lifecycle.mark_sent(
        [
            lifecycle.Sent(
                o.message.pk,
                o.result.provider_message_id,
                o.answered or now,
                o.result.cost,
                _accepted_detail(o),
                o.result.raw,
            )
            for o in accepted.values()
        ],
        now,
        events,
    )
    for pk in moved:
        outcome = accepted[pk]
        message, result = outcome.message, outcome.result
        message.status, message.sent_at = Status.SENT, outcome.answered or now
        message.provider_message_id, message.attempts = (
            result.provider_message_id,
            (message.attempts + 1),
        )
        if result.cost is not None:
            message.cost = result.cost
    return [o for o in outcomes if o.message.pk not in accepted]


def _accepted_detail(outcome: Outcome) -> str:
    return f"Accepted by {outcome.provider_account.name} as {outcome.result.provider_message_id}."


def storable(outcome: Outcome) -> Outcome:
    """The outcome with what the provider said made fit for the database: a provider id and an
    error code within their columns, a cost within its digits, payloads as JSON without NUL
    characters. The provider's answer stays whole in the event's payload."""
    if outcome.result is not None:
        result = outcome.result
        raw = _json_safe(result.raw)
        provider_id = _text(result.provider_message_id)
        if len(provider_id) > PROVIDER_ID_LENGTH:
            raw = {"answer": raw, "provider_message_id": provider_id}
            provider_id = provider_id[:PROVIDER_ID_LENGTH]
        cost = result.cost
        if cost is not None and not (
            isinstance(cost, Decimal) and cost.is_finite() and abs(cost) < MAX_COST
        ):
            cost = None
        outcome.result = replace(result, provider_message_id=provider_id, cost=cost, raw=raw)
    if outcome.error is not None:
        error = outcome.error
        error.code = _text(error.code)[:ERROR_CODE_LENGTH]
        error.message = _text(error.message)
        error.raw = _json_safe(error.raw)
    return outcome


PROVIDER_ID_LENGTH = Message._meta.get_field("provider_message_id").max_length
ERROR_CODE_LENGTH = Message._meta.get_field("error_code").max_length
MAX_COST = Decimal(10) ** (
    Message._meta.get_field("cost").max_digits - Message._meta.get_field("cost").decimal_places
)


def _text(value) -> str:
    return ("" if value is None else str(value)).replace("\x00", "")


def _json_safe(value):
    """`value` as JSON the database takes: strings without NUL characters (PostgreSQL's JSON
    refuses them), anything else written as text."""
    if value is None or isinstance(value, (bool, int)) or _plain(value):
        return value
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _text(repr(value))[:10_000]
    return _without_nul(json.loads(text)) if "\\u0000" in text else json.loads(text)


def _plain(value, depth: int = 0) -> bool:
    """Whether `value` is JSON as it is, without NUL characters: what providers' answers
    usually are, taken without writing and reading them again."""
    kind = type(value)
    if kind is str:
        return "\x00" not in value
    if kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 20:
        return False
    if kind is dict:
        return all(
            type(key) is str and "\x00" not in key and _plain(item, depth + 1)
            for key, item in value.items()
        )
    if kind is list:
        return all(_plain(item, depth + 1) for item in value)
    return False


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value
