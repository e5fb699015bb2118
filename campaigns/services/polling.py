"""Replies from providers that do not push them (Ogangi): fetched with a stored cursor."""

import json
import logging

from campaigns.models import WebhookRequest
from providers import registry
from providers.exceptions import ProviderError, WebhookValidationError
from providers.models import ProviderAccount

from .inbound import receive_inbound

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
    new = 0
    if replies:
        log = WebhookRequest.objects.create(
            provider_account=provider_account,
            kind=WebhookRequest.Kind.POLL,
            method="GET",
            content_type="application/json",
            body=json.dumps([reply.raw for reply in replies], default=str),
            events=len(replies),
        )
        errors = []
        for inbound in replies:
            try:
                new += receive_inbound(provider_account, inbound) is not None
            except WebhookValidationError as exc:
                errors.append(str(exc))
        log.status = WebhookRequest.Status.FAILED if errors else WebhookRequest.Status.APPLIED
        log.error, log.applied = "\n".join(errors), new
        log.save(update_fields=["status", "error", "applied"])
    if cursor != provider_account.inbound_cursor:
        provider_account.inbound_cursor = cursor
        provider_account.save(update_fields=["inbound_cursor"])
    return new
