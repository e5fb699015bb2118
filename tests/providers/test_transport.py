"""The asynchronous transport makes exactly the call `requests` makes, for every provider, and
reads the answer the same way: only the wire differs."""

import asyncio

import pytest

from providers import http
from providers.exceptions import ProviderAccountError, ProviderTemporaryError
from providers.transport import transport

from .test_simulator_fakes import ADAPTERS, HUB_SMS, adapter, configure

# What the two clients may say differently of themselves; everything else must be the same.
CLIENT_HEADERS = {"accept", "accept-encoding", "connection", "host", "content-length"}


def through_transport(provider, sms):
    async def send():
        return provider.read_send(await transport().fetch(provider.prepare(sms)), sms)

    return transport().submit(send()).result(timeout=20)


def calls(sim, since):
    return [e for e in sim.requests_log[since:] if e.get("kind") == "request"]


def comparable(entry):
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    return (
        entry["method"],
        entry["path"],
        entry["body"],
        {k: v for k, v in headers.items() if k not in CLIENT_HEADERS},
        entry["status"],
    )


@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_a_send_on_the_transport_is_the_send_requests_makes(sim, slug):
    provider = adapter(sim, slug)
    before = len(sim.requests_log)
    by_requests = provider.send(HUB_SMS)
    middle = len(sim.requests_log)
    by_transport = through_transport(provider, HUB_SMS)
    [first], [second] = calls(sim, before)[: middle - before], calls(sim, middle)
    assert comparable(second) == comparable(first)
    assert type(by_transport) is type(by_requests)
    assert by_transport.status == by_requests.status
    if by_requests.provider_message_id:  # Expertflow's answer carries none
        assert by_transport.provider_message_id != by_requests.provider_message_id


@pytest.mark.parametrize("slug", list(ADAPTERS))
def test_a_refusal_reads_the_same_on_the_transport(sim, slug):
    _, _, other = ADAPTERS[slug]
    assert configure(sim, credentials={slug: other}).ok  # the hub's credentials refused
    provider = adapter(sim, slug)
    with pytest.raises(ProviderAccountError) as by_requests:
        provider.send(HUB_SMS)
    with pytest.raises(ProviderAccountError) as by_transport:
        through_transport(provider, HUB_SMS)
    assert by_transport.value.message == by_requests.value.message


def test_an_unreachable_provider_is_a_temporary_error(sim):
    provider = adapter(sim, "simulator")
    provider.base_url = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(ProviderTemporaryError, match=r"could not reach 127\.0\.0\.1:9"):
        through_transport(provider, HUB_SMS)


@pytest.fixture
def fresh_environment(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    http._environment.cache_clear()
    yield monkeypatch
    http._environment.cache_clear()


def test_a_proxy_from_the_environment_is_used(sim, fresh_environment):
    fresh_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    provider = adapter(sim, "simulator")
    before = len(sim.requests_log)
    with pytest.raises(ProviderTemporaryError) as raised:
        through_transport(provider, HUB_SMS)
    assert raised.value.code == "network"  # it went to the (closed) proxy
    assert not calls(sim, before)  # and never to the provider


def test_no_proxy_from_the_environment_is_honoured(sim, fresh_environment):
    fresh_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    fresh_environment.setenv("NO_PROXY", "127.0.0.1")
    provider = adapter(sim, "simulator")
    assert through_transport(provider, HUB_SMS).provider_message_id


def test_hundreds_of_calls_are_in_flight_at_once(sim):
    """200 calls answered after 200 ms each take a fraction of the 40 s they would one by one."""
    assert configure(sim, faults={"simulator": {"latency_ms": 200}}).ok
    provider = adapter(sim, "simulator")

    async def send_all():
        async def one():
            return provider.read_send(await transport().fetch(provider.prepare(HUB_SMS)), HUB_SMS)

        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(one() for _ in range(200)))
        return results, asyncio.get_running_loop().time() - started

    results, seconds = transport().submit(send_all()).result(timeout=60)
    assert len({r.provider_message_id for r in results}) == 200
    assert seconds < 10  # one after the other: 40 s
