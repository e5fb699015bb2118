"""Fixtures of the provider tests: the simulator on a loopback port, calling back a stand-in
for the hub's webhooks."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from providers.simulator.server import SimulatorServer


class HubReceiver:
    """Stands in for the hub's webhooks: records every POST (path, content type, parsed body)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/x-www-form-urlencoded"):
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                else:
                    body = json.loads(raw)
                call = {
                    "path": self.path,
                    "content_type": content_type,
                    "authorization": self.headers.get("Authorization"),
                    "body": body,
                }
                with receiver.lock:
                    receiver.calls.append(call)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, slug, kind):
        return f"{self.base}/hooks/{slug}/token-{slug}-0123456789abcdef/{kind}/"

    def received(self, slug, kind):
        path = f"/hooks/{slug}/token-{slug}-0123456789abcdef/{kind}/"
        with self.lock:
            return [call for call in self.calls if call["path"] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub():
    receiver = HubReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sim(hub):
    server = SimulatorServer(
        dlr_delay=0.05,
        seed=1,
        hub_urls={
            "vortext": {"inbound": hub.url("vortext", "inbound")},
            "expertflow": {
                "dlr": hub.url("expertflow", "dlr"),
                "inbound": hub.url("expertflow", "inbound"),
            },
            "simulator": {"inbound": hub.url("simulator", "inbound")},
        },
    )
    server.callback_retry_pause = 0.05
    server.start()
    yield server
    server.stop()
