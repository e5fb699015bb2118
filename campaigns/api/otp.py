"""One-time codes: send a code to a number, then check the code the person typed.

- When the first provider account of the route is Ogangi (and its circuit is closed), Ogangi
  makes the code and sends it (`sendSMSPinMobileNumberConfirm`, `OgangiProvider.send_pin`), in
  the request; the hub records the SMS as sent. If Ogangi cannot be reached, or the provider
  account cannot use the PIN method (`OgangiProvider.pin_unavailable`: no ``carrier`` name, which
  the method requires), the hub falls back to the next way, and says why in the log and in the
  message's timeline.
- Otherwise the hub makes the code (`secrets`) and sends it as an ordinary SMS through the
  normal dispatch (route, flood limits, retries, failover).

Only an HMAC of the code (keyed with SECRET_KEY, salted per code) is stored. A code expires
after `SMSHUB_OTP_TTL` seconds and dies after `SMSHUB_OTP_MAX_ATTEMPTS` tries; a new code for a
number replaces the previous one; a verified code cannot be used again. Once a code is used or
expired, the digits in its SMS's stored text are masked.
"""

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from campaigns import statuses
from campaigns.forms import MAX_TEXT_LENGTH
from campaigns.models import Account, Category, Message, MessageEvent
from campaigns.services import holds
from campaigns.services.compose import create_message, enqueue_message
from providers import circuit
from providers.exceptions import ErrorClass, ProviderError, ProviderRejected

from .errors import ApiError, invalid
from .models import ApiKey, OneTimeCode

logger = logging.getLogger(__name__)

PLACEHOLDER = "{code}"
# Statuses in which an SMS may still be sent (or sent again): its text must stay as it is.
NOT_DONE = statuses.MAY_STILL_BE_SENT
# Ogangi's refusals that point at one input, by its `ProviderRejected.code`.
OGANGI_FIELDS = {
    "invalid_sender": "sender",
    "invalid_number": "to",
    "too_long": "text",
    "invalid_text": "text",
    "invalid_length": "length",
}


def code_hash(salt: str, code: str) -> str:
    return salted_hmac("smshub.api.otp", f"{salt}:{code}", algorithm="sha256").hexdigest()


def new_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def masked(template: str, length: int) -> str:
    return template.replace(PLACEHOLDER, "•" * length)


def _ogangi_text(template: str) -> str:
    """Ogangi writes the code into the SMS itself: the text goes without the placeholder."""
    return re.sub(r"\s+", " ", template.replace(PLACEHOLDER, "")).strip(" :") or "Your code"


def issue(
    account: Account,
    api_key: ApiKey | None,
    *,
    to: str,
    template: str,
    length: int,
    sender: str = "",
    category: Category | None = None,
) -> OneTimeCode:
    """Send a new code to `to` (E.164); raises ApiError when it cannot be sent."""
    if PLACEHOLDER not in template:
        raise invalid({"text": [f"Put {PLACEHOLDER} where the code goes."]})
    now = timezone.now()
    otp = OneTimeCode(
        account=account,
        api_key=api_key,
        recipient=to,
        salt=secrets.token_hex(16),
        length=length,
        template=template,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SMSHUB_OTP_TTL),
        max_attempts=settings.SMSHUB_OTP_MAX_ATTEMPTS,
    )
    route = account.route(category.pk if category else None)
    first = route[0] if route else None
    pin = None
    why_not_pin = ""
    if (
        first is not None
        and first.slug == "ogangi"
        and not first.on_hold
        and circuit.state(first.pk) == circuit.CLOSED
    ):
        why_not_pin = first.adapter().pin_unavailable() or ""
        if why_not_pin:
            logger.warning(
                "api: one-time code through %s made by the hub, not Ogangi: %s",
                first.name,
                why_not_pin,
            )
        else:
            pin = _ogangi_pin(first, to=to, template=template, length=length, sender=sender)
    if pin is not None:
        otp.channel = OneTimeCode.Channel.OGANGI_PIN
        otp.code_hash = code_hash(otp.salt, pin)
        otp.message = create_message(
            account,
            recipient=to,
            text=_ogangi_text(template),
            sender=sender,
            category=category,
            source=MessageEvent.Source.API,
            status=Message.Status.SENT,
            detail="One-time code sent by Ogangi (sendSMSPinMobileNumberConfirm).",
            provider_account=first,
            attempts=1,
            sent_at=timezone.now(),
        )
    else:
        code = new_code(length)
        otp.channel = OneTimeCode.Channel.SMS
        otp.code_hash = code_hash(otp.salt, code)
        text = template.replace(PLACEHOLDER, code)
        if len(text) > MAX_TEXT_LENGTH:
            raise invalid(
                {"text": [f"With the code, the text is over {MAX_TEXT_LENGTH} characters."]}
            )
        otp.message = enqueue_message(
            account,
            recipient=to,
            text=masked(template, length),  # what pages and answers show
            secret_text=text,  # what is sent: stored encrypted, cleared once done
            sender=sender,
            category=category,
            source=MessageEvent.Source.API,
            detail="One-time code queued to send now."
            + (f" The hub made the code, not Ogangi: {why_not_pin}." if why_not_pin else ""),
        )
    otp.save()
    logger.info(
        "api: one-time code sent: account=%s otp=%s channel=%s", account.pk, otp.pk, otp.channel
    )
    return otp


def _ogangi_pin(provider_account, *, to: str, template: str, length: int, sender: str):
    """The PIN Ogangi made and sent, or None when Ogangi cannot be reached or refuses the
    provider account (then put on hold): the hub's own code goes instead, through the route. A
    refusal of the code is the caller's error (422) or the provider's (502)."""
    try:
        return provider_account.adapter().send_pin(
            to, _ogangi_text(template), sender=sender, length=length
        )
    except ProviderRejected as error:
        field = OGANGI_FIELDS.get(error.code)
        if field is not None:
            raise invalid({field: [error.message]}) from None
        logger.warning("api: Ogangi refused a one-time code: %s", error.message)
        raise ApiError(
            502, "provider_refused", f"The provider refused to send the code: {error.message}"
        ) from None
    except ProviderError as error:
        if error.error_class == ErrorClass.ACCOUNT:
            holds.hold(provider_account, error.message)
            logger.warning("api: Ogangi refused the provider account (%s): sent by SMS", error)
            return None
        if not error.retryable:
            logger.warning("api: Ogangi cannot send one-time codes: %s", error.message)
            raise ApiError(
                502, "provider_error", f"The provider cannot send the code: {error.message}"
            ) from None
        logger.warning("api: Ogangi unreachable for a one-time code (%s): sent by SMS", error)
        return None


@dataclass
class Check:
    """The result of checking a code: `otp` when it was right, else why not."""

    otp: OneTimeCode | None = None
    error: ApiError | None = None


def _refuse(code: str, message: str, field: str = "code") -> Check:
    return Check(error=ApiError(422, code, message, {field: [message]}))


def verify(account: Account, *, to: str, code: str) -> Check:
    """Check `code` against the latest code sent to `to`. Each try counts, right or wrong, and
    is written at once (conditional UPDATEs, so concurrent tries are counted one by one)."""
    otp = OneTimeCode.objects.filter(account=account, recipient=to).order_by("-id").first()
    if otp is None:
        return _refuse("no_code", "No code was sent to this number.", field="to")
    if otp.verified_at is not None:
        return _refuse("code_used", "This code was already used: ask for a new one.")
    now = timezone.now()
    if otp.expires_at <= now:
        return _refuse("code_expired", "This code has expired: ask for a new one.")
    counted = OneTimeCode.objects.filter(
        pk=otp.pk, verified_at__isnull=True, attempts__lt=F("max_attempts")
    ).update(attempts=F("attempts") + 1)
    if not counted:
        return _refuse("too_many_attempts", "Too many wrong codes: ask for a new one.")
    if not constant_time_compare(code_hash(otp.salt, code), otp.code_hash):
        otp.refresh_from_db(fields=["attempts"])
        left = max(otp.max_attempts - otp.attempts, 0)
        if not left:
            return _refuse("too_many_attempts", "Wrong code, and no tries left: ask for a new one.")
        return _refuse("wrong_code", f"Wrong code: {left} tr{'y' if left == 1 else 'ies'} left.")
    used = OneTimeCode.objects.filter(pk=otp.pk, verified_at__isnull=True).update(verified_at=now)
    if not used:
        return _refuse("code_used", "This code was already used: ask for a new one.")
    otp.verified_at = now
    redact(otp)
    logger.info("api: one-time code verified: account=%s otp=%s", account.pk, otp.pk)
    return Check(otp=otp)


def redact(otp: OneTimeCode) -> bool:
    """Forget the code's SMS text (kept encrypted apart from the masked `text` every page shows)
    once that SMS is done with; True when forgotten (or nothing is left to forget)."""
    if otp.redacted:
        return True
    done = otp.channel != OneTimeCode.Channel.SMS or otp.message_id is None
    if not done:
        Message.objects.filter(pk=otp.message_id).exclude(status__in=NOT_DONE).update(
            secret_text=None
        )
        done = not Message.objects.filter(pk=otp.message_id, status__in=NOT_DONE).exists()
    if done:
        OneTimeCode.objects.filter(pk=otp.pk).update(redacted=True)
        otp.redacted = True
    return done


def redact_finished(now=None) -> int:
    """Mask the codes of used or expired codes whose SMS is done; returns how many."""
    now = now or timezone.now()
    finished = OneTimeCode.objects.filter(
        Q(verified_at__isnull=False) | Q(expires_at__lte=now), redacted=False
    )
    return sum(redact(otp) for otp in finished.iterator())


def purge(now=None) -> int:
    """Forget codes that expired more than a day ago and are masked; returns how many."""
    now = now or timezone.now()
    deleted, _ = OneTimeCode.objects.filter(
        expires_at__lte=now - timedelta(days=1), redacted=True
    ).delete()
    return deleted
