"""Recording a sent batch: what each provider answered, in one transaction, then what follows
(circuit breakers, delivery reports that came first, the campaigns' statuses).

A temporary error is retried with backoff, then fails over along the route; a refusal of the
message fails it; a refusal of the provider account holds it (`holds`) and the message waits or
fails over. One message's answer never costs another its record.
"""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from campaigns.models import Campaign, Message, MessageEvent, PendingDeliveryReport
from providers import circuit
from providers.exceptions import ErrorClass

from .. import campaign_control, holds, rows
from ..delivery import apply_pending_reports
from ..lifecycle import transition
from .accepted import record_accepted, storable
from .claim import forget_state
from .send import Outcome

logger = logging.getLogger(__name__)

Status = Message.Status
Source = MessageEvent.Source


def record_batch(
    messages: list[Message], outcomes: list[Outcome], still_sending: frozenset[int] = frozenset()
) -> None:
    """Record a sent batch in one transaction (events in bulk), then what follows from it:
    circuit breakers, delivery reports that came first, the campaigns' statuses (but not of the
    campaigns in `still_sending`: the caller has more of their messages on the way, and their
    record looks again; until then such a campaign cannot be complete).

    One message's answer never costs the others theirs: what a provider answered is first made
    storable (`storable`), and should the database still refuse the batch, each message is
    recorded alone; a message the provider accepted is recorded as sent in any case."""
    outcomes = [storable(outcome) for outcome in outcomes]
    saved = [(outcome.message, dict(vars(outcome.message))) for outcome in outcomes]
    try:
        _record_together(outcomes)
    except RECORDING_ERRORS:
        logger.exception("could not record a batch of %s: recording each alone", len(outcomes))
        for message, state in saved:  # what the failed attempt wrote on them was rolled back
            vars(message).update(state)
        for outcome in outcomes:
            _record_alone(outcome)
    _update_circuits(outcomes)
    apply_waiting_reports(outcomes)
    for campaign_id, campaign in {m.campaign_id: m.campaign for m in messages}.items():
        if campaign_id is not None and campaign_id not in still_sending:
            campaign_control.refresh_status(campaign)


# What recording one outcome can meet besides a lost database: a value the database refuses
# (DataError, IntegrityError) or one that cannot be written as JSON.
RECORDING_ERRORS = (DatabaseError, TypeError, ValueError)


def _record_together(outcomes: list[Outcome]) -> None:
    events: list[MessageEvent] = []
    with transaction.atomic():
        for outcome in record_accepted(outcomes, events):
            record(outcome, events)
        rows.insert_all(events)


def _record_alone(outcome: Outcome) -> None:
    """Record one outcome in its own transaction; a provider's acceptance that still cannot be
    stored whole is recorded as a bare `sent`, with why."""
    state = dict(vars(outcome.message))
    try:
        _record_together([outcome])
        return
    except RECORDING_ERRORS as exc:
        logger.exception("could not record message %s", outcome.message.pk)
        vars(outcome.message).update(state)
        problem = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    if outcome.result is None:
        return  # not sent: it stays `sending`, then becomes `unknown`, with nothing lost
    try:
        transition(
            outcome.message,
            Status.SENT,
            source=Source.PROVIDER,
            detail=f"Accepted by {outcome.provider_account.name}, but its answer could not be "
            f"stored ({problem}): delivery reports cannot find this message.",
            provider_account=outcome.provider_account,
            sent_at=outcome.answered or timezone.now(),
            attempts=outcome.message.attempts + 1,
        )
    except RECORDING_ERRORS:
        logger.exception("could not record message %s as sent", outcome.message.pk)


def record(outcome: Outcome, events: list[MessageEvent] | None = None) -> None:
    """Write what happened to one message.

    A temporary error (network, 5xx, 429) is retried on the same provider account with backoff
    up to `SMSHUB_MAX_ATTEMPTS` times, then the message fails over to the next provider account
    of its route; when the route is spent it fails. A refusal fails at once, with the reason.
    """
    message, now = outcome.message, timezone.now()
    attempts, error = message.attempts + 1, outcome.error
    common = {"source": Source.PROVIDER, "events": events}
    if outcome.provider_account is not None:
        common["provider_account"] = outcome.provider_account
    if outcome.blocked:
        transition(
            message,
            Status.BLOCKED,
            source=Source.DISPATCH,
            detail=outcome.reason,
            events=events,
            error_code="opted_out",
            error_reason=outcome.reason,
        )
    elif outcome.result is not None:
        result = outcome.result
        transition(
            message,
            Status(result.status),
            detail=f"Accepted by {outcome.provider_account.name} as {result.provider_message_id}.",
            payload=result.raw,
            provider_message_id=result.provider_message_id,
            sent_at=outcome.answered or now,
            cost=result.cost,
            attempts=attempts,
            error_code="",
            error_reason="",
            **common,
        )
    elif error is None:
        transition(
            message,
            Status.FAILED,
            source=Source.DISPATCH,
            detail=outcome.reason,
            events=events,
            error_code="no_route",
            error_reason=outcome.reason,
        )
    elif error.error_class == ErrorClass.ACCOUNT:
        _wait_for_route(message, outcome.provider_account, error, attempts, now, common)
    elif not error.retryable:
        transition(
            message,
            Status.FAILED,
            detail=error.message,
            payload=jsonable(error.raw),
            attempts=attempts,
            error_code=error.code,
            error_reason=error.message,
            **common,
        )
    else:
        _retry_or_fail_over(message, outcome.provider_account, error, attempts, now, common)


def _canceled_meanwhile(message, error, attempts, common) -> bool:
    """A message of a campaign canceled while it was being sent is not tried again."""
    if not (message.campaign_id and message.campaign.status == Campaign.Status.CANCELED):
        return False
    transition(
        message,
        Status.CANCELED,
        detail=f"{error.message} Campaign canceled: not retried.",
        attempts=attempts,
        error_code=error.code,
        error_reason=error.message,
        **common,
    )
    return True


def _wait_for_route(message, provider_account, error, attempts, now, common) -> None:
    """The provider refused the provider account, not the message: the provider account is put
    on hold, and the message is queued again, to go through the next provider account of its
    route or to wait for the hold to be released. It does not fail, nor spend its retries."""
    if holds.hold(provider_account, error.message, now):
        forget_state()  # routes through it may be blocked now
    if _canceled_meanwhile(message, error, attempts, common):
        return
    transition(
        message,
        Status.QUEUED,
        detail=f"{error.message} {provider_account.name} is on hold: the message goes through "
        "the next provider account of its route, or waits until the hold is released.",
        attempts=attempts,
        next_attempt_at=None,
        error_code=error.code,
        error_reason=error.message,
        payload=jsonable(error.raw),
        **common,
    )


def _retry_or_fail_over(message, provider_account, error, attempts, now, common) -> None:
    if _canceled_meanwhile(message, error, attempts, common):
        return
    step_attempts = message.step_attempts + 1
    fields = {
        "attempts": attempts,
        "error_code": error.code,
        "error_reason": error.message,
        "payload": jsonable(error.raw),
    }
    if step_attempts < settings.SMSHUB_MAX_ATTEMPTS:
        delay = max(backoff(step_attempts), getattr(error, "retry_after", None) or 0)
        transition(
            message,
            Status.RETRYING,
            detail=f"{error.message} Trying {provider_account.name} again in {delay:.0f} s.",
            step_attempts=step_attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            **fields,
            **common,
        )
        return
    route = message.account.route(message.category_id)
    position = next((i for i, p in enumerate(route) if p.pk == provider_account.pk), -1)
    if 0 <= position < len(route) - 1:
        following = route[position + 1]
        transition(
            message,
            Status.RETRYING,
            detail=f"{error.message} {provider_account.name} failed {step_attempts} times: "
            f"failing over to {following.name}.",
            route_step=position + 1,
            step_attempts=0,
            next_attempt_at=now,
            **fields,
            **common,
        )
        return
    transition(
        message,
        Status.FAILED,
        detail=f"{error.message} Retries spent on every provider account of the route.",
        **fields,
        **common,
    )


def backoff(attempts: int) -> float:
    """Exponential backoff with full jitter, in seconds: 10 s, 20 s, 40 s ... (max 1 h)."""
    ceiling = min(settings.SMSHUB_RETRY_BASE_DELAY * 2 ** (attempts - 1), 3600)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _update_circuits(outcomes: list[Outcome]) -> None:
    """Each provider account's answers in send order: a refusal is an answer too; only
    temporary errors (network, 5xx, 429) count as failures."""
    results: dict[int, list[bool]] = {}
    health: dict[int, tuple] = {}  # provider account id → (it, its errors: None for a success)
    for outcome in outcomes:
        if (provider := outcome.provider_account) is not None:
            failed = outcome.error is not None and outcome.error.retryable
            results.setdefault(provider.pk, []).append(not failed)
            if outcome.result is not None or outcome.error is not None:
                health.setdefault(provider.pk, (provider, []))[1].append(outcome.error)
    for provider_id, answers in results.items():
        circuit.record_batch(provider_id, answers)
    for provider, errors in health.values():  # admin's health columns; one UPDATE in 5 s at most
        try:
            provider.note_answers(errors)
        except DatabaseError:
            logger.exception("could not note the health of provider account %s", provider.pk)


def apply_waiting_reports(outcomes: list[Outcome]) -> int:
    """Delivery reports that overtook their send result are applied now (one query per batch)."""
    sent = {
        (o.provider_account.pk, o.result.provider_message_id): o.provider_account
        for o in outcomes
        if o.result is not None and o.result.provider_message_id
    }
    # Rare (a report overtakes its send's answer): a look at the table first, not one IN of
    # the batch's ids.
    if not sent or not PendingDeliveryReport.objects.exists():
        return 0
    waiting = set(
        PendingDeliveryReport.objects.filter(
            provider_message_id__in={key[1] for key in sent}
        ).values_list("provider_account_id", "provider_message_id")
    )
    return sum(apply_pending_reports(sent[key], key[1]) for key in waiting if key in sent)


def jsonable(value):
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    return str(value)
