"""Replies (MO): stored, threaded onto the message they answer, and opt-outs honoured.

A reply is linked to the message whose provider id it names (`in_reply_to`), else to the latest
message sent to that number through the same provider account, within the account's reply
window. A reply made only of a STOP-type keyword opts the number out; a START-type one back in.

A reply may name neither its number nor its message (Vortext's own example names neither): it
is kept from an *unknown number* (an empty `from_number`) for the one account routed to that
provider account, shown in the inbox as such with its time, and forwarded with an empty `from`.
It answers no message and opts no one out or in. When no account, or more than one, is routed
to the provider account, whose reply it is cannot be told: it is refused with that reason, and
the webhook request stays in the webhook log as failed, replayable once the routes are fixed.
"""

import logging
import re
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Account, Message, OptOut, Reply
from campaigns.phone import normalize_msisdn
from providers.events import InboundSMS
from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

from . import forwarding
from .lifecycle import note

logger = logging.getLogger(__name__)


def keyword(text: str) -> str:
    """The reply as a keyword: upper case, accents and surrounding punctuation gone, one space."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", plain)).strip().upper()


def _keywords(names: list[str]) -> frozenset[str]:
    return frozenset(keyword(name) for name in names)


def receive_inbound(provider_account: ProviderAccount, inbound: InboundSMS) -> Reply | None:
    """Store one reply; returns None when it is a duplicate of one already stored."""
    if inbound.provider_message_id:
        duplicate = Reply.objects.filter(
            provider_account=provider_account, provider_message_id=inbound.provider_message_id
        )
        if duplicate.exists():
            return None
    received_at = inbound.received_at or timezone.now()
    messages = Message.objects.filter(provider_account=provider_account).select_related("account")
    message = None
    if inbound.in_reply_to:
        message = messages.filter(provider_message_id=inbound.in_reply_to).first()
    sender = inbound.from_number.strip() or (message.recipient if message else "")
    from_number = ""  # an unknown number: the provider named neither it nor the message
    if sender:
        try:
            from_number = normalize_msisdn(sender)
        except ValidationError as exc:
            raise WebhookValidationError(
                f"the reply's sender {sender!r} is not a phone number"
            ) from exc
    if message is None and from_number:
        message = latest_message_to(messages, from_number, received_at)
    if message is not None:
        account = message.account
    elif from_number:
        account = _account_for(provider_account, messages, from_number)
    else:
        account = _only_account(provider_account)
    if account is None:
        who = f"…{from_number[-4:]}" if from_number else "an unknown number"
        raise WebhookValidationError(
            f"a reply from {who} answers no message, and no account, or more than one, sends "
            f"through {provider_account.name}: whose it is cannot be told"
        )
    try:
        with transaction.atomic():
            reply = Reply.objects.create(
                account=account,
                message=message,
                provider_account=provider_account,
                provider_message_id=inbound.provider_message_id,
                from_number=from_number,
                to_number=inbound.to_number,
                text=inbound.text,
                received_at=received_at,
                raw=inbound.raw,
            )
    except IntegrityError:  # the same reply, stored meanwhile by a concurrent request
        return None
    opt_out_or_in(reply)
    if message is not None:
        note(message, source="webhook", detail=f"Reply received: “{inbound.text[:100]}”")
    forwarding.enqueue_reply(reply)
    return reply


def latest_message_to(messages, from_number: str, received_at) -> Message | None:
    """The latest of `messages` sent to that number, if within its account's reply window."""
    latest = messages.filter(recipient=from_number).order_by("-id").first()
    if latest is None:
        return None
    window = timedelta(hours=latest.account.reply_window_hours)
    sent_at = latest.sent_at or latest.created_at
    return latest if received_at - sent_at <= window else None


def _account_for(provider_account: ProviderAccount, messages, from_number: str) -> Account | None:
    """The account of a reply that answers no message within a reply window: the one that last
    wrote to the number through this provider account, else the only account routed to it.
    None when several are and none ever wrote to the number: no account is guessed."""
    latest = messages.filter(recipient=from_number).order_by("-id").first()
    if latest is not None:
        return latest.account
    return _only_account(provider_account)


def _only_account(provider_account: ProviderAccount) -> Account | None:
    """The account routed to `provider_account` when there is exactly one, else None."""
    routed = Account.objects.filter(route_entries__provider_account=provider_account).distinct()
    accounts = list(routed[:2])
    return accounts[0] if len(accounts) == 1 else None


def opt_out_or_in(reply: Reply) -> None:
    if not reply.from_number:
        return  # a reply from an unknown number cannot opt anyone out (or in)
    word = keyword(reply.text)
    if word in _keywords(settings.SMSHUB_STOP_KEYWORDS):
        _, created = OptOut.objects.get_or_create(
            account=reply.account,
            number=reply.from_number,
            defaults={"source": OptOut.Source.REPLY, "keyword": reply.text.strip()[:50]},
        )
        if created:
            logger.info("opt-out: account=%s number=…%s", reply.account_id, reply.from_number[-4:])
    elif word in _keywords(settings.SMSHUB_START_KEYWORDS):
        deleted, _ = OptOut.objects.filter(account=reply.account, number=reply.from_number).delete()
        if deleted:
            logger.info("opt-in: account=%s number=…%s", reply.account_id, reply.from_number[-4:])
