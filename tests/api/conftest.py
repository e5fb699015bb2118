"""Fixtures of the API tests: a key of the `account` fixture, and a client that sends it."""

import json
from typing import Any

import pytest

from tests.factories import AccountFactory, ApiKeyFactory

BASE = "/api/v1"


class ApiClient:
    """Django's test client speaking JSON to /api/v1 with an API key."""

    def __init__(self, client, secret: str | None) -> None:
        self.client = client
        self.secret = secret

    def headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, params: dict[str, Any] | None = None, headers=None):
        return self.client.get(BASE + path, params or {}, headers=self.headers(headers))

    def post(self, path: str, body: Any = None, headers=None, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            BASE + path, data=data, content_type="application/json", headers=self.headers(headers)
        )


def error_of(response) -> dict:
    """The `error` object of an answer, after checking the one documented error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert all(isinstance(v, list) for v in body["error"]["fields"].values()), body
    return body["error"]


@pytest.fixture
def api_key(account):
    return ApiKeyFactory(account=account, name="Booking site")


@pytest.fixture
def api(client, api_key) -> ApiClient:
    return ApiClient(client, api_key.secret)


@pytest.fixture
def other_account(provider_account):
    return AccountFactory(name="Other Ltd", route=[provider_account])


@pytest.fixture
def other_api(client, other_account) -> ApiClient:
    return ApiClient(client, ApiKeyFactory(account=other_account).secret)
