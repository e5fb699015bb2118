"""The proxy's logs: deploy/nginx.conf, run by Debian's nginx in front of a stand-in for the web
processes, keeps out of nginx's own logs what the hub masks in its logs (a webhook's token, a
conversation's number, query strings and referers), and its lines carry the request id the
hub received.

The configuration is the shipped file with only what a machine changes: listening addresses,
certificate, upstream address and log folder. Skipped on a developer's machine without nginx
(`apt-get install -y nginx`); CI installs it, and there a missing nginx fails.
"""

import http.client
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = Path(settings.BASE_DIR) / "deploy" / "nginx.conf"
TOKEN = "Hk3v9QpL2mN8sT4uV6wX1yZ0aB5cD7eFgHiJkWXyz"  # a webhook token's shape
NUMBER = "%2B33612345678"  # +33612345678 in a URL
API_KEY = "smsh_Q9xv2Lk7Rt5Wz8Yb3Nc6Md1Pf4Gh0Js2Kv7Lx9Qa1Z"

pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX) and not os.environ.get("CI"),
    reason="nginx is not installed (apt-get install -y nginx)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Upstream(http.server.ThreadingHTTPServer):
    """Stands in for the web processes: answers 200 and keeps the X-Request-ID of each
    request, by path."""

    def __init__(self) -> None:
        self.request_ids: dict[str, str] = {}
        super().__init__(("127.0.0.1", 0), UpstreamHandler)


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.request_ids[self.path] = self.headers.get("X-Request-ID", "")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


def runnable(conf: str, folder: Path, https: int, plain: int, upstream: int) -> str:
    """deploy/nginx.conf with this machine's ports, a test certificate and `folder` for logs,
    in a configuration of its own (the shipped file goes in nginx's `http` block)."""
    replacements = [
        (r"/etc/letsencrypt/live/[^/]+/fullchain\.pem", str(folder / "cert.pem")),
        (r"/etc/letsencrypt/live/[^/]+/privkey\.pem", str(folder / "key.pem")),
        (r"/var/log/nginx/", f"{folder}/"),
        (r"(?m)^    server 10\.0\.0\.11:8000.*\n    server 10\.0\.0\.12:8000.*$", ""),
        (r"upstream smshub_web \{", f"upstream smshub_web {{\n    server 127.0.0.1:{upstream};"),
        (r"(?m)^\s*listen \[::\].*\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{plain};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl;"),
    ]
    for pattern, replacement in replacements:
        conf, count = re.subn(pattern, replacement, conf)
        assert count, f"deploy/nginx.conf no longer has {pattern!r}: update this test"
    return (
        f"pid {folder}/nginx.pid;\nerror_log {folder}/main-error.log;\nevents {{}}\n"
        f"http {{\n client_body_temp_path {folder}/body;\n proxy_temp_path {folder}/proxy;\n"
        f"{conf}\n}}\n"
    )


@pytest.fixture
def proxy(tmp_path):
    """nginx on the shipped configuration in front of an `Upstream`; yields (https port, plain
    port, upstream, log folder)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=sms.example.org", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    upstream = Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    https, plain = free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(runnable(CONF.read_text(), tmp_path, https, plain, upstream.server_port))
    started = subprocess.run(
        [NGINX, "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield https, plain, upstream, tmp_path
    finally:
        subprocess.run([NGINX, "-c", str(conf), "-p", str(tmp_path), "-s", "stop"], check=False)
        upstream.shutdown()
        upstream.server_close()


def request(port: int, method: str, path: str, *, tls: bool = True, **headers: str) -> int:
    if tls:
        context = ssl._create_unverified_context()  # noqa: S323 (the test's own certificate)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = b'{"id": "abc", "status": "delivered"}' if method == "POST" else None
    conn.request(method, path, body=body, headers={"Host": "sms.example.org", **headers})
    status = conn.getresponse().status
    conn.close()
    return status


def access_lines(folder: Path, count: int) -> list[str]:
    """The hub's access log lines, once `count` are written."""
    log = folder / "smshub.access.log"
    for _ in range(100):
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{count} access log lines expected, found {lines}")


def test_nginx_logs_keep_no_token_number_or_key_and_carry_the_hubs_request_id(proxy):
    https, plain, upstream, folder = proxy
    hook = f"/hooks/vortext/{TOKEN}/dlr/"
    sent = [
        ("POST", f"{hook}?to={NUMBER}&api_key={API_KEY}", {}),
        ("GET", f"/inbox/{NUMBER}/reply/", {"Referer": f"https://sms.example.org/inbox/{NUMBER}/"}),
        ("GET", f"/api/v1/messages?api_key={API_KEY}&to={NUMBER}", {}),
        ("GET", "/hooks/vortext/short/dlr/", {}),
    ]
    for method, path, headers in sent:
        assert request(https, method, path, **headers) == 200
    # The port-80 server answers with a redirect, and logs as the other.
    assert request(plain, "GET", hook, tls=False) == 301
    lines = access_lines(folder, 5)
    text = "\n".join(lines)
    for secret in (TOKEN, "33612345678", API_KEY, "api_key", "?"):
        assert secret not in text, f"{secret!r} in nginx's access log:\n{text}"
    paths = [re.search(r'"(?:GET|POST) (\S+) HTTP', line).group(1) for line in lines]
    assert paths == [
        "/hooks/vortext/***WXyz/dlr/",  # the token to its last four, as the hub's log has it
        "/inbox/***5678/reply/",
        "/api/v1/messages",
        "/hooks/vortext/***/dlr/",  # too short to show any of it
        "/hooks/vortext/***WXyz/dlr/",
    ]
    # Each proxied line ends with the id the hub received in X-Request-ID, after its status.
    for line, (_, path, _) in zip(lines, sent, strict=False):
        assert line.split()[-1] == upstream.request_ids[path], line
        assert " 200 " in line
    assert not (folder / "smshub.error.log").read_text()


def test_a_failed_upstream_shows_in_the_access_log_and_nothing_reaches_the_error_log(proxy):
    https, _, upstream, folder = proxy
    upstream.shutdown()
    upstream.server_close()  # the web processes are down: nginx answers 502
    hook = f"/hooks/vortext/{TOKEN}/dlr/"
    assert request(https, "POST", hook) == 502
    (line,) = access_lines(folder, 1)
    assert 'POST /hooks/vortext/***WXyz/dlr/ HTTP/1.1" 502 ' in line, line
    assert TOKEN not in line
    # nginx reports the refused connection as an error with the request line, token included:
    # its error log takes critical errors only.
    errors = (folder / "smshub.error.log").read_text()
    assert TOKEN not in errors and "connect() failed" not in errors, errors
