"""Replies from providers that do not push them (Ogangi): fetched with a stored cursor."""

import json
import logging

from django.db import transaction
from django.utils import timezone

from campaigns.models import WebhookRequest
from providers import registry
from providers.exceptions import ProviderError, WebhookValidationError
from providers.models import ProviderAccount

from .inbound import receive_inbound
from .webhook_log import screened

logger = logging.getLogger(__name__)


def polling_accounts() -> list[ProviderAccount]:
    slugs = [slug for slug, cls in registry.adapters().items() if cls.polls_inbound()]
    return list(ProviderAccount.objects.filter(enabled=True, slug__in=slugs))


def poll(provider_account: ProviderAccount) -> int:
    """Fetch the replies after the stored cursor, store and apply them; returns how many were new.

    The cursor moves only after the replies are stored, and replies are deduplicated by their
    provider id, so a crash in between fetches some replies again but never stores one twice.
    """
    try:
        replies, cursor = provider_account.adapter().fetch_inbound(provider_account.inbound_cursor)
    except ProviderError as exc:
        logger.warning("polling %s for replies failed: %s", provider_account.name, exc.message)
        return 0
    except Exception:
        # An answer the adapter could not read: the next poll tries again, the other accounts
        # are polled all the same, and the adapter's failure is in the log to be fixed.
        logger.warning(
            "polling %s for replies: unreadable answer", provider_account.name, exc_info=True
        )
        return 0
    new = 0
    if replies:
        # One transaction: no worker ever sees this log half-written (it is never "received").
        with transaction.atomic():
            new = _store_and_apply(provider_account, replies)
    if cursor != provider_account.inbound_cursor:
        provider_account.inbound_cursor = cursor
        provider_account.save(update_fields=["inbound_cursor"])
    return new


def _store_and_apply(provider_account: ProviderAccount, replies: list) -> int:
    """Apply the fetched replies and keep them, with the outcome, in the webhook log."""
    new, errors, now = 0, [], timezone.now()
    for inbound in replies:
        try:
            new += receive_inbound(provider_account, screened(inbound, now)) is not None
        except WebhookValidationError as exc:
            errors.append(str(exc))
    WebhookRequest.objects.create(
        provider_account=provider_account,
        kind=WebhookRequest.Kind.POLL,
        method="GET",
        content_type="application/json",
        body=json.dumps([reply.raw for reply in replies], default=str),
        status=WebhookRequest.Status.FAILED if errors else WebhookRequest.Status.APPLIED,
        error="\n".join(errors),
        events=len(replies),
        applied=new,
    )
    return new
