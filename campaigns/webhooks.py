"""One generic webhook view for every provider: /hooks/<slug>/<token>/<kind>/.

The token in the path identifies the provider account and is its secret: a wrong one is a 404
that changes nothing. The adapter turns the body into events; the services apply them.
"""

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

from .services.delivery import apply_delivery_report

logger = logging.getLogger(__name__)

WEBHOOK_KINDS = ("dlr",)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, slug: str, token: str, kind: str) -> JsonResponse:
    provider_account = ProviderAccount.objects.filter(
        slug=slug, webhook_token=token, enabled=True
    ).first()
    if provider_account is None or kind not in WEBHOOK_KINDS:
        return JsonResponse({"error": "not found"}, status=404)
    adapter = provider_account.adapter()
    try:
        reports = adapter.parse_delivery_reports(request)
    except WebhookValidationError as exc:
        logger.warning("webhook %s/%s refused: %s", provider_account.name, kind, exc)
        return JsonResponse({"error": str(exc)}, status=400)
    applied = sum(apply_delivery_report(provider_account, report) for report in reports)
    return JsonResponse({"received": len(reports), "applied": applied})
