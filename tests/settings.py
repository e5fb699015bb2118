"""Settings for the test suite: the project's own, with a test-only secret and fast hashing.

The environment still decides the database, cache and broker, so the same suite runs on the
embedded defaults (SQLite, filesystem broker, database cache) and on PostgreSQL and Redis.
"""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
# A Fernet key for secrets at rest (32 bytes, base64), whatever DEBUG the environment sets.
os.environ.setdefault("SMSHUB_ENCRYPTION_KEYS", "c21zLWh1Yi10ZXN0cy1vbmx5LWtleS0zMi1ieXRlcyE=")
# The run's own broker folder: a `make run` worker on the same machine, or another test run,
# never takes its tasks (the worker the tests start inherits it through the environment).
os.environ.setdefault(
    "CELERY_FILESYSTEM_DIR",
    str(Path(__file__).resolve().parent.parent / "var" / f"test-broker-{os.getpid()}"),
)

from smshub.settings import *  # noqa: F403
from smshub.settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: end-to-end tests run a Celery worker in another process on it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # One test database per run, so that two runs on the same server never drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

# Callbacks the simulator makes in tests go nowhere unless a test serves the hub (live_server):
# never to a development server that may be running on this machine. The Celery worker that the
# end-to-end tests start is told the live server's URL through the environment.
PUBLIC_BASE_URL = os.environ.get("SMSHUB_TEST_PUBLIC_BASE_URL", "http://127.0.0.1:9")

# Threads of the live server must not keep database connections open past their request: the
# test database is dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Pages render without `collectstatic`, whatever DEBUG the environment sets (the serving tests
# check the hashed, compressed files of production themselves).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The live worker's dispatch tasks end once nothing is due, as soon as a test's messages are
# sent: a task still looking for work when a transactional test's tables are truncated can
# deadlock the truncation (PostgreSQL). The tests of lingering set it themselves.
SMSHUB_DISPATCH_LINGER = 0.0

# The live worker claims a test's single messages sooner: the production default (0.2 s, for
# fuller claims) would add that wait to every small batch of the end-to-end tests.
SMSHUB_DISPATCH_GATHER = 0.05
