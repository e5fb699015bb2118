"""One generic webhook view for every provider: /hooks/<slug>/<token>/<dlr|inbound>/.

The token in the path identifies the provider account and is its secret (Vortext's push has no
authentication of its own); a wrong one is a 404 that stores nothing but a counter. The account
is remembered by the process (`ProviderAccount.for_webhook`) and the INSERT that stores the
request checks that it is still current (`webhook_log.store`), so a stored request costs that
one statement, shared with the requests arriving at the same moment; a rotated token or new
credentials are refused at the very next request.
Optional HTTP basic auth on top (`webhook_username` / `webhook_password` in the account's
credentials) is compared in constant time. The adapter reads the body (a body it cannot read is
a 400, the request kept with the reason); the request is stored as received and answered at
once; workers apply it (`webhook_log.apply_received`). A request the hub could not store is
answered 503, so that the provider tries again: never a 200 for a report the hub did not keep.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

from .models import WebhookRequest
from .services import webhook_log

logger = logging.getLogger(__name__)

KINDS = (WebhookRequest.Kind.DLR, WebhookRequest.Kind.INBOUND)
REJECTED_COUNTER = "smshub:webhooks:rejected:{slug}:{reason}"


def _rejected(slug: str, reason: str, status: int, message: str) -> JsonResponse:
    key = REJECTED_COUNTER.format(slug=slug, reason=reason)
    try:
        cache.add(key, 0, timeout=None)
        cache.incr(key)
    except Exception:  # a counter must never turn a refusal into a 500
        logger.warning("could not count a rejected webhook (%s)", reason)
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="SMS Hub webhooks"'
    return response


def rejected_count(slug: str, reason: str) -> int:
    return cache.get(REJECTED_COUNTER.format(slug=slug, reason=reason), 0)


@csrf_exempt
def webhook(request: HttpRequest, slug: str, token: str, kind: str) -> HttpResponse:
    if kind not in KINDS:
        return _rejected(slug, "not_found", 404, "not found")
    # The account as this process remembers it, checked by the INSERT that stores the request;
    # if it changed meanwhile, as the database has it now.
    for remembered in (True, False):
        try:
            provider_account = ProviderAccount.for_webhook(slug, token, remembered)
        except DatabaseError:
            logger.exception("webhook: database unavailable")
            return JsonResponse({"error": "temporarily unavailable, try again"}, status=503)
        if provider_account is None:
            return _rejected(slug, "not_found", 404, "not found")
        response = _receive(request, provider_account, kind)
        if response is not None:
            return response
    # Changed again between reading it and storing the request: the provider tries again.
    return JsonResponse({"error": "temporarily unavailable, try again"}, status=503)


def _receive(
    request: HttpRequest, provider_account: ProviderAccount, kind: str
) -> HttpResponse | None:
    """The answer to `request` for `provider_account`, the request stored; None, having stored
    nothing, when the account is no longer as it was read."""
    if not provider_account.webhook_auth_ok(request.headers.get("Authorization", "")):
        return _rejected(provider_account.slug, "auth", 401, "authentication required")
    if request.method != "POST":
        response = JsonResponse({"error": "use POST"}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if (
        length > settings.SMSHUB_WEBHOOK_MAX_BODY
        or len(request.body) > settings.SMSHUB_WEBHOOK_MAX_BODY
    ):
        return _rejected(provider_account.slug, "too_large", 413, "body too large")

    # Read now, so that a body the provider's adapter cannot read is refused at once (400);
    # applied by a worker once stored, so that the provider gets its answer fast.
    try:
        items, refusal = webhook_log.parse(provider_account, kind, request), None
    except WebhookValidationError as exc:
        items, refusal = [], exc
    try:
        log = webhook_log.store(
            provider_account,
            kind,
            request,
            status=WebhookRequest.Status.FAILED if refusal else WebhookRequest.Status.RECEIVED,
            events=len(items),
            error=str(refusal or ""),
        )
    except DatabaseError:
        logger.exception("webhook: could not store a request from %s", provider_account.name)
        return JsonResponse({"error": "temporarily unavailable, try again"}, status=503)
    if log is None:
        return None
    if refusal is not None:
        logger.warning("webhook %s #%s refused: %s", provider_account.name, log.pk, refusal)
        return JsonResponse({"error": str(refusal)}, status=400)
    webhook_log.nudge()
    return _received(len(items))


def _received(count: int) -> HttpResponse:
    """`{"received": count}`, the answer to a stored request, written without an encoder: JSON
    through `JsonResponse` took 4 % of a stored request's instructions (bench/instructions.py)."""
    return HttpResponse(b'{"received": %d}' % count, content_type="application/json")
