"""The provider simulator server, over real loopback HTTP (no Django needed)."""

import json
import logging
import re
import socket
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from providers.simulator.server import SimResponse, SimulatorServer

API_KEY = "test-api-key-7f3c9b2e"
WRONG_KEY = "wrong-key-0123456789"
GOOD = {"Authorization": f"Bearer {API_KEY}"}


def wait_for(predicate, timeout=5.0, interval=0.02):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


class CallbackReceiver:
    """A tiny stand-in for the hub's delivery report webhook: records the JSON bodies POSTed."""

    def __init__(self):
        self.bodies = []
        self.failures_left = 0  # answer 500 to this many calls first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    failing = receiver.failures_left > 0
                    if failing:
                        receiver.failures_left -= 1
                    else:
                        receiver.bodies.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks/simulator"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def received(self, reference):
        with self.lock:
            return [body for body in self.bodies if body.get("reference") == reference]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def simulator():
    sim = SimulatorServer(api_key=API_KEY, dlr_delay=0.1)
    sim.callback_retry_pause = 0.05
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def receiver():
    rec = CallbackReceiver()
    yield rec
    rec.close()


def send(sim, payload=None, headers=GOOD, **kwargs):
    return requests.post(
        f"{sim.url}/simulator/messages", json=payload, headers=headers, timeout=5, **kwargs
    )


def message(reference, callback_url=None, to="+33612345678"):
    payload = {"to": to, "text": "Hello from the tests", "from": "SMSHub", "reference": reference}
    if callback_url:
        payload["callback_url"] = callback_url
    return payload


def test_url_reports_the_bound_port(simulator):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", simulator.url)
    assert simulator.port != 0


def test_send_is_accepted_then_delivered(simulator, receiver):
    response = send(simulator, message("msg-1", receiver.url))

    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"sim-[0-9a-f]{32}", body["id"])
    assert body["status"] == "accepted"

    [report] = wait_for(lambda: receiver.received("msg-1"))
    assert set(report) == {"id", "status", "timestamp", "reference", "error_code"}
    assert report["id"] == body["id"]
    assert report["status"] == "delivered"
    assert report["reference"] == "msg-1"
    assert report["error_code"] == ""
    assert datetime.fromisoformat(report["timestamp"]).utcoffset() == timedelta(0)


def test_sender_and_reference_are_optional(simulator, receiver):
    response = send(simulator, {"to": "+447700900123", "text": "hi", "from": ""})
    assert response.status_code == 201
    response = send(
        simulator,
        {"to": "+447700900123", "text": "hi", "reference": None, "callback_url": receiver.url},
    )
    assert response.status_code == 201
    [report] = wait_for(lambda: receiver.received(None))
    assert report["id"] == response.json()["id"]


def test_number_ending_in_0000_is_undelivered(simulator, receiver):
    response = send(simulator, message("msg-0000", receiver.url, to="+33612340000"))
    assert response.status_code == 201

    [report] = wait_for(lambda: receiver.received("msg-0000"))
    assert report["id"] == response.json()["id"]
    assert report["status"] == "undelivered"
    assert report["error_code"] == "UNREACHABLE"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {},
        {"Authorization": API_KEY},
        {"Authorization": f"Basic {API_KEY}"},
    ],
    ids=["wrong-token", "no-header", "no-scheme", "basic-scheme"],
)
def test_bad_credentials_are_refused_and_never_called_back(simulator, receiver, headers):
    response = send(simulator, message("refused", receiver.url), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid api key"}

    # A good message sent afterwards is called back; the refused one, sent first, never is.
    assert send(simulator, message("after", receiver.url)).status_code == 201
    wait_for(lambda: receiver.received("after"))
    wait_for(lambda: simulator.pending_callbacks == 0)
    assert receiver.received("refused") == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("{not json", "JSON"),
        ('["+33612345678", "hi"]', "JSON object"),
        ({"text": "hi"}, "'to'"),
        ({"to": "0612345678", "text": "hi"}, "'to'"),
        ({"to": "+0612345678", "text": "hi"}, "'to'"),
        ({"to": "+33 6 12 34 56 78", "text": "hi"}, "'to'"),
        ({"to": "+3361234567812345", "text": "hi"}, "'to'"),
        ({"to": 33612345678, "text": "hi"}, "'to'"),
        ({"to": "+33612345678"}, "'text'"),
        ({"to": "+33612345678", "text": ""}, "'text'"),
        ({"to": "+33612345678", "text": "hi", "from": 12}, "'from'"),
        ({"to": "+33612345678", "text": "hi", "reference": 12}, "'reference'"),
        ({"to": "+33612345678", "text": "hi", "callback_url": "ftp://x/y"}, "'callback_url'"),
        ({"to": "+33612345678", "text": "hi", "callback_url": "/relative"}, "'callback_url'"),
    ],
)
def test_invalid_messages_get_400_naming_the_field(simulator, payload, field):
    if isinstance(payload, str):
        response = requests.post(
            f"{simulator.url}/simulator/messages",
            data=payload,
            headers={**GOOD, "Content-Type": "application/json"},
            timeout=5,
        )
    else:
        response = send(simulator, payload)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert field in response.json()["error"]
    assert simulator.pending_callbacks == 0


def test_health_checks_the_api_key(simulator):
    url = f"{simulator.url}/simulator/health"
    response = requests.get(url, headers=GOOD, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}

    for headers in ({"Authorization": f"Bearer {WRONG_KEY}"}, {}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid api key"}


def test_log_records_requests_and_callbacks_with_the_token_masked(simulator, receiver):
    payload = message("logged", receiver.url)
    sent = send(simulator, payload).json()
    send(simulator, message("refused"), headers={"Authorization": f"Bearer {WRONG_KEY}"})
    wait_for(lambda: receiver.received("logged"))

    def callback_logged():
        return [e for e in simulator.requests_log if e["kind"] == "callback"]

    wait_for(callback_logged)
    response = requests.get(f"{simulator.url}/simulator/log", timeout=5)  # no auth needed
    assert response.status_code == 200
    entries = response.json()

    first, refused = [e for e in entries if e["kind"] == "request"]
    [callback] = [e for e in entries if e["kind"] == "callback"]
    assert first["method"] == "POST"
    assert first["path"] == "/simulator/messages"
    assert first["status"] == 201
    assert first["body"] == payload
    assert first["headers"]["Authorization"] == f"Bearer ****{API_KEY[-4:]}"
    assert datetime.fromisoformat(first["at"]).utcoffset() == timedelta(0)
    assert refused["status"] == 401
    assert refused["headers"]["Authorization"] == f"Bearer ****{WRONG_KEY[-4:]}"
    assert callback["kind"] == "callback"
    assert callback["callback_url"] == receiver.url
    assert callback["body"]["id"] == sent["id"]
    assert callback["response_status"] == 200

    for secret in (API_KEY, WRONG_KEY):
        assert secret not in response.text
        assert secret not in json.dumps(simulator.requests_log)


def test_log_keeps_the_last_1000_entries(simulator):
    with requests.Session() as session:
        for i in range(1005):
            session.get(f"{simulator.url}/simulator/health?n={i}", headers=GOOD, timeout=5)
    entries = requests.get(f"{simulator.url}/simulator/log", timeout=5).json()
    assert len(entries) == 1000
    assert entries[0]["path"] == "/simulator/health?n=5"
    assert entries[-1]["path"] == "/simulator/health?n=1004"


def test_each_request_is_logged_on_one_line_with_the_token_masked(simulator, caplog):
    caplog.set_level(logging.INFO, logger="providers.simulator")
    send(simulator, message("caplog"))

    def request_lines():
        return [
            r.getMessage() for r in caplog.records if "POST /simulator/messages" in r.getMessage()
        ]

    [line] = wait_for(request_lines)
    assert "201" in line
    assert f"Bearer ****{API_KEY[-4:]}" in line
    assert "\n" not in line
    assert API_KEY not in caplog.text


def test_unknown_path_is_404_and_wrong_method_405(simulator):
    response = requests.get(f"{simulator.url}/nowhere", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    response = requests.post(f"{simulator.url}/simulator/nowhere", json={}, timeout=5)
    assert response.status_code == 404
    response = requests.get(f"{simulator.url}/simulator/messages", headers=GOOD, timeout=5)
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}


def test_a_failing_handler_answers_500_without_a_traceback(simulator, caplog):
    def boom(request):
        raise RuntimeError("secret internals")

    simulator.add_route("GET", "/boom", boom)
    with caplog.at_level(logging.ERROR, logger="providers.simulator"):
        response = requests.get(f"{simulator.url}/boom", timeout=5)

    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    wait_for(lambda: any(r.exc_info for r in caplog.records))
    # The server keeps serving.
    assert requests.get(f"{simulator.url}/simulator/health", headers=GOOD, timeout=5).ok


def test_routes_can_have_path_parameters(simulator):
    simulator.add_route(
        "POST", "/fake/{account}/messages", lambda r: SimResponse(202, {"account": r.params})
    )
    response = requests.post(f"{simulator.url}/fake/AC123/messages", timeout=5)
    assert response.status_code == 202
    assert response.json() == {"account": {"account": "AC123"}}


def test_failed_callbacks_are_retried(simulator, receiver):
    receiver.failures_left = 2
    send(simulator, message("retried", receiver.url))

    [report] = wait_for(lambda: receiver.received("retried"))
    assert report["status"] == "delivered"

    def attempts_until_success():  # the log entry is written once the receiver has answered
        attempts = [e for e in simulator.requests_log if e["kind"] == "callback"]
        return attempts if attempts and attempts[-1].get("response_status") == 200 else None

    attempts = wait_for(attempts_until_success)
    assert [e["response_status"] for e in attempts] == [500, 500, 200]
    assert [e["attempt"] for e in attempts] == [1, 2, 3]
    assert len({e["body"]["timestamp"] for e in attempts}) == 1  # the same report each time


def test_unreachable_callback_url_is_logged_and_does_not_break_the_server(simulator):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
    assert send(simulator, message("dead", dead_url)).status_code == 201

    def all_attempts():
        attempts = [e for e in simulator.requests_log if e["kind"] == "callback"]
        return attempts if len(attempts) == 4 else None

    attempts = wait_for(all_attempts)
    assert all("error" in e and "response_status" not in e for e in attempts)
    wait_for(lambda: simulator.pending_callbacks == 0)
    assert requests.get(f"{simulator.url}/simulator/health", headers=GOOD, timeout=5).ok


def test_stop_cancels_pending_callbacks_and_closes_connections(receiver):
    sim = SimulatorServer(api_key=API_KEY, dlr_delay=30)
    sim.start()
    session = requests.Session()  # keeps its connection alive
    try:
        response = session.post(
            f"{sim.url}/simulator/messages", json=message("never", receiver.url), headers=GOOD
        )
        assert response.status_code == 201
        wait_for(lambda: sim.pending_callbacks == 1)
    finally:
        started = time.monotonic()
        sim.stop()
    assert time.monotonic() - started < 3
    assert sim.pending_callbacks == 0
    assert receiver.received("never") == []
    sim.stop()  # a second stop is harmless
    with session, pytest.raises(requests.ConnectionError):
        session.get(f"{sim.url}/simulator/health", headers=GOOD, timeout=2)


# --- secrets in callback URLs: masked wherever the simulator shows or logs them -------------

HUB_TOKEN = "HubWebhookToken-0123456789abcdefXYZ9"  # the secret of a hub webhook URL
HUB_PASSWORD = "pa55word-of-the-hub"  # webhook basic auth, in the URL


def test_the_log_masks_webhook_tokens_and_credentials_of_callback_urls(simulator, receiver, caplog):
    caplog.set_level(logging.INFO, logger="providers.simulator")
    port = receiver.httpd.server_address[1]
    callback = f"http://hub:{HUB_PASSWORD}@127.0.0.1:{port}/hooks/simulator/{HUB_TOKEN}/dlr/"
    with socket.socket() as sock:  # a port nobody listens on: the attempts' errors are logged
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/simulator/{HUB_TOKEN}/inbound/"
    assert send(simulator, message("masked", callback)).status_code == 201
    assert send(simulator, message("dead", dead)).status_code == 201
    wait_for(lambda: receiver.received("masked"))

    def callbacks():
        entries = [e for e in simulator.requests_log if e["kind"] == "callback"]
        return entries if len(entries) == 5 else None  # one delivered, four failed attempts

    wait_for(callbacks)
    shown = requests.get(f"{simulator.url}/simulator/log", timeout=5)
    assert shown.status_code == 200
    for text in (shown.text, caplog.text):
        assert HUB_TOKEN not in text and HUB_PASSWORD not in text
    entries = shown.json()
    [sent] = [e for e in entries if e["kind"] == "request" and e["body"]["reference"] == "masked"]
    assert sent["body"]["callback_url"] == (
        f"http://hub:****@127.0.0.1:{port}/hooks/simulator/****XYZ9/dlr/"
    )
    delivered = [e for e in entries if e.get("response_status") == 200]
    assert delivered[0]["callback_url"] == sent["body"]["callback_url"]
    failed = [e for e in entries if "error" in e]
    assert len(failed) == 4
    assert all("/hooks/simulator/****XYZ9/inbound/" in e["callback_url"] for e in failed)
    assert "/hooks/simulator/****XYZ9/dlr/" in caplog.text


def test_config_and_its_log_mask_hub_url_credentials_and_secrets(simulator):
    hub_url = f"http://ef:{HUB_PASSWORD}@127.0.0.1:9/hooks/expertflow/{HUB_TOKEN}/dlr/"
    change = {
        "hub_urls": {"expertflow": {"dlr": hub_url}},
        "credentials": {"expertflow": {"username": "ef", "password": "expertflow-pass-42"}},
    }
    answer = requests.post(f"{simulator.url}/_simulator/config", json=change, timeout=5)
    assert answer.status_code == 200
    assert simulator.hub_url("expertflow", "dlr") == hub_url  # kept whole, to call the hub

    config = requests.get(f"{simulator.url}/_simulator/config", timeout=5)
    log = requests.get(f"{simulator.url}/simulator/log", timeout=5)
    for text in (answer.text, config.text, log.text):
        assert HUB_TOKEN not in text and HUB_PASSWORD not in text
        assert "expertflow-pass-42" not in text
    masked = "http://ef:****@127.0.0.1:9/hooks/expertflow/****XYZ9/dlr/"
    assert config.json()["hub_urls"]["expertflow"]["dlr"] == masked
    [posted] = [e for e in log.json() if e["path"] == "/_simulator/config"]
    assert posted["body"]["hub_urls"]["expertflow"]["dlr"] == masked
    assert posted["body"]["credentials"]["expertflow"] == {"username": "ef", "password": "****s-42"}
    # The URL as shown, sent back unchanged, keeps the real one.
    again = {"hub_urls": {"expertflow": {"dlr": masked}}}
    assert requests.post(f"{simulator.url}/_simulator/config", json=again, timeout=5).ok
    assert simulator.hub_url("expertflow", "dlr") == hub_url
