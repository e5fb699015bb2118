"""providers/http.py: the environment's proxy settings apply to provider calls, read once."""

import pytest

from providers import http
from providers.exceptions import ProviderRejected, ProviderTemporaryError

CLOSED_PORT_PROXY = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    http._environment.cache_clear()
    yield
    http._environment.cache_clear()


def test_a_call_without_a_proxy_reaches_the_provider(simulator):
    with pytest.raises(ProviderRejected):  # the simulator answered: 404 for an unknown path
        http.request("GET", f"{simulator.url}/no-such-path")


def test_a_proxy_from_the_environment_is_used(simulator, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", CLOSED_PORT_PROXY)
    with pytest.raises(ProviderTemporaryError) as raised:
        http.request("GET", f"{simulator.url}/no-such-path")
    assert raised.value.code == "network"  # it went to the (closed) proxy, not the simulator


def test_no_proxy_from_the_environment_is_honoured(simulator, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", CLOSED_PORT_PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(ProviderRejected):
        http.request("GET", f"{simulator.url}/no-such-path")
