"""One shape for every error the API answers:

    {"error": {"code": "invalid", "message": "The request is not valid.",
               "fields": {"to.1": ["“+33 1” is not a valid phone number for its country."]}}}

`code` is a stable word a program can test; `message` a sentence for a person; `fields` maps each
input at fault (a body field, `to.<index>` for one number of a list, a query parameter or a
header) to what is wrong with it, and is empty when no single input is at fault.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from .schemas import FIELD_ERRORS, PATTERN_ERRORS, UNION_TAGS


class ErrorDetail(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class Error(Schema):
    error: ErrorDetail


class ApiError(Exception):
    """Raised by the API's code to answer with an error; nothing the request did is kept."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.fields)


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def invalid(fields: dict[str, list[str]], message: str = "The request is not valid.") -> ApiError:
    return ApiError(422, "invalid", message, fields)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No {what} with this id in your account.")


UNAUTHORIZED = (
    "Send a valid API key as “Authorization: Bearer <key>” or as “X-API-Key: <key>”. "
    "Account admins create keys on the API keys page."
)

# Responses every authenticated operation may give, for the schema.
AUTH_ERRORS = {401: Error, 429: Error}

_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


def _field_name(loc: list[Any]) -> str:
    """ninja's error location → the field as the client wrote it: ["body", "payload", "to", 1]
    → "to.1"; ["query", "limit"] → "limit"; the body as a whole → "body"."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else ""
    if source == "body" and parts:
        parts.pop(0)  # the view's parameter name, not something the client wrote
    parts = [part for part in parts if part not in UNION_TAGS]
    return ".".join(str(part) for part in parts) or source or "body"


def install(api: NinjaAPI) -> None:
    """Answer every error in the one shape, with a clear message."""

    def respond(request: HttpRequest, error: ApiError) -> HttpResponse:
        response = api.create_response(request, error.body(), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return respond(request, exc)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields: dict[str, list[str]] = {}
        for item in exc.errors:
            message = str(item.get("msg", "Not valid."))
            if item.get("type") == "missing":
                message = "This field is required."
            elif item.get("type") == "extra_forbidden":
                message = "Unknown field: see the API schema for the fields this takes."
            elif item.get("type") == "string_pattern_mismatch":
                message = PATTERN_ERRORS.get(item.get("ctx", {}).get("pattern"), message)
            field = _field_name(item.get("loc", []))
            fields.setdefault(field, []).append(FIELD_ERRORS.get(field, message))
        return respond(request, invalid(fields))

    @api.exception_handler(AuthenticationError)
    def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(request, ApiError(401, "unauthorized", UNAUTHORIZED))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:
            return respond(
                request,
                ApiError(400, "bad_request", "The body is not valid JSON.", {"body": [str(exc)]}),
            )
        return respond(request, ApiError(exc.status_code, "error", str(exc)))

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = (
            f"The body is larger than {limit} bytes: send fewer numbers or contacts per request."
        )
        return respond(request, ApiError(413, "too_large", message))

    @api.exception_handler(Http404)
    def http404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, ApiError(404, "not_found", str(exc) or "Not found."))
