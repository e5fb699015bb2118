"""Makes the request's user the author of every audited change made while serving it."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .recorder import acting_for_request


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_for_request(request):
            return self.get_response(request)
