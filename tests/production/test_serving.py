"""Serving in production: `check --deploy` clean, granian (smshub/web.py) with WhiteNoise
serving hashed and compressed static files, HTTPS behind a proxy, reloads, the
Content-Security-Policy, and the staff UI working under that policy in Chromium."""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connections
from django.urls import reverse

from campaigns.models import Campaign, Membership
from smshub import crypto

from ..conftest import database_url_for_subprocess
from ..factories import (
    AccountFactory,
    CampaignFactory,
    MembershipFactory,
    MessageFactory,
    ProviderAccountFactory,
    UserFactory,
)

ROOT = Path(__file__).resolve().parent.parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


# What the TLS-terminating proxy adds to every request it passes on.
HTTPS = {"X-Forwarded-Proto": "https"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a process run with the production settings (DEBUG off), sharing this
    test run's secrets so that both read what the other encrypted."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smshub.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "SMSHUB_ENCRYPTION_KEYS": ",".join(crypto.configured_keys()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or its worker still booting
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def test_check_deploy_is_clean_under_the_production_settings():
    env = production_env(
        SECRET_KEY=secrets.token_urlsafe(50),
        SMSHUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="sms.example.org",
        CSRF_TRUSTED_ORIGINS="https://sms.example.org",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


class Server:
    def __init__(self, url: str, static_root: Path, log: Path, process: subprocess.Popen) -> None:
        self.url, self.static_root, self.log, self.process = url, static_root, log, process

    def access_log(self) -> list[dict]:
        lines = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{") and '"granian.access"' in line:
                lines.append(json.loads(line))
        return lines


@pytest.fixture(scope="module")
def production_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """`python -m smshub.web` (granian) and DEBUG off, after `collectstatic` into a
    STATIC_ROOT of its own; told that a TLS-terminating proxy sets X-Forwarded-Proto."""
    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    static_root = tmp_path_factory.mktemp("static")
    port = free_port()
    env = production_env(
        DATABASE_URL=database_url,
        STATIC_ROOT=str(static_root),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        CONN_MAX_AGE="0",
    )
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert collected.returncode == 0, collected.stderr
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "web-serving.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "smshub.web"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", process, log)
        yield Server(url, static_root, log, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_static_files_have_hashed_names_are_compressed_and_cached_for_a_year(production_server):
    manifest = json.loads((production_server.static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["css/app.css"]
    assert re.fullmatch(r"css/app\.[0-9a-f]{12}\.css", hashed)
    response = requests.get(
        f"{production_server.url}/static/{hashed}",
        headers={**HTTPS, "Accept-Encoding": "gzip"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=315360000" in response.headers["Cache-Control"]
    assert response.text == (production_server.static_root / hashed).read_text()
    # Pages link the hashed names (htmx from django-htmx too).
    page = requests.get(f"{production_server.url}/login/", headers=HTTPS, timeout=10).text
    assert f'href="/static/{hashed}"' in page
    htmx = manifest["paths"]["django_htmx/htmx-2.min.js"]
    assert f'src="/static/{htmx}"' in page


def test_a_page_behind_the_tls_proxy_carries_the_security_headers(production_server):
    response = requests.get(
        f"{production_server.url}/login/",
        headers={**HTTPS, "X-Request-ID": "serving-test-1"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "serving-test-1"
    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    nonce = re.fullmatch(r"'self' 'nonce-([\w-]+)'", csp["script-src"]).group(1)
    assert "unsafe" not in csp["script-src"]
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    scripts = re.findall(r"<script [^>]*>", response.text)
    assert scripts and all(f'nonce="{nonce}"' in s or "app." in s for s in scripts)
    assert "Secure" in response.headers["Set-Cookie"]  # the CSRF cookie, HTTPS only


def test_plain_http_is_redirected_to_https_but_probes_are_not(production_server):
    response = requests.get(f"{production_server.url}/login/", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")
    for probe in ("healthz", "readyz?checks=database"):
        response = requests.get(f"{production_server.url}/{probe}", timeout=10)
        assert response.status_code == 200, response.text


def test_the_access_log_is_json_with_the_request_id(production_server):
    requests.get(
        f"{production_server.url}/healthz", headers={"X-Request-ID": "access-log-7"}, timeout=10
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [e for e in production_server.access_log() if e.get("request_id") == "access-log-7"]
        if found:
            break
        time.sleep(0.1)
    [entry] = found
    assert entry["method"] == "GET" and entry["path"] == "/healthz" and entry["status"] == 200
    assert entry["level"] == "INFO" and isinstance(entry["duration_ms"], float)


def test_a_reload_replaces_the_workers_without_dropping_a_request(production_server):
    """`systemctl reload smshub-web` sends SIGHUP: new workers (with the new code) take over
    while requests keep being answered."""

    def workers_answering() -> set[int]:
        return {e["process"] for e in production_server.access_log() if e["path"] == "/healthz"}

    requests.get(f"{production_server.url}/healthz", timeout=10)
    before = workers_answering()
    production_server.process.send_signal(signal.SIGHUP)
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not workers_answering() - before:
        statuses.append(requests.get(f"{production_server.url}/healthz", timeout=10).status_code)
        time.sleep(0.05)
    assert workers_answering() - before, "no new worker answered within 20 s"
    assert statuses and set(statuses) == {200}
    assert production_server.process.poll() is None


def test_pages_carry_the_content_security_policy(client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert re.search(r"script-src 'self' 'nonce-[\w-]+';", policy)
    # htmx is told not to eval (the policy would refuse it anyway).
    assert '<meta name="htmx-config" content=\'{"allowEval": false}\'>' in response.text


# --- the staff UI under the policy, in Chromium ---------------------------------------------

VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ""}`);
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)
def test_the_staff_ui_works_under_the_policy(live_server):
    from playwright.sync_api import sync_playwright

    provider = ProviderAccountFactory(name="Simulator")
    acme = AccountFactory(name="Acme", route=[provider])
    other = AccountFactory(name="Zeta Ltd", route=[provider])
    user = UserFactory(username="ada", is_staff=True, is_superuser=True)
    MembershipFactory(user=user, account=acme, role=Membership.Role.ADMIN)
    MembershipFactory(user=user, account=other, role=Membership.Role.OPERATOR)
    campaign = CampaignFactory(account=acme, name="Flu jabs")
    for index in range(3):
        MessageFactory(account=acme, campaign=campaign, recipient=f"+3361234560{index}")

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.add_init_script(VIOLATIONS)
                page.on(
                    "console",
                    lambda m: (
                        problems.append(f"{page.url}: {m.text}") if m.type == "error" else None
                    ),
                )
                page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
                page.on(
                    "response",
                    lambda r: (
                        problems.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico")
                        else None
                    ),
                )

                def visit(path: str, ready: str = "main") -> None:
                    page.goto(live_server.url + path)
                    page.locator(ready).first.wait_for()
                    problems.extend(f"{path}: {v}" for v in page.evaluate("window.__csp"))

                visit(reverse("login"))
                page.get_by_label("Username").fill("ada")
                page.get_by_label("Password").fill("a-long-test-password")
                with page.expect_navigation():
                    page.get_by_role("button", name="Log in").click()

                visit(reverse("campaigns:dashboard"), "svg.bar-chart-wide")  # drawn on the server
                OUTPUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT / "csp-dashboard.png"), full_page=True)

                visit(reverse("campaigns:compose"))  # htmx: the live counter
                page.get_by_label("Message", exact=True).fill("Hello")
                page.get_by_text("5 characters").wait_for()

                # A confirmation in a data- attribute: dismissed keeps the campaign, accepted
                # cancels it.
                visit(reverse("campaigns:campaign_detail", args=[campaign.pk]))
                page.once("dialog", lambda dialog: dialog.dismiss())
                page.get_by_role("button", name="Cancel campaign").click()
                page.wait_for_timeout(300)
                campaign.refresh_from_db()
                assert campaign.status == Campaign.Status.RUNNING
                page.once("dialog", lambda dialog: dialog.accept())
                with page.expect_navigation():
                    page.get_by_role("button", name="Cancel campaign").click()
                campaign.refresh_from_db()
                assert campaign.status == Campaign.Status.CANCELED

                # A new API key is selected whole on focus, ready to copy.
                visit(reverse("api_keys:list"))
                page.get_by_label("Name").fill("Booking site")
                page.get_by_role("button", name="Create key").click()
                key = page.get_by_label("API key")
                key.focus()
                selected = page.evaluate(
                    "(() => { const i = document.getElementById('new-key-value');"
                    " return i.value.substring(i.selectionStart, i.selectionEnd); })()"
                )
                assert selected and selected == key.input_value()

                # Choosing another account in the switcher submits it at once.
                visit(reverse("campaigns:message_list"))
                with page.expect_navigation():
                    page.get_by_label("Account", exact=True).select_option(label="Zeta Ltd")
                page.locator("#account-switch option[selected]", has_text="Zeta Ltd").wait_for(
                    state="attached"
                )

                visit(reverse("admin:index"), "#content")
                visit("/api/v1/docs", ".swagger-ui .info")
            finally:
                browser.close()
                # The ORM calls made while Playwright's loop runs got their own connection:
                # closed here, or PostgreSQL refuses to drop the test database at the end.
                connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        connections.close_all()
    # Failed loads are listed with their URL by the response listener (favicon.ico aside).
    problems = [p for p in problems if "Failed to load resource" not in p]
    assert problems == [], "the policy blocked something, or a page logged an error"


# --- the deployment files -------------------------------------------------------------------


def test_the_deployment_guide_names_every_setting_read_from_the_environment():
    """Colleagues add settings: docs/deploy.md must keep up (a missing one fails here)."""
    read = set()
    for source in ("smshub/settings.py", "smshub/web.py"):
        text = (ROOT / source).read_text()
        read |= set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', text))
    assert {"DATABASE_URL", "SMSHUB_METRICS_TOKEN", "WEB_CONCURRENCY"} <= read
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in guide) == []


def test_run_prod_runs_the_production_procfile_plus_the_simulator():
    def processes(path: Path) -> dict[str, str]:
        lines = path.read_text().splitlines()
        return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))

    production = processes(ROOT / "Procfile")
    local = processes(ROOT / "deploy" / "Procfile.local")
    assert set(production) == {"web", "worker", "beat"}
    assert production["web"] == "python -m smshub.web"
    assert {name: local[name] for name in production} == production
    assert set(local) - set(production) == {"simulator"}


def test_the_web_server_starts_one_process_per_cpu_plus_one_of_four_threads(monkeypatch):
    """Each process runs the application in four threads: more processes than CPUs plus one only
    share the cores with PostgreSQL and the worker."""
    from smshub import web

    for name in ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_BIND", "PORT", "WEB_MAX_RSS"):
        monkeypatch.delenv(name, raising=False)
    options = web.options()
    assert (options["workers"], options["blocking_threads"]) == (os.cpu_count() + 1, 4)
    assert (options["address"], options["port"]) == ("127.0.0.1", 8000)
    assert options["respawn_failed_workers"] and options["workers_max_rss"] == 1024
    assert options["target"] == "smshub.web:application"
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    monkeypatch.setenv("WEB_BIND", "unix:/run/smshub/web.sock")
    monkeypatch.setenv("WEB_MAX_RSS", "0")
    options = web.options()
    assert options["workers"] == 7 and str(options["uds"]) == "/run/smshub/web.sock"
    assert options["workers_max_rss"] is None
    monkeypatch.delenv("WEB_BIND")
    monkeypatch.setenv("PORT", "5000")  # a platform's port
    assert (web.options()["address"], web.options()["port"]) == ("0.0.0.0", 5000)  # noqa: S104


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("WEB_BIND", "8000", "WEB_BIND must be host:port or unix:/path, not '8000'"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_a_bad_setting_stops_the_web_server_with_what_is_expected(name, value, said):
    result = subprocess.run(
        [sys.executable, "-m", "smshub.web"],
        cwd=ROOT,
        env=production_env(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(said), result.stderr


def test_gunicorn_settings_of_earlier_versions_stop_the_server_with_their_replacement():
    """A deployment's environment written for gunicorn would be silently ignored: the web
    server refuses to start and says what replaced each setting."""
    result = subprocess.run(
        [sys.executable, "-m", "smshub.web"],
        cwd=ROOT,
        env=production_env(GUNICORN_BIND="0.0.0.0:8000", GUNICORN_TIMEOUT="60"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "GUNICORN_BIND is set, but the web server is granian now: use WEB_BIND.",
        "GUNICORN_TIMEOUT is set, but the web server is granian now: it has no equivalent;"
        " remove it (docs/deploy.md).",
    ]


def test_a_request_sees_none_of_the_servers_environment(monkeypatch):
    """granian starts each request's environ from a copy of the process's environment, secrets
    included: the application gets the request's keys only."""
    from smshub import web

    monkeypatch.setenv("DATABASE_URL", "postgres://smshub:hunter2-secret@db/smshub")
    seen = {}

    def application(environ, start_response):
        seen.update(environ)
        return [b""]

    wrapped = web.without_server_environ(application)
    request = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/messages",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "10.0.0.2",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_AUTHORIZATION": "Bearer smsh_k",
        "wsgi.url_scheme": "http",
    }
    wrapped(dict(os.environ) | {"SCRIPT_NAME": "", "wsgi.multithread": True} | request, None)
    assert "DATABASE_URL" not in seen and "SECRET_KEY" not in seen and "PATH" not in seen
    assert {key: seen[key] for key in request} == request
    assert seen["SCRIPT_NAME"] == "" and seen["wsgi.multithread"] is True
