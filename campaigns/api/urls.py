"""URLs of the JSON API. Anything else under /api/ is a JSON 404, and a method an endpoint does
not take a JSON 405, in the API's one error shape."""

from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from .api import api
from .errors import error_body


def unknown(request: HttpRequest, rest: str = "") -> JsonResponse:
    body = error_body("not_found", "No such endpoint: see /api/v1/docs for the list.")
    return JsonResponse(body, status=404)


def json_405(view):
    @wraps(view)  # keeps ninja's csrf_exempt mark
    def wrapper(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code != 405 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        allowed = response.get("Allow", "")
        body = error_body(
            "method_not_allowed", f"{request.method} is not allowed here; this takes {allowed}."
        )
        answer = JsonResponse(body, status=405)
        answer["Allow"] = allowed
        return answer

    return wrapper


# Not named `app_name`: Django would take this module for a namespaced app.
api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:
    pattern.callback = json_405(pattern.callback)

urlpatterns = [
    path("api/v1/", (api_patterns, api_app, api_namespace)),
    re_path(r"^api/(?P<rest>.*)$", unknown),
]
