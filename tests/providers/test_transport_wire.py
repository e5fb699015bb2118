"""The transport's own HTTP/1.1 on real sockets: answers framed every way a server may frame
them, kept-alive connections (and the ones a server closed), timeouts, TLS with the CA bundle the
environment names, and proxies (a plain forward and a CONNECT tunnel).

The servers here answer with the exact bytes each test gives; the proxy is a real one."""

import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import time
import zlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers import http
from providers.base import ProviderRequest
from providers.exceptions import ProviderAccountError, ProviderTemporaryError
from providers.simulator.adapter import SimulatorProvider
from providers.transport import transport

from .test_simulator_fakes import HUB_SMS

JSON = b'{"id": "m-1", "status": "accepted"}'


def fetch(url, **kwargs):
    call = ProviderRequest("POST", url, json={"to": "+33612345678", "text": "Hi"}, **kwargs)
    return transport().submit(transport().fetch(call)).result(timeout=20)


def read_request(conn):
    """One request off `conn` (head and Content-Length body), or None when it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class Scripted:
    """A server answering each request with what `answer(request, index)` returns (bytes), then
    closing the connection when `close(index)` says so; it counts connections and requests."""

    def __init__(self, answer, close=lambda index: False, context=None):
        self.answer, self.close, self.context = answer, close, context
        self.connections, self.requests = 0, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            while (request := read_request(conn)) is not None:
                index = len(self.requests)
                self.requests.append(request)
                answer = self.answer(request, index)
                if answer:
                    conn.sendall(answer)
                if self.close(index):
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(answer, **kwargs):
        server = Scripted(answer, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def ok(body=JSON, *headers):
    head = [b"HTTP/1.1 200 OK", b"Content-Type: application/json", *headers]
    if not any(h.lower().startswith((b"transfer-encoding", b"content-length")) for h in headers):
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_an_answer_in_chunks_is_read_whole(serve):
    chunked = (
        b"7\r\n" + JSON[:7] + b"\r\n" + b"%x\r\n" % (len(JSON) - 7) + JSON[7:] + b"\r\n0\r\n\r\n"
    )
    server = serve(lambda request, i: ok(chunked, b"Transfer-Encoding: chunked"))
    assert fetch(f"http://127.0.0.1:{server.port}/send").json()["id"] == "m-1"


def test_an_answer_without_a_length_ends_with_the_connection(serve):
    server = serve(lambda r, i: b"HTTP/1.0 200 OK\r\n\r\n" + JSON, close=lambda i: True)
    for _ in range(2):  # and the closed connection is not used again
        assert fetch(f"http://127.0.0.1:{server.port}/send").content == JSON
    assert server.connections == 2


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda body: zlib.compress(body)[2:-4]),  # raw deflate, as some servers send
    ],
)
def test_a_compressed_answer_is_decoded(serve, coding, compress):
    body = compress(JSON)
    server = serve(lambda r, i: ok(body, b"Content-Encoding: " + coding.encode()))
    response = fetch(f"http://127.0.0.1:{server.port}/send")
    assert response.json() == {"id": "m-1", "status": "accepted"}
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


def test_calls_to_one_origin_share_a_kept_alive_connection(serve):
    server = serve(lambda r, i: ok())
    for _ in range(5):
        assert fetch(f"http://127.0.0.1:{server.port}/send").status_code == 200
    assert (server.connections, len(server.requests)) == (1, 5)


def test_a_connection_the_server_closed_while_idle_is_not_used(serve):
    server = serve(lambda r, i: ok(), close=lambda i: True)  # closes without saying so
    assert fetch(f"http://127.0.0.1:{server.port}/send").status_code == 200
    time.sleep(0.2)
    assert fetch(f"http://127.0.0.1:{server.port}/send").status_code == 200
    assert server.connections == 2


def test_a_connection_idle_too_long_is_not_used(serve, monkeypatch):
    monkeypatch.setattr("providers.transport.KEEP_ALIVE_SECONDS", 0.1)
    server = serve(lambda r, i: ok())
    fetch(f"http://127.0.0.1:{server.port}/send")
    time.sleep(0.2)
    fetch(f"http://127.0.0.1:{server.port}/send")
    assert server.connections == 2


def test_an_answer_that_does_not_come_times_out(serve, settings):
    settings.SMSHUB_HTTP_TIMEOUT = (1.0, 0.5)
    server = serve(lambda r, i: ok() if i else None)  # the first request is never answered
    started = time.monotonic()
    with pytest.raises(ProviderTemporaryError, match=r"timed out calling 127\.0\.0\.1") as raised:
        fetch(f"http://127.0.0.1:{server.port}/send")
    assert raised.value.code == "timeout"
    assert 0.4 < time.monotonic() - started < 5
    # The late answer is not taken for the next call's: that one goes on a new connection.
    assert fetch(f"http://127.0.0.1:{server.port}/send").status_code == 200
    assert server.connections == 2


def test_an_answer_that_is_not_http_is_a_network_error(serve):
    server = serve(lambda r, i: b"SMTP ready\r\n\r\n" if i == 0 else ok())
    with pytest.raises(ProviderTemporaryError, match="could not reach") as raised:
        fetch(f"http://127.0.0.1:{server.port}/send")
    assert raised.value.code == "network"
    assert fetch(f"http://127.0.0.1:{server.port}/send").status_code == 200


def test_a_connection_cut_before_the_answer_is_a_network_error(serve):
    server = serve(lambda r, i: None, close=lambda i: True)
    with pytest.raises(ProviderTemporaryError, match="could not reach") as raised:
        fetch(f"http://127.0.0.1:{server.port}/send")
    assert raised.value.code == "network"


def test_the_request_is_written_as_requests_writes_it(serve):
    server = serve(lambda r, i: ok())
    fetch(
        f"http://user:p%40ss@127.0.0.1:{server.port}/a/b?x=1%2B2#part",
        headers={"X-Key": "k", "content-type": "application/json; charset=utf-8"},
    )
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1] for line in lines[1:]}
    assert lines[0] == "POST /a/b?x=1%2B2 HTTP/1.1"  # as written, quoted once, no fragment
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss, from the URL
    assert headers["content-type"] == "application/json; charset=utf-8"  # the adapter's
    assert body == b'{"to": "+33612345678", "text": "Hi"}'
    assert headers["content-length"] == str(len(body))


def test_a_redirect_is_not_followed_and_says_the_base_url_may_be_wrong(serve):
    moved = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://api.example/v2/\r\n"
    server = serve(lambda r, i: moved + b"Content-Length: 0\r\n\r\n")
    provider = SimulatorProvider(
        base_url=f"http://127.0.0.1:{server.port}", credentials={"api_key": "k"}
    )
    response = transport().submit(transport().fetch(provider.prepare(HUB_SMS))).result(timeout=20)
    with pytest.raises(ProviderAccountError, match=r"redirect.*https://api\.example/v2/"):
        provider.read_send(response, HUB_SMS)
    assert len(server.requests) == 1


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost, and its file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SMS Hub test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return folder / "cert.pem", context


@pytest.fixture
def environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    http._environment.cache_clear()
    yield monkeypatch
    http._environment.cache_clear()


def test_https_is_checked_against_the_ca_bundle_the_environment_names(
    serve, certificate, environment
):
    cert, context = certificate
    server = serve(lambda r, i: ok(), context=context)
    url = f"https://localhost:{server.port}/send"
    with pytest.raises(ProviderTemporaryError, match="could not reach localhost"):
        fetch(url)  # a certificate no public authority signed: refused
    environment.setenv("REQUESTS_CA_BUNDLE", str(cert))
    http._environment.cache_clear()
    assert fetch(url).json()["id"] == "m-1"
    assert fetch(url).status_code == 200
    assert server.connections == 2  # the refused handshake, then one kept alive


# --- proxies ------------------------------------------------------------------------------------


class Proxy:
    """A forward proxy: a plain request in absolute form is sent on to its origin, a CONNECT
    opens a tunnel. It keeps each request's head."""

    def __init__(self):
        self.heads = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://who:secret@127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            while (request := read_request(conn)) is not None:
                head = request.split(b"\r\n\r\n")[0].decode()
                self.heads.append(head)
                method, target, _ = head.split("\r\n")[0].split(" ")
                if method == "CONNECT":
                    host, port = target.rsplit(":", 1)
                    upstream = socket.create_connection((host, int(port)))
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self._pipe(conn, upstream)
                    return
                rest = target.split("://", 1)[1]
                hostport, path = rest.split("/", 1)
                host, port = hostport.rsplit(":", 1)
                with socket.create_connection((host, int(port))) as upstream:
                    upstream.sendall(request.replace(target.encode(), b"/" + path.encode(), 1))
                    answer = b""
                    while b"\r\n\r\n" not in answer:
                        answer += upstream.recv(65536)
                    conn.sendall(answer)

    @staticmethod
    def _pipe(a, b):
        def copy(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=copy, args=(b, a), daemon=True).start()
        copy(a, b)

    def stop(self):
        self.sock.close()


@pytest.fixture
def proxy():
    server = Proxy()
    yield server
    server.stop()


def test_a_plain_call_goes_through_the_proxy_in_absolute_form(serve, proxy, environment):
    environment.setenv("HTTP_PROXY", proxy.url)
    server = serve(lambda r, i: ok())
    assert fetch(f"http://127.0.0.1:{server.port}/send?x=1").json()["id"] == "m-1"
    first = proxy.heads[0].split("\r\n")
    assert first[0] == f"POST http://127.0.0.1:{server.port}/send?x=1 HTTP/1.1"
    assert "Proxy-Authorization: Basic d2hvOnNlY3JldA==" in first  # who:secret


def test_https_goes_through_the_proxys_tunnel(serve, proxy, certificate, environment):
    cert, context = certificate
    environment.setenv("HTTPS_PROXY", proxy.url)
    environment.setenv("REQUESTS_CA_BUNDLE", str(cert))
    server = serve(lambda r, i: ok(), context=context)
    for _ in range(2):
        assert fetch(f"https://localhost:{server.port}/send").json()["id"] == "m-1"
    [connect] = proxy.heads  # one tunnel, kept alive for the second call
    assert connect.split("\r\n")[0] == f"CONNECT localhost:{server.port} HTTP/1.1"
    assert "Proxy-Authorization: Basic d2hvOnNlY3JldA==" in connect.split("\r\n")
    assert len(server.requests) == 2


def test_a_tunnel_the_proxy_refuses_is_a_network_error(serve, environment):
    refusing = serve(lambda r, i: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    environment.setenv("HTTPS_PROXY", f"http://127.0.0.1:{refusing.port}")
    with pytest.raises(ProviderTemporaryError, match="could not reach localhost:1") as raised:
        fetch("https://localhost:1/send")
    assert raised.value.code == "network"
