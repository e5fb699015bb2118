"""Sending a claimed batch: its provider calls in flight at once on this process's transport,
outside any transaction, while the caller goes on; their outcomes are collected for `record`."""

import asyncio
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from campaigns.models import Message, OptOut
from providers.base import BaseProvider
from providers.events import OutboundSMS, SendResult
from providers.exceptions import ProviderError, ProviderRejected
from providers.models import ProviderAccount
from providers.transport import Transport, transport

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
    """Send one claimed message through one provider account, in this thread, outside any
    transaction (and not before `not_before`): what a command does; the dispatcher's calls go
    through `start_sending`."""
    _wait_for(not_before)
    adapter = provider_account.adapter()
    sms = sms or outbound(message, provider_account)
    try:
        result = adapter.send(sms)
    except ProviderError as exc:
        return _failed(message, provider_account, exc)
    except Exception as exc:
        return _failed(message, provider_account, _unreadable(provider_account, exc))
    return Outcome(message, provider_account, result=result, answered=timezone.now())


async def _send_all(wire: Transport, sends: list[tuple]) -> list[Outcome]:
    """A batch's calls, all in flight at once: one hand-over between threads a batch."""
    return await asyncio.gather(*(_send(wire, *send) for send in sends))


async def _send(
    wire: Transport,
    message: Message,
    provider_account: ProviderAccount,
    adapter: BaseProvider,
    sms: OutboundSMS,
    not_before: datetime | None,
) -> Outcome:
    """One call on the transport's loop: the adapter's request and its reading of the answer,
    the wire in between asynchronous. Whatever goes wrong is this message's outcome alone."""
    if not_before is not None:
        wait = (not_before - timezone.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
    try:
        call = adapter.prepare(sms)
        response = await wire.fetch(call)
        result = adapter.read_send(response, sms)
    except ProviderError as exc:
        return _failed(message, provider_account, exc)
    except Exception as exc:
        return _failed(message, provider_account, _unreadable(provider_account, exc))
    return Outcome(message, provider_account, result=result, answered=timezone.now())


def _failed(message: Message, provider_account: ProviderAccount, exc: ProviderError) -> Outcome:
    logger.warning(
        "send failed: message=%s provider=%s error=%s",
        message.pk,
        provider_account.name,
        exc.message,
        extra=_log_fields(message, provider_account),
    )
    return Outcome(message, provider_account, error=exc, answered=timezone.now())


def _unreadable(provider_account: ProviderAccount, exc: Exception) -> ProviderError:
    """An adapter that fails on an answer (a bug, an answer nobody foresaw): the message is
    refused with the reason, not retried (the provider may have it), and no other message is
    touched."""
    logger.error(
        "the %s adapter failed on an answer of %s",
        provider_account.slug,
        provider_account.name,
        exc_info=exc,
    )
    return ProviderRejected(
        f"the answer of {provider_account.name} could not be read "
        f"({exc.__class__.__name__}: {str(exc)[:200]}): the provider may have the message",
        code="unreadable",
    )


def _wait_for(moment: datetime | None) -> None:
    if moment is not None:
        wait = (moment - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)


@dataclass
class Sending:
    """A claimed batch on its way: its provider calls in flight while the caller goes on."""

    messages: list[Message]
    known: dict[int, Outcome]  # outcomes known without a call (opted out, no route)
    calls: list[Future]  # each a list of outcomes: the batch's single calls, or a share

    def done(self) -> bool:
        return all(call.done() for call in self.calls)


def start_sending(claim: Claim) -> Sending:
    """Start the provider calls of a claimed batch; `finish_sending` waits for them.

    What needs the database (opt-outs, each call's content) is read here, in the caller's
    thread: the calls themselves only speak HTTP. Each message is one call on this process's
    transport (`providers.transport`: all of them in flight at once, over kept-alive
    connections); a provider account whose adapter takes many recipients per call (SMSAdvert)
    gets its whole share of the batch in `send_many`, on a thread.
    """
    messages = claim.messages
    opted_out = set(
        OptOut.objects.filter(
            account_id__in={m.account_id for m in messages},
            number__in={m.recipient for m in messages},
        ).values_list("account_id", "number")
    )
    known: dict[int, Outcome] = {}
    calls: list[Future] = []
    sends: list[tuple] = []
    grouped: dict[int, list[Message]] = {}
    adapters: dict[int, BaseProvider] = {}
    for message in messages:
        provider_account = message.provider_account
        if (message.account_id, message.recipient) in opted_out:
            reason = "The number opted out of messages from this account: not sent."
            known[message.pk] = Outcome(message, None, reason=reason, blocked=True)
            continue
        if provider_account is None:
            reason = "The account has no enabled provider account in its route."
            known[message.pk] = Outcome(message, None, reason=reason)
            continue
        adapter = adapters.get(provider_account.pk)
        if adapter is None:
            adapter = adapters[provider_account.pk] = provider_account.adapter()
        if adapter.sends_many():
            grouped.setdefault(provider_account.pk, []).append(message)
            continue
        sms, at = outbound(message, provider_account), claim.not_before.get(message.pk)
        sends.append((message, provider_account, adapter, sms, at))
    if sends:
        wire = transport()
        calls.append(wire.submit(_send_all(wire, sends)))
    for group in grouped.values():
        at = max((claim.not_before.get(m.pk) for m in group), default=None, key=_moment)
        sms = [outbound(m, m.provider_account) for m in group]
        calls.append(_threads().submit(send_together, group, sms, at))
    return Sending(messages, known, calls)


def _moment(at: datetime | None) -> float:
    return at.timestamp() if at else 0.0


def finish_sending(sending: Sending) -> list[Outcome]:
    """Wait for a batch's calls; its outcomes, in the order of its messages."""
    outcomes = dict(sending.known)
    for call in sending.calls:
        for outcome in call.result():
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
    except Exception as exc:
        results = [_unreadable(provider_account, exc)] * len(messages)
    answered = timezone.now()
    outcomes = []
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, ProviderError):
            outcomes.append(_failed(message, provider_account, result))
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


# Threads for the shares sent together (SMSAdvert's `send_many` makes its calls itself).
GROUP_THREADS = 8
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _threads() -> ThreadPoolExecutor:
    """This process's pool for shares sent together (a forked worker process makes its own)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(GROUP_THREADS, thread_name_prefix="send"))
    return _pool[1]


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
