"""The API, webhooks and probes through the real WSGI application (smshub.wsgi), which serves them
with `MACHINE_MIDDLEWARE`: they work, answer as before (JSON errors, request id, HTTPS), and
never touch sessions; pages keep sessions, CSRF and the Content-Security-Policy.

Django's test client builds its own handler on `MIDDLEWARE`, so these tests call the WSGI
application with a WSGI environ, as a WSGI server does.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Message
from smshub.wsgi import build_application

from ..conftest import apply_webhooks, wait_for
from ..factories import ApiKeyFactory, MessageFactory

# What the TLS-terminating proxy adds to every request it passes on.
HTTPS = {"X-Forwarded-Proto": "https"}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        assert self.header("Content-Type").startswith("application/json"), self.headers
        return json.loads(self.body)


def call(app, method: str, path: str, body: bytes = b"", headers=None) -> Answer:
    """One request to a WSGI application, as a WSGI server makes it."""
    environ: dict = {}
    setup_testing_defaults(environ)  # Host 127.0.0.1, plain HTTP
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING="",
        CONTENT_LENGTH=str(len(body)),
    )
    environ["wsgi.input"] = BytesIO(body)
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    started: list = []
    result = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
    try:
        content = b"".join(result)
    finally:
        result.close()  # request_finished, as a WSGI server sends it
    status, answer_headers = started
    return Answer(int(status.split()[0]), list(answer_headers), content)


def post_json(app, path: str, payload, headers=None) -> Answer:
    body = json.dumps(payload).encode()
    return call(app, "POST", path, body, {"Content-Type": "application/json", **(headers or {})})


def session_queries(queries) -> list[str]:
    """The SQL of queries that read a session or a user."""
    return [q["sql"] for q in queries if "django_session" in q["sql"] or "auth_user" in q["sql"]]


@pytest.fixture
def app(settings):
    """The WSGI application, built on these settings, behind a TLS proxy as in production."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = 31536000
    return build_application()


@pytest.fixture
def staff_cookie(client, operator) -> str:
    """A logged-in staff member's session cookie, as a browser on the same host would send it."""
    client.force_login(operator)
    return f"sessionid={client.cookies['sessionid'].value}"


pytestmark = pytest.mark.django_db(transaction=True)  # each request commits, as in production


@pytest.fixture(autouse=True)
def _worker_done_before_the_tables_are_emptied():
    """A send or a webhook here wakes the session's live worker, if one runs (tests/conftest.py
    celery_worker): this test's tables are truncated when it ends, and a TRUNCATE meeting that
    worker's claim or apply can deadlock on PostgreSQL. So the test ends once nothing is left
    on its way or waiting to be applied (at most a few seconds), and a moment more for the
    worker's last transaction to end."""
    yield
    from campaigns.models import WebhookRequest
    from campaigns.statuses import ON_ITS_WAY

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        Message.objects.filter(status__in=ON_ITS_WAY).exists()
        or WebhookRequest.objects.filter(status=WebhookRequest.Status.RECEIVED).exists()
    ):
        time.sleep(0.1)
    time.sleep(0.3)


def test_an_api_send_works_without_sessions(app, account, staff_cookie):
    api_key = ApiKeyFactory(account=account)
    with CaptureQueriesContext(connection) as queries:
        answer = post_json(
            app,
            "/api/v1/messages",
            {"to": "+33612345678", "text": "See you at 10:00"},
            {
                **HTTPS,
                "Authorization": f"Bearer {api_key.secret}",
                "Cookie": staff_cookie,
                "X-Request-ID": "api-send-1",
            },
        )
    assert answer.status == 201, answer.body
    assert answer.json()["message"]["status"] == "queued"
    assert Message.objects.get().account == account
    assert session_queries(queries) == []  # the staff cookie is not even read
    assert answer.header("Set-Cookie") is None and answer.header("Vary") is None
    assert answer.header("X-Request-ID") == "api-send-1"
    assert answer.header("X-Content-Type-Options") == "nosniff"
    assert answer.header("Strict-Transport-Security").startswith("max-age=31536000")
    assert answer.header("Content-Length") == str(len(answer.body))
    # JSON is not a page: no policy for scripts or frames to carry.
    assert answer.header("Content-Security-Policy") is None
    assert answer.header("X-Frame-Options") is None


def test_a_webhook_works_without_sessions(app, account, provider_account, staff_cookie):
    sent = MessageFactory(
        account=account,
        provider_account=provider_account,
        provider_message_id="sim-1",
        status=Message.Status.SENT,
    )
    path = urlsplit(provider_account.webhook_url("dlr")).path
    with CaptureQueriesContext(connection) as queries:
        answer = post_json(
            app, path, {"id": "sim-1", "status": "delivered"}, {**HTTPS, "Cookie": staff_cookie}
        )
    assert answer.status == 200, answer.body
    assert answer.json() == {"received": 1}
    assert session_queries(queries) == []
    assert answer.header("Set-Cookie") is None
    assert answer.header("X-Request-ID")
    # Applied here, or by a live worker of the session that the webhook woke and that took
    # the stored request first: either way the message is delivered.
    apply_webhooks()
    assert wait_for(
        lambda: Message.objects.get(pk=sent.pk).status == Message.Status.DELIVERED, timeout=10
    )


def test_pages_keep_sessions_csrf_and_the_policy(app, staff_cookie):
    login = call(app, "GET", "/login/", headers={**HTTPS, "X-Request-ID": "page-1"})
    assert login.status == 200
    assert login.header("X-Request-ID") == "page-1"
    assert "csrftoken=" in login.header("Set-Cookie")
    assert "script-src 'self' 'nonce-" in login.header("Content-Security-Policy")
    assert login.header("X-Frame-Options") == "DENY"

    with CaptureQueriesContext(connection) as queries:
        dashboard = call(app, "GET", "/", headers={**HTTPS, "Cookie": staff_cookie})
    assert dashboard.status == 200  # logged in through the session, not sent to log in
    assert session_queries(queries)
    # The API's interactive docs are a page too.
    docs = call(app, "GET", "/api/v1/docs", headers=HTTPS)
    assert docs.status == 200 and b"swagger-ui" in docs.body
    assert docs.header("Content-Security-Policy") and docs.header("X-Frame-Options") == "DENY"


def test_api_errors_and_unknown_endpoints_answer_json(app, account):
    unknown = call(app, "GET", "/api/v1/nothing-here", headers=HTTPS)
    assert unknown.status == 404
    assert unknown.json()["error"]["code"] == "not_found"

    no_key = post_json(app, "/api/v1/messages", {"to": "+33612345678", "text": "Hi"}, HTTPS)
    assert no_key.status == 401
    assert no_key.json()["error"]["code"] == "unauthorized"

    api_key = ApiKeyFactory(account=account)
    not_json = call(
        app,
        "POST",
        "/api/v1/messages",
        b"{not json",
        {**HTTPS, "Content-Type": "application/json", "Authorization": f"Bearer {api_key.secret}"},
    )
    assert not_json.status == 400
    assert not_json.json()["error"]["code"] == "bad_request"
    for answer in (unknown, no_key, not_json):
        assert answer.header("X-Request-ID") and answer.header("Set-Cookie") is None


def test_plain_http_to_the_api_is_redirected_to_https(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SECURE_SSL_REDIRECT = True
    app = build_application()
    answer = post_json(app, "/api/v1/messages", {"to": "+33612345678", "text": "Hi"})
    assert answer.status == 301
    assert answer.header("Location") == "https://127.0.0.1/api/v1/messages"
    assert answer.header("X-Request-ID")
    # Probes stay on plain HTTP.
    assert call(app, "GET", "/healthz").status == 200


def test_a_host_not_allowed_is_refused_on_machine_paths_too(app):
    answer = call(app, "GET", "/healthz", headers={**HTTPS, "Host": "evil.example"})
    assert answer.status == 400
    assert call(app, "GET", "/healthz", headers=HTTPS).status == 200


def test_the_asgi_application_routes_alike():
    from smshub.asgi import application

    def get(path: str) -> dict[str, str]:
        sent: list[dict] = []
        body = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if body:
                return body.pop()
            await asyncio.Event().wait()  # the client stays connected

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 443),
        }
        asyncio.run(application(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        assert start["status"] == 200, sent
        return {k.decode().lower(): v.decode() for k, v in start["headers"]}

    assert "content-security-policy" not in get("/healthz")
    assert "content-security-policy" in get("/login/")
