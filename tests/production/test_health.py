"""/healthz and /readyz against real dependencies: a database, broker or cache pointed at a
port where nothing listens, and beat's heartbeat missing or old."""

import socket
import time

import pytest
from django.db import connections
from django.urls import reverse

from smshub import heartbeat


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connecting to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def database_down(django_db_blocker, closed_port, tmp_path):
    """The default connection pointed where no database is (a closed port on PostgreSQL, a
    file in a missing folder on SQLite) for the test, then put back."""
    connection = connections["default"]
    with django_db_blocker.unblock():
        connection.close()
        saved = dict(connection.settings_dict)
        if connection.vendor == "sqlite":
            connection.settings_dict["NAME"] = str(tmp_path / "missing" / "db.sqlite3")
        else:
            connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


@pytest.fixture
def beating(db):
    """Beat's heartbeat, as its task writes it on a worker."""
    heartbeat.heartbeat.apply()


def readyz(client, **params):
    response = client.get(reverse("readyz"), params)
    return response.status_code, response.json()


def test_liveness_needs_nothing_but_the_process(client, database_down):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_database_broker_cache_and_beat_answer(client, beating):
    status, body = readyz(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "cache", "beat"}
    assert all(check["ok"] for check in body["checks"].values())
    assert 0 <= body["checks"]["beat"]["age_seconds"] < 5


def test_database_down_is_a_503_naming_it(client, database_down, settings):
    # The cache on a server of its own, as in production (the default one is in the database).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    heartbeat.record()
    status, body = readyz(client)
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"].startswith("OperationalError")
    assert body["checks"]["broker"]["ok"] and body["checks"]["cache"]["ok"]


def test_broker_down_is_a_503_naming_it(client, beating, settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"
    status, body = readyz(client)
    assert status == 503
    assert body["failing"] == ["broker"]
    assert "Connection refused" in body["checks"]["broker"]["error"]


def test_cache_down_is_a_503_naming_it(client, beating, settings, closed_port):
    settings.CACHES = {
        "default": {
            "BACKEND": "smshub.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
        }
    }
    status, body = readyz(client)
    assert status == 503
    # The heartbeat lives in the cache: it cannot be read either.
    assert body["failing"] == ["cache", "beat"]
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert "ConnectionError" in body["checks"]["cache"]["error"]


def test_a_stale_heartbeat_is_a_503_naming_beat(client, db, settings):
    settings.SMSHUB_HEARTBEAT_MAX_AGE = 30
    heartbeat.record(at=time.time() - 95)
    status, body = readyz(client)
    assert status == 503
    assert body["failing"] == ["beat"]
    beat = body["checks"]["beat"]
    assert 95 <= beat["age_seconds"] < 100
    assert beat["max_age_seconds"] == 30
    assert "celery beat" in beat["error"]


def test_no_heartbeat_at_all_is_a_503_naming_beat(client, db):
    from django.core.cache import cache

    cache.delete(heartbeat.HEARTBEAT_KEY)
    status, body = readyz(client)
    assert status == 503
    assert body["failing"] == ["beat"]
    assert body["checks"]["beat"]["error"].startswith("Stale: no heartbeat yet")


def test_checks_can_be_chosen_and_unknown_ones_are_refused(client, db):
    from django.core.cache import cache

    cache.delete(heartbeat.HEARTBEAT_KEY)  # beat is down, but not asked about
    status, body = readyz(client, checks="database,cache")
    assert status == 200
    assert set(body["checks"]) == {"database", "cache"}
    status, body = readyz(client, checks="database,disk")
    assert status == 400
    assert "disk" in body["error"]


def test_beat_runs_the_heartbeat_every_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["heartbeat"]
    assert entry["task"] == heartbeat.heartbeat.name == "smshub.heartbeat"
    assert entry["schedule"] == settings.SMSHUB_HEARTBEAT_INTERVAL
    assert settings.SMSHUB_HEARTBEAT_MAX_AGE == 3 * settings.SMSHUB_HEARTBEAT_INTERVAL
    assert "smshub.heartbeat" in settings.CELERY_IMPORTS  # workers know the task


def test_probes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(reverse("healthz")).status_code == 200
    assert client.get("/login/").status_code == 301
