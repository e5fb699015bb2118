"""Shared fixtures: the simulator on a loopback port, accounts, logged-in staff, a Celery worker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from campaigns.models import Membership, Message
from providers.simulator.server import SimulatorServer

from .factories import AccountFactory, MembershipFactory, ProviderAccountFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def simulator():
    """The provider simulator, serving on an ephemeral loopback port for the whole session."""
    server = SimulatorServer(api_key="simulator-key", dlr_delay=0.2)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def provider_account(db, simulator):
    return ProviderAccountFactory(name="Simulator", base_url=simulator.url)


@pytest.fixture
def account(provider_account):
    return AccountFactory(name="Acme", route=[provider_account])


@pytest.fixture
def operator(account):
    return MembershipFactory(account=account, role=Membership.Role.OPERATOR).user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def other_account_user(db):
    """Someone who works in another account entirely."""
    return MembershipFactory(account=AccountFactory(name="Other Ltd"), user=UserFactory()).user


def database_url_for_subprocess() -> str:
    """The URL of the database the tests run on, for processes started by the tests."""
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, live_server):
    """A real Celery worker in its own process, on the test database and the configured broker."""
    from django.conf import settings

    from campaigns.services import wake
    from smshub.celery import app

    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
        app.control.purge()
        # Tasks published by earlier tests are gone with the purge: so are their slots.
        for slot in range(settings.SMSHUB_DISPATCHERS):
            wake.release_slot(slot)
    OUTPUT.mkdir(exist_ok=True)
    log_path = OUTPUT / "celery-worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "SMSHUB_TEST_PUBLIC_BASE_URL": live_server.url,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smshub",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(autouse=True)
def _no_dispatch_slots_of_other_tests(request, django_db_blocker):
    """A test with the live worker starts with every dispatch slot free: a slot held by a task
    an earlier test published (against rows since rolled back) would keep this test's
    messages waiting for the sweep, which no beat runs here."""
    if "celery_worker" not in request.fixturenames:
        return
    from django.conf import settings

    from campaigns.services import wake

    with django_db_blocker.unblock():
        for slot in range(settings.SMSHUB_DISPATCHERS):
            wake.release_slot(slot)


@pytest.fixture
def dispatch_by_hand(django_db_blocker):
    """The test dispatches itself (`dispatch_batch`): every dispatch slot is held as if a task
    were awake, so no message it queues wakes the session's live worker (started by an earlier
    test) to send it first."""
    from django.conf import settings

    from campaigns.services import wake

    slots = range(settings.SMSHUB_DISPATCHERS)
    with django_db_blocker.unblock():
        for slot in slots:
            wake.hold_slot(slot)
    wake.forget()
    yield
    with django_db_blocker.unblock():
        for slot in slots:
            wake.release_slot(slot)


@pytest.fixture(autouse=True)
def _fresh_dispatch_state():
    """What a dispatching process keeps between claims (accounts held for a moment, blocked
    routes) belongs to the test that made it: ids are reused once a test's rows are gone."""
    from campaigns.api import keys
    from campaigns.services import dispatch, wake

    dispatch.forget_state()
    wake.forget()
    keys.forget()  # ids are reused once a test's rows are gone
    yield
    dispatch.forget_state()


@pytest.fixture
def database_refusing_bad(db):
    """The database refuses to write the provider id "bad" on a message: a row that cannot be
    recorded, or a report that cannot be applied, whatever the cause."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_bad() RETURNS trigger AS $$ BEGIN "
                "IF NEW.provider_message_id = 'bad' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_bad BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_bad BEFORE UPDATE ON {table} "
                "WHEN NEW.provider_message_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def claim(limit: int) -> list:
    """Claim as a worker does: the messages taken, now `sending`."""
    from campaigns.services.dispatch import claim_batch

    return claim_batch(limit).messages


def dispatch_batch(limit: int | None = None) -> int:
    """One batch as a worker's loop handles it, step after step: claimed, sent, recorded.
    Returns how many messages were claimed."""
    from django.conf import settings

    from campaigns.services.dispatch import claim_batch, finish_sending, record_batch, start_sending

    taken = claim_batch(limit or settings.SMSHUB_DISPATCH_BATCH_SIZE)
    record_batch(taken.messages, finish_sending(start_sending(taken)))
    return len(taken.messages)


def apply_webhooks() -> int:
    """Do what a worker does after a webhook answered: apply the stored requests."""
    from campaigns.services.webhook_log import apply_received

    return apply_received()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll until `predicate()` is truthy (and return it) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def pytest_sessionfinish(session, exitstatus):
    """The run's broker folder goes with the run (see tests/settings.py)."""
    import shutil

    folder = os.environ.get("CELERY_FILESYSTEM_DIR", "")
    if folder.endswith(f"test-broker-{os.getpid()}"):
        shutil.rmtree(folder, ignore_errors=True)
