"""Sending a claimed batch: its provider calls run on this process's thread pool, outside any
transaction, while the caller goes on; their outcomes are collected for `record`."""

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.conf import settings
from django.utils import timezone

from campaigns.models import Message, OptOut
from providers.events import OutboundSMS, SendResult
from providers.exceptions import ProviderError
from providers.models import ProviderAccount

from .claim import Claim

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    message: Message
    provider_account: ProviderAccount | None
    result: SendResult | None = None
    error: ProviderError | None = None
    reason: str = ""
    blocked: bool = False
    # When the provider's answer came: the message's `sent_at`. The provider had the request by
    # then, so per-second limits count each call until a second after it.
    answered: datetime | None = None


def send_through(
    message: Message,
    provider_account: ProviderAccount,
    sms: OutboundSMS | None = None,
    not_before: datetime | None = None,
) -> Outcome:
    """Send one claimed message through one provider account, outside any transaction (and not
    before `not_before`)."""
    _wait_for(not_before)
    try:
        result = provider_account.adapter().send(sms or outbound(message, provider_account))
    except ProviderError as exc:
        logger.warning(
            "send failed: message=%s provider=%s error=%s",
            message.pk,
            provider_account.name,
            exc.message,
            extra=_log_fields(message, provider_account),
        )
        return Outcome(message, provider_account, error=exc, answered=timezone.now())
    return Outcome(message, provider_account, result=result, answered=timezone.now())


def _wait_for(moment: datetime | None) -> None:
    if moment is not None:
        wait = (moment - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)


@dataclass
class Sending:
    """A claimed batch on its way: its provider calls run on the pool while the caller goes on."""

    messages: list[Message]
    known: dict[int, Outcome]  # outcomes known without a call (opted out, no route)
    calls: list[Future]


def start_sending(claim: Claim) -> Sending:
    """Start the provider calls of a claimed batch; `finish_sending` waits for them.

    What needs the database (opt-outs, each call's content) is read here, in the caller's
    thread: the calls themselves only speak HTTP. A provider account whose adapter takes many
    recipients per call (SMSAdvert) gets its whole share of the batch in `send_many`; other
    messages go one per call, up to `SMSHUB_SEND_CONCURRENCY` calls at a time, each thread with
    its own pooled session.
    """
    messages = claim.messages
    opted_out = set(
        OptOut.objects.filter(
            account_id__in={m.account_id for m in messages},
            number__in={m.recipient for m in messages},
        ).values_list("account_id", "number")
    )
    known: dict[int, Outcome] = {}
    calls: list[Callable[[], Outcome | list[Outcome]]] = []
    grouped: dict[int, list[Message]] = {}
    for message in messages:
        provider_account = message.provider_account
        if (message.account_id, message.recipient) in opted_out:
            reason = "The number opted out of messages from this account: not sent."
            known[message.pk] = Outcome(message, None, reason=reason, blocked=True)
        elif provider_account is None:
            reason = "The account has no enabled provider account in its route."
            known[message.pk] = Outcome(message, None, reason=reason)
        elif provider_account.adapter_class.multi_recipient:
            grouped.setdefault(provider_account.pk, []).append(message)
        else:
            sms = outbound(message, provider_account)
            at = claim.not_before.get(message.pk)
            calls.append(partial(send_through, message, provider_account, sms, at))
    for group in grouped.values():
        at = max((claim.not_before.get(m.pk) for m in group), default=None, key=_moment)
        calls.append(
            partial(send_together, group, [outbound(m, m.provider_account) for m in group], at)
        )
    return Sending(messages, known, _start(calls))


def _moment(at: datetime | None) -> float:
    return at.timestamp() if at else 0.0


def finish_sending(sending: Sending) -> list[Outcome]:
    """Wait for a batch's calls; its outcomes, in the order of its messages."""
    outcomes = dict(sending.known)
    for share in sending.calls:
        for result in share.result():
            for outcome in result if isinstance(result, list) else [result]:
                outcomes[outcome.message.pk] = outcome
    return [outcomes[m.pk] for m in sending.messages]


def send_together(
    messages: list[Message], sms: list[OutboundSMS], not_before: datetime | None = None
) -> list[Outcome]:
    """Send messages of one provider account through its `send_many` (many recipients a call)."""
    _wait_for(not_before)
    provider_account = messages[0].provider_account
    try:
        results = provider_account.adapter().send_many(sms)
    except ProviderError as exc:
        results = [exc] * len(messages)
    answered = timezone.now()
    outcomes = []
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, ProviderError):
            logger.warning(
                "send failed: message=%s provider=%s error=%s",
                message.pk,
                provider_account.name,
                result.message,
                extra=_log_fields(message, provider_account),
            )
            outcomes.append(Outcome(message, provider_account, error=result, answered=answered))
        else:
            outcomes.append(Outcome(message, provider_account, result=result, answered=answered))
    return outcomes


def _log_fields(message: Message, provider_account: ProviderAccount) -> dict:
    """What a JSON log line carries about a message (see `smshub.logging`)."""
    return {
        "message_id": message.pk,
        "account": message.account_id,
        "provider": provider_account.name,
    }


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _start(calls: list[Callable]) -> list[Future]:
    """Start provider calls on the thread pool kept for this process, `SMSHUB_SEND_CONCURRENCY`
    at a time: as many shares as threads, each taking the next call until none is left (a few
    futures a batch, not one per call). In this thread, at once, when the setting is 1."""
    global _pool
    workers = settings.SMSHUB_SEND_CONCURRENCY
    pending = deque(calls)

    def share() -> list:
        results = []
        while True:
            try:
                call = pending.popleft()
            except IndexError:
                return results
            results.append(call())

    if workers <= 1:
        done: Future = Future()
        done.set_result(share())
        return [done]
    if _pool is None or _pool[0] != os.getpid():  # a forked worker child makes its own
        _pool = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="send"))
    return [_pool[1].submit(share) for _ in range(min(workers, len(calls)))]


def outbound(message: Message, provider_account: ProviderAccount) -> OutboundSMS:
    return OutboundSMS(
        to=message.recipient,
        text=message.secret_text or message.text,  # a one-time code is stored apart, encrypted
        reference=str(message.pk),
        sender=message.sender,
        callback_url=provider_account.webhook_url("dlr"),
        campaign_name=message.campaign.name if message.campaign_id else "",
        category=message.category.tag if message.category_id else "",
        send_at=message.scheduled_at,
    )
