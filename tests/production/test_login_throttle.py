"""Login lock-outs on /login/ and /admin/login/, and addresses refused after invalid API keys.

Through the real login views and the configured cache (the database cache, or Redis). Each test
uses user names and addresses of its own, forgotten at the end, so that runs sharing a Redis
never count each other's attempts.
"""

import logging
import re
import secrets
import time

import pytest
from django.core.management import call_command
from django.test import RequestFactory

from smshub.lockout import apikeys, locks
from smshub.lockout.addresses import (
    REMEMBERED_CHAIN,
    _remembered_address,
    client_address,
    normalize,
)
from smshub.lockout.models import LoginLock

from ..factories import ApiKeyFactory, UserFactory

PASSWORD = "a-long-test-password"
WRONG = "wrong-password-123"
USER_LOCKED = (
    "Too many failed attempts for this user name: try again in 15 minutes, or ask an "
    "administrator to unlock it."
)
ADDRESS_LOCKED = (
    "Too many failed attempts from this address: try again in 15 minutes, or ask an "
    "administrator to unlock it."
)
WRONG_PASSWORD = "correct username and password"  # Django's words, on both pages
LOGIN_PAGES = ["/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def limits(settings):
    """The documented defaults, whatever the environment sets."""
    settings.SMSHUB_LOGIN_USER_FAILURES = 5
    settings.SMSHUB_LOGIN_ADDRESS_FAILURES = 20
    settings.SMSHUB_LOGIN_WINDOW = 900
    settings.SMSHUB_LOGIN_LOCK = 900
    settings.SMSHUB_API_KEY_FAILURES = 20
    settings.SMSHUB_TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    settings.SECURE_SSL_REDIRECT = False
    return settings


@pytest.fixture
def fresh():
    """Makes user names and addresses no other test (or run) has used; forgets their counts."""
    made: list[tuple[str, str]] = []

    class Fresh:
        def name(self) -> str:
            name = f"user-{secrets.token_hex(4)}"
            made.append((LoginLock.Scope.USERNAME, name))
            return name

        def address(self) -> str:
            """An IPv6 address ending in ::7, in a /64 of its own."""
            address = (
                f"2001:db8:{secrets.randbelow(0xFFFF) + 1:x}:{secrets.randbelow(0xFFFF) + 1:x}::7"
            )
            made.append((LoginLock.Scope.ADDRESS, normalize(address)))
            return address

        def ipv4(self) -> str:
            address = ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))
            made.append((LoginLock.Scope.ADDRESS, f"10.{address}"))
            return f"10.{address}"

    yield Fresh()
    for scope, value in made:
        locks.forget(scope, value)
        if scope == LoginLock.Scope.ADDRESS:
            apikeys.forget(value)


def log_in(client, page, username, password, address, **headers):
    return client.post(
        page, {"username": username, "password": password}, REMOTE_ADDR=address, headers=headers
    )


def error(response) -> str:
    """The form's error as the page shows it (the login page's alert, admin's errornote)."""
    assert response.status_code == 200
    found = re.search(r'(?:role="alert"|class="errornote")>\s*(.*?)\s*</p>', response.text, re.S)
    assert found, response.text
    return found.group(1)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_five_wrong_passwords_lock_the_user_name_even_for_the_right_one(client, db, fresh, page):
    user = UserFactory(username=fresh.name(), is_staff=True)
    address = fresh.address()
    for _ in range(4):
        assert WRONG_PASSWORD in error(log_in(client, page, user.username, WRONG, address))
    assert error(log_in(client, page, user.username, WRONG, address)) == USER_LOCKED

    assert error(log_in(client, page, user.username, PASSWORD, address)) == USER_LOCKED
    assert not logged_in(client)
    # From elsewhere too: it is the user name that is locked.
    assert error(log_in(client, page, user.username, PASSWORD, fresh.address())) == USER_LOCKED
    # Case makes no other user name.
    assert error(log_in(client, page, user.username.upper(), PASSWORD, address)) == USER_LOCKED


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_an_unknown_user_name_gets_exactly_the_same_answers(client, db, fresh, page):
    user = UserFactory(username=fresh.name(), is_staff=True)
    unknown = fresh.name()

    def answers(username: str) -> list[str]:
        address = fresh.address()
        tries = [WRONG] * 5 + [PASSWORD]
        return [error(log_in(client, page, username, p, address)) for p in tries]

    assert answers(user.username) == answers(unknown)
    assert answers(unknown)[-1] == USER_LOCKED


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_twenty_failures_from_one_address_lock_it_for_every_user_name(client, db, fresh, page):
    user = UserFactory(username=fresh.name(), is_staff=True)
    address = fresh.ipv4()
    for _ in range(19):
        assert WRONG_PASSWORD in error(log_in(client, page, fresh.name(), WRONG, address))
    assert error(log_in(client, page, fresh.name(), WRONG, address)) == ADDRESS_LOCKED

    assert error(log_in(client, page, user.username, PASSWORD, address)) == ADDRESS_LOCKED
    assert not logged_in(client)
    assert log_in(client, page, user.username, PASSWORD, fresh.ipv4()).status_code == 302
    assert logged_in(client)


def test_an_ipv6_client_is_counted_per_64(client, db, fresh):
    address = fresh.address()
    prefix = address.removesuffix("::7")
    for host in range(20):
        log_in(client, "/login/", fresh.name(), WRONG, f"{prefix}::{host + 100:x}")
    answer = log_in(client, "/login/", fresh.name(), PASSWORD, f"{prefix}:1:2:3:4")
    assert error(answer) == ADDRESS_LOCKED


def test_a_client_cannot_dodge_the_address_limit_with_x_forwarded_for(client, db, fresh):
    address = fresh.ipv4()
    for attempt in range(20):  # straight to the hub: its X-Forwarded-For is not believed
        spoofed = {"X-Forwarded-For": f"192.0.2.{attempt + 1}"}
        log_in(client, "/login/", fresh.name(), WRONG, address, **spoofed)
    spoofed = {"X-Forwarded-For": "192.0.2.200"}
    answer = log_in(client, "/login/", fresh.name(), PASSWORD, address, **spoofed)
    assert error(answer) == ADDRESS_LOCKED


def test_behind_the_proxy_the_address_it_adds_is_the_one_counted(client, db, fresh):
    user = UserFactory(username=fresh.name())
    client_address, neighbour = fresh.ipv4(), fresh.ipv4()
    for attempt in range(20):  # what the client wrote comes first; the proxy appends what it saw
        forwarded = {"X-Forwarded-For": f"192.0.2.{attempt + 1}, {client_address}"}
        log_in(client, "/login/", fresh.name(), WRONG, "127.0.0.1", **forwarded)
    forwarded = {"X-Forwarded-For": f"192.0.2.250, {client_address}"}
    answer = log_in(client, "/login/", user.username, PASSWORD, "127.0.0.1", **forwarded)
    assert error(answer) == ADDRESS_LOCKED
    # Another client behind the same proxy is not locked out.
    forwarded = {"X-Forwarded-For": neighbour}
    answer = log_in(client, "/login/", user.username, PASSWORD, "127.0.0.1", **forwarded)
    assert answer.status_code == 302 and logged_in(client)


def test_logging_in_starts_the_user_names_count_again(client, db, fresh):
    user = UserFactory(username=fresh.name())
    address = fresh.address()
    for _ in range(4):
        log_in(client, "/login/", user.username, WRONG, address)
    assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302
    client.logout()
    for _ in range(4):
        assert WRONG_PASSWORD in error(log_in(client, "/login/", user.username, WRONG, address))
    assert error(log_in(client, "/login/", user.username, WRONG, address)) == USER_LOCKED


def test_successful_logins_do_not_count_against_their_address(client, db, fresh):
    users = [UserFactory(username=fresh.name()) for _ in range(3)]
    address = fresh.ipv4()
    for _ in range(10):  # an office behind one address: 30 logins and 19 typos
        for user in users:
            assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302
            client.logout()
    for _ in range(19):
        assert WRONG_PASSWORD in error(log_in(client, "/login/", fresh.name(), WRONG, address))
    assert log_in(client, "/login/", users[0].username, PASSWORD, address).status_code == 302
    client.logout()
    assert error(log_in(client, "/login/", fresh.name(), WRONG, address)) == ADDRESS_LOCKED


def test_the_lock_ends_by_itself(client, db, fresh, settings):
    settings.SMSHUB_LOGIN_LOCK = 1
    user = UserFactory(username=fresh.name())
    address = fresh.address()
    for _ in range(5):
        log_in(client, "/login/", user.username, WRONG, address)
    answer = log_in(client, "/login/", user.username, PASSWORD, address)
    assert "try again in 1 minute," in error(answer)
    time.sleep(1.1)
    assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302


def test_an_administrator_lists_and_unlocks_in_admin(client, db, fresh):
    user = UserFactory(username=fresh.name())
    address = fresh.ipv4()
    for _ in range(5):
        log_in(client, "/login/", user.username, WRONG, address)
    for _ in range(15):
        log_in(client, "/login/", fresh.name(), WRONG, address)
    assert error(log_in(client, "/login/", user.username, PASSWORD, address)) == ADDRESS_LOCKED

    admin = UserFactory(username=fresh.name(), is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get("/admin/lockout/loginlock/?locked=yes")
    assert page.status_code == 200
    assert user.username in page.text and address in page.text
    assert WRONG not in page.text
    held = LoginLock.objects.filter(value__in=[user.username, address])
    assert held.count() == 2
    answer = client.post(
        "/admin/lockout/loginlock/",
        {"action": "unlock", "_selected_action": [lock.pk for lock in held]},
        follow=True,
    )
    assert "Unlocked 2 user names or addresses" in answer.text
    client.logout()

    assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302
    assert LoginLock.objects.filter(value=user.username).exists()  # kept as the record


def test_unlock_login_lists_and_unlocks(client, db, fresh, capsys):
    user = UserFactory(username=fresh.name())
    address = fresh.address()
    for _ in range(5):
        log_in(client, "/login/", user.username, WRONG, address)

    call_command("unlock_login")
    listed = capsys.readouterr().out
    assert f"user name\t{user.username}\tuntil " in listed
    assert "5 failed attempts" in listed

    call_command("unlock_login", user.username.upper())
    assert f"user name {user.username}: unlocked." in capsys.readouterr().out
    assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302
    call_command("unlock_login")
    assert "Nothing is locked." in capsys.readouterr().out


def test_unlock_login_unlocks_an_address(client, db, fresh, capsys):
    user = UserFactory(username=fresh.name())
    address = fresh.address()
    for _ in range(20):
        log_in(client, "/login/", fresh.name(), WRONG, address)
    call_command("unlock_login", "--address", address)
    assert f"address {normalize(address)}: unlocked." in capsys.readouterr().out
    assert log_in(client, "/login/", user.username, PASSWORD, address).status_code == 302


def test_a_lock_out_is_logged_without_the_password(client, db, fresh, caplog):
    user = UserFactory(username=fresh.name())
    address = fresh.ipv4()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            log_in(client, "/login/", user.username, WRONG, address)
    [record] = [r for r in caplog.records if r.name == "smshub.lockout.locks"]
    assert record.levelname == "WARNING"
    assert user.username in record.getMessage() and address in record.getMessage()
    assert "5 failed attempts" in record.getMessage()
    assert WRONG not in caplog.text and PASSWORD not in caplog.text


def test_an_address_sending_invalid_api_keys_gets_429_even_with_a_valid_key(client, db, fresh):
    valid = ApiKeyFactory().secret
    address = fresh.ipv4()

    def call(header: dict[str, str], remote: str = address):
        return client.get("/api/v1/messages", headers=header, REMOTE_ADDR=remote)

    for attempt in range(19):
        assert call({"Authorization": f"Bearer smsh_guess{attempt:040d}"}).status_code == 401
    assert call({"X-API-Key": valid}).status_code == 200  # a few typos are only 401s
    assert call({"X-API-Key": "smsh_the-twentieth-guess"}).status_code == 401

    refused = call({"Authorization": f"Bearer {valid}"})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "invalid API keys from this address" in refused.json()["error"]["message"]
    assert call({"Authorization": f"Bearer {valid}"}, remote=fresh.ipv4()).status_code == 200
    call_command("unlock_login", "--address", address)  # an administrator lets it back in
    assert call({"Authorization": f"Bearer {valid}"}).status_code == 200


def _asking(remote: str, forwarded: str = ""):
    return RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)


@pytest.mark.parametrize(
    "remote, forwarded, counted",
    [
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.4, 203.0.113.7", "203.0.113.7"),  # the proxy's own entry
        ("203.0.113.9", "198.51.100.4", "203.0.113.9"),  # not a proxy: its header is not read
        ("::1", "2001:db8:1:2::7", "2001:db8:1:2::/64"),
        ("127.0.0.1", "not an address, 203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "203.0.113.7, not an address", "127.0.0.1"),
        ("", "", "unknown"),
    ],
)
def test_the_address_counted_is_the_same_asked_again(remote, forwarded, counted):
    assert client_address(_asking(remote, forwarded)) == counted
    assert client_address(_asking(remote, forwarded)) == counted  # remembered by now


def test_a_change_of_trusted_proxies_counts_at_once(settings):
    asking = _asking("10.0.0.5", "203.0.113.7")
    assert client_address(asking) == "10.0.0.5"
    settings.SMSHUB_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(asking) == "203.0.113.7"


def test_a_long_forwarded_chain_is_read_the_same_and_not_remembered():
    chain = ", ".join(["198.51.100.4"] * 40 + ["203.0.113.7"])
    assert len(chain) > REMEMBERED_CHAIN
    kept = _remembered_address.cache_info().currsize
    assert client_address(_asking("127.0.0.1", chain)) == "203.0.113.7"
    assert _remembered_address.cache_info().currsize == kept
