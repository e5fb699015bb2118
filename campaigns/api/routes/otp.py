"""One-time codes: send one, check one."""

from django.http import HttpRequest
from ninja import Router

from campaigns.models import OptOut

from .. import idempotency, otp, validation
from ..errors import AUTH_ERRORS, Error, invalid
from ..idempotency import Outcome
from ..schemas import IdempotencyKey, OtpIn, OtpOut, OtpVerifyIn, OtpVerifyOut

router = Router(tags=["One-time codes"])


@router.post(
    "/otp",
    operation_id="send_code",
    response={201: OtpOut, 400: Error, 409: Error, 422: Error, 502: Error, **AUTH_ERRORS},
    summary="Send a one-time code",
    description="Sends a code of `length` digits to the number, valid for a few minutes "
    "(5 by default) and a few tries (5 by default). Sending a new code to a number replaces the "
    "previous one. When the route goes through Ogangi, Ogangi makes and sends the code "
    "(channel `ogangi_pin`); otherwise the hub makes it and sends it as an SMS (channel `sms`).",
)
def send_code(request: HttpRequest, payload: OtpIn, idempotency_key: IdempotencyKey = None):
    api_key = request.auth

    def operation() -> Outcome:
        account = api_key.account
        errors: validation.Errors = {}
        to = validation.number(payload.to, "to", errors, account.region)
        validation.text(payload.text, "text", errors)
        validation.sender(account, payload.sender, errors)
        category = validation.category(account, payload.category, errors)
        if to and OptOut.objects.filter(account=account, number=to).exists():
            errors["to"] = ["This number opted out of messages from this account: no code sent."]
        if errors:
            raise invalid(errors)
        code = otp.issue(
            account,
            api_key,
            to=to,
            template=payload.text,
            length=payload.length,
            sender=payload.sender,
            category=category,
        )
        out = OtpOut(
            id=code.pk,
            to=code.recipient,
            channel=code.channel,
            expires_at=code.expires_at,
            max_attempts=code.max_attempts,
            message_id=code.message_id,
        )
        return Outcome(201, out.model_dump())

    return idempotency.run(request, operation)


@router.post(
    "/otp/verify",
    operation_id="verify_code",
    response={200: OtpVerifyOut, 400: Error, 409: Error, 422: Error, **AUTH_ERRORS},
    summary="Check a one-time code",
    description="Checks the code against the latest code sent to the number. A wrong code is a "
    "422 (`wrong_code`, with the tries left); an expired, used or exhausted code is a 422 "
    "(`code_expired`, `code_used`, `too_many_attempts`): ask for a new one.",
)
def verify_code(request: HttpRequest, payload: OtpVerifyIn, idempotency_key: IdempotencyKey = None):
    api_key = request.auth

    def operation() -> Outcome:
        errors: validation.Errors = {}
        to = validation.number(payload.to, "to", errors, api_key.account.region)
        if errors:
            raise invalid(errors)
        check = otp.verify(api_key.account, to=to, code=payload.code)
        if check.error is not None:
            # Returned, not raised: the try it counted is kept.
            return Outcome(check.error.status, check.error.body())
        out = OtpVerifyOut(verified=True, to=to, verified_at=check.otp.verified_at)
        return Outcome(200, out.model_dump())

    return idempotency.run(request, operation)
