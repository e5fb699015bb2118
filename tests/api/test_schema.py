"""The OpenAPI schema and the interactive docs, served locally; and Schemathesis, driven by the
served schema against the WSGI application: no generated input gets a server error, and every
answer fits the schema."""

import re

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    CategoryFactory,
    MessageFactory,
    ReplyFactory,
    SenderNameFactory,
)

PATHS = {
    "/api/v1/messages": {"get", "post"},
    "/api/v1/messages/{message_id}": {"get"},
    "/api/v1/messages/{message_id}/cancel": {"post"},
    "/api/v1/replies": {"get"},
    "/api/v1/campaigns/{campaign_id}": {"get"},
    "/api/v1/otp": {"post"},
    "/api/v1/otp/verify": {"post"},
}


def test_schema_is_served_without_a_key(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {path: set(ops) for path, ops in schema["paths"].items()} == PATHS
    assert schema["components"]["securitySchemes"] == {
        "BearerKey": {"type": "http", "scheme": "bearer"},
        "HeaderKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    post = schema["paths"]["/api/v1/messages"]["post"]
    assert {"201", "401", "422", "429"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


def test_docs_load_swagger_ui_from_our_static_files_not_a_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert all(a.startswith("/static/") for a in assets), assets
    assert "cdn" not in page.lower()
    for asset in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui.css", "ninja/swagger-ui-init.js"):
        assert finders.find(asset), asset


# --- Schemathesis ----------------------------------------------------------------------------


MAX_EXAMPLES = 10
# Loaded from the served schema through the WSGI application (no database needed for that).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@pytest.fixture
def same_connection():
    """Requests through the WSGI application stay on the test's database connection, as with
    Django's test client (which also keeps it open between requests)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(db, account, settings):
    """A key whose account has something of everything, and no rate limit to speak of."""
    settings.SMSHUB_API_RATE_LIMIT = 1_000_000
    api_key = ApiKeyFactory(account=account)
    SenderNameFactory(account=account, name="Clinic")
    CategoryFactory(account=account, tag="appointments")
    campaign = CampaignFactory(account=account)
    for status in ("queued", "sent", "delivered"):
        message = MessageFactory(account=account, campaign=None, status=status)
    MessageFactory(account=account, campaign=campaign, recipient="+40721234567")
    ReplyFactory(account=account, message=message)
    return api_key


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_no_generated_input_gets_a_server_error(case, fuzz_key, same_connection):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key.secret}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
