"""The OpenAPI schema and the interactive docs, served locally; and Schemathesis, driven by the
served schema against the WSGI application: no generated input gets a server error, the server
accepts what the schema allows and refuses what it does not, and every answer fits the schema."""

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
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from campaigns.api.schemas import NO_NUL, PHONE, TAG
from campaigns.contacts.models import Contact, ContactField, ContactList, Membership, Segment
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
    "/api/v1/contacts": {"get", "post"},
    "/api/v1/contacts/bulk": {"post"},
    "/api/v1/contacts/{contact_id}": {"get", "patch", "delete"},
    "/api/v1/contact-fields": {"get"},
    "/api/v1/lists": {"get", "post"},
    "/api/v1/lists/{list_id}": {"get", "patch", "delete"},
    "/api/v1/lists/{list_id}/members": {"post"},
    "/api/v1/lists/{list_id}/members/remove": {"post"},
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


MAX_EXAMPLES = 100
# Loaded from the served schema through the WSGI application (no database needed for that).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
schema.config.generation.update(max_examples=MAX_EXAMPLES)

# What no schema can say, and so the only 422s allowed for input the schema allows: whether a
# number is valid for its country, a sender approved, a category the account's, a number opted
# out, a time not past nor more than a year ahead, a one-time code right.
DEPENDS_ON_DATA = re.compile(
    "|".join(
        [
            "is not a phone number",
            "is not a valid phone number for its country",
            "is not an approved sender name",
            "has no category tagged",
            "opted out",
            "has already passed",
            "Must be after the time to send",
            "Too far ahead",
            # Contacts: the account's custom fields, lists and segments.
            "No custom field",
            "No list with this id",
            "No segment with this id",
            # Sending to contacts: the account's lists, segments and templates, and one rule
            # across fields that the schema does not say (a text or a template, and someone
            # to send to).
            "has no template named",
            "This account has no (list|segment) ",
            "Give a text or a template, not both",
            "Give the text to send, or a template",
            "Give a number, a list of numbers, lists or segments",
            "The text is empty for this recipient",
            "Not a merge field name",
        ]
    )
)
CODE_CHECKS = {"no_code", "wrong_code", "code_expired", "code_used", "too_many_attempts"}


def positive_data_acceptance_but_for_data(ctx, response, case):
    """Schemathesis' `positive_data_acceptance`, but for a 422 that only the account's data or
    the time of day explains (`DEPENDS_ON_DATA`, or a one-time code checked wrong)."""
    if response.status_code == 422:
        error = response.json()["error"]
        messages = [message for found in error["fields"].values() for message in found]
        if error["code"] in CODE_CHECKS or (
            messages and all(DEPENDS_ON_DATA.search(message) for message in messages)
        ):
            return None
    return positive_data_acceptance(ctx, response, case)


# Generated numbers, senders and categories that fit the schema are mostly not valid for a
# country, approved or the account's: these make the well-formed ones real, so that sends
# succeed and their answers are checked too. Input the schema refuses is left as generated.
NUMBERS = ["+33612345678", "+40721234567", "+447911123456"]


def _fits(value, pattern: str, max_length: int) -> bool:
    return (
        isinstance(value, str) and len(value) <= max_length and bool(re.fullmatch(pattern, value))
    )


def _real(name: str, value):
    if name in ("to", "from_number", "number") and _fits(value, PHONE, 32):
        return NUMBERS[len(value) % len(NUMBERS)]
    if (
        name in ("to", "numbers")
        and isinstance(value, list)
        and all(_fits(v, PHONE, 32) for v in value)
    ):
        return [_real("to", v) for v in value]
    if name == "contacts" and isinstance(value, list):  # the rows of a bulk upsert
        return [map_body(None, row) for row in value]
    if (  # custom values: to the account's one field
        name == "fields"
        and isinstance(value, dict)
        and value
        and all(isinstance(v, str) and _fits(v, NO_NUL, 500) for v in value.values())
    ):
        return {"city": next(iter(value.values()))}
    if name == "sender" and value and _fits(value, NO_NUL, 15):
        return "Clinic"
    if name == "category" and _fits(value, TAG, 50):
        return "appointments"
    return value


@schema.hook
def map_body(ctx, body):
    if isinstance(body, dict):
        return {name: _real(name, value) for name, value in body.items()}
    return body


@schema.hook
def map_query(ctx, query):
    if isinstance(query, dict):
        return {name: _real(name, value) for name, value in query.items()}
    return query


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance_but_for_data,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]


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
    """A key whose account has something of everything, and no rate limit to speak of (nor
    a lockout for the invalid keys that `ignored_auth` sends)."""
    settings.SMSHUB_API_RATE_LIMIT = 1_000_000
    settings.SMSHUB_API_KEY_FAILURES = 1_000_000
    api_key = ApiKeyFactory(account=account)
    SenderNameFactory(account=account, name="Clinic")
    CategoryFactory(account=account, tag="appointments")
    campaign = CampaignFactory(account=account)
    for status in ("queued", "sent", "delivered"):
        message = MessageFactory(account=account, campaign=None, status=status)
    MessageFactory(account=account, campaign=campaign, recipient="+40721234567")
    ReplyFactory(account=account, message=message)
    ContactField.objects.create(account=account, key="city", label="City")
    vip = ContactList.objects.create(account=account, name="VIP")
    rules = [{"field": "city", "op": "eq", "value": "x"}]
    Segment.objects.create(account=account, name="Lyon", rules=rules)
    contact = Contact.objects.create(account=account, number="+33612345678", values={"city": "x"})
    Membership.objects.create(contact=contact, contact_list=vip)
    return api_key


@pytest.mark.fuzz
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
def test_the_api_does_what_its_schema_says(case, fuzz_key, same_connection):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_key.secret}"}, checks=CHECKS)
