"""Beat task of the API: forget old idempotency answers, mask and forget finished codes."""

import logging

from celery import shared_task

from . import idempotency, otp

logger = logging.getLogger(__name__)


@shared_task(name="api.purge")
def purge() -> dict[str, int]:
    done = {
        "idempotency_records": idempotency.purge(),
        "codes_masked": otp.redact_finished(),
        "codes_deleted": otp.purge(),
    }
    logger.info("api purge: %s", done)
    return done
