"""Provider accounts on hold: the provider refused the provider account itself.

Credentials refused (HTTP 401 or 403, a bad signature, a revoked key), an account suspended or
out of credit, a misconfigured base URL: no message can go through that provider account until
someone acts. Its adapter says so with a `ProviderAccountError`; the dispatcher then puts it on
hold with the provider's words and claims nothing more for it: its messages go through the next
provider account of their route, or wait. None of them fails for it.

An administrator releases the hold in admin once the cause is fixed (`ProviderAccount.release_hold`:
the *Release hold* action; saving new credentials or a passing *Test connection* releases it
too). Holding and releasing are recorded in the audit trail.
"""

import logging
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from campaigns.audit import recorder
from providers.models import ProviderAccount, mask

logger = logging.getLogger(__name__)


def hold(provider_account: ProviderAccount, reason: str, now: datetime | None = None) -> bool:
    """Put `provider_account` on hold with `reason`, unless it already is. True when this call
    did (the first of many refusals wins: its reason is kept)."""
    now = now or timezone.now()
    reason = _without_secrets(provider_account, reason)
    held = recorder.update(
        ProviderAccount.objects.filter(pk=provider_account.pk, held_since__isnull=True),
        held_since=now,
        hold_reason=reason[:2000],
    )
    if held:
        logger.error(
            "provider account %s put on hold: %s",
            provider_account.name,
            reason,
            extra={"provider": provider_account.name},
        )
    return bool(held)


def _without_secrets(provider_account: ProviderAccount, reason: str) -> str:
    """The reason with any secret credential the provider's answer echoed masked: it is shown
    in admin and to the staff of every account whose route goes through it."""
    for key, value in (provider_account.credentials or {}).items():
        if provider_account.is_secret_credential(key) and len(str(value)) >= 4:
            reason = reason.replace(str(value), mask(value))
    return reason


def held_on_routes(account_id: int) -> QuerySet[ProviderAccount]:
    """The provider accounts on hold that an account's routes go through."""
    return (
        ProviderAccount.objects.filter(held_since__isnull=False, routeentry__account_id=account_id)
        .distinct()
        .order_by("name")
    )
