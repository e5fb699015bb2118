"""Who is calling: an API key in `Authorization: Bearer <key>` or in `X-API-Key: <key>`.

A request without a valid key is answered 401; a valid key over its rate limit gets 429 with
`Retry-After`, and so does any key from an address that sent too many invalid ones
(`smshub.lockout.apikeys`). None touches anything but the counters. Each request costs one
cache round trip (the rate counter, the address's refusal, the keys version) and, for a key
this process has seen, no database query (`keys.lookup`). Keys are not cookies, so CSRF does
not apply to API calls.
"""

import logging

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from smshub.lockout import apikeys

from . import keys, ratelimit
from .errors import UNAUTHORIZED, ApiError
from .models import ApiKey

logger = logging.getLogger(__name__)


def authenticate(request: HttpRequest, secret: str) -> ApiKey:
    # One cache round trip (with Redis): the key's request counted, whether this address is
    # refused, and which version of the keys is current.
    secret = secret.strip()
    refusal = apikeys.blocked_key(request)
    over, state = ratelimit.hit_and_read(keys.digest(secret)[:16], [refusal, keys.VERSION_KEY])
    if (wait := apikeys.wait(state.get(refusal))) is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many invalid API keys from this address: try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    api_key = keys.lookup(secret, state.get(keys.VERSION_KEY))
    if api_key is None:
        apikeys.failed(request)
        raise ApiError(401, "unauthorized", f"This API key is not valid. {UNAUTHORIZED}")
    if not api_key.is_active:
        logger.info("api: revoked key used: key=%s account=%s", api_key.prefix, api_key.account_id)
        raise ApiError(
            401, "unauthorized", "This API key was revoked: ask an account admin for a new one."
        )
    if over is not None:
        limit = settings.SMSHUB_API_RATE_LIMIT
        raise ApiError(
            429,
            "rate_limited",
            f"More than {limit} requests a minute with this key: try again in {over} s.",
            headers={"Retry-After": str(over)},
        )
    keys.touch(api_key)
    return api_key


class BearerKey(HttpBearer):
    """`Authorization: Bearer <key>`."""

    def __call__(self, request: HttpRequest) -> ApiKey | None:
        # django-ninja's own version logs a header of another scheme (`Token smsh_...`) in full.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        return authenticate(request, token)


class HeaderKey(APIKeyHeader):
    """`X-API-Key: <key>`."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        if key is None:
            return None
        return authenticate(request, key)


AUTH = [BearerKey(), HeaderKey()]
