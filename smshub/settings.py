"""Settings for SMS Hub, read from the environment (and an optional `.env` file).

The defaults run on a bare machine: a SQLite file, Celery over files (`smshub.broker`) and
Django's database cache, all under `var/`. Production sets `DATABASE_URL` (PostgreSQL),
`CELERY_BROKER_URL` and `CACHE_URL` (Redis): see `.env.example`.
"""

import importlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from smshub.logging import config as logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

# A key that is only good for development: the hub refuses to start on it with DEBUG off.
DEVELOPMENT_SECRET_KEY = "django-insecure-smshub-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: with DEBUG off SMS Hub refuses to start on the development key. "
        "Set SECRET_KEY in the environment or in .env (see .env.example)."
    )

# Secrets at rest (provider credentials, webhook tokens, forwarding keys) are encrypted with
# these Fernet keys: the first encrypts, all decrypt (see `manage.py rotate_encryption_key`).
# Without it (development only) a key is derived from SECRET_KEY.
SMSHUB_ENCRYPTION_KEYS = env.list("SMSHUB_ENCRYPTION_KEYS", default=[])
if not DEBUG and not SMSHUB_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "SMSHUB_ENCRYPTION_KEYS is not set: with DEBUG off SMS Hub refuses to start without the "
        "key that encrypts stored secrets. Make one with `manage.py rotate_encryption_key "
        "--generate-key` and set it in the environment or in .env (see .env.example)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# How providers reach the hub: the base of every webhook and callback URL handed to them.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "providers",
    "campaigns",
    "campaigns.audit",
    "ninja",
    "campaigns.api",
    "campaigns.contacts",
    "smshub.lockout",
]

MIDDLEWARE = [
    # First: every record logged while serving a request carries its id (X-Request-ID).
    "smshub.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files, compressed and with hashed names, straight from the web processes.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Django's LocaleMiddleware (Accept-Language) plus the user's saved language: after the
    # user is known. Pages only: MACHINE_MIDDLEWARE (API, webhooks) stays English.
    "campaigns.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "campaigns.tenancy.AccountMiddleware",
    "campaigns.audit.middleware.AuditMiddleware",
]

# Paths that programs call, not people in a browser: the JSON API, providers' webhooks and the
# probes. smshub/wsgi.py serves them with MACHINE_MIDDLEWARE instead of MIDDLEWARE; the API's
# interactive docs are a page, so they keep the full list.
MACHINE_PATHS = ("/api/", "/hooks/", "/healthz", "/readyz", "/metrics")
MACHINE_PATHS_EXCEPT = ("/api/v1/docs",)
# No sessions, users, CSRF, messages, tenancy, htmx, CSP or frame options: nothing on those paths
# reads them (API keys are not cookies; webhooks authenticate by their token), and JSON is not
# framed or scripted. Kept: the request id, HTTPS (redirect, HSTS, nosniff), the check of the
# Host header against ALLOWED_HOSTS and Content-Length (CommonMiddleware), and the audit's actor
# (a change made through the API is recorded as the API key's).
MACHINE_MIDDLEWARE = [
    "smshub.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "campaigns.audit.middleware.AuditMiddleware",
]

ROOT_URLCONF = "smshub.urls"
WSGI_APPLICATION = "smshub.wsgi.application"
ASGI_APPLICATION = "smshub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'smshub.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web, worker and beat write to one file: WAL lets readers go on while one writes, and
    # IMMEDIATE transactions make writers queue (up to `timeout` seconds) instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault(
        "CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://smshub_cache")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "smshub.cache.RedisCache"  # one client per pool, not per call

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "campaigns:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Stored in UTC; shown in the account's own timezone (see campaigns.tenancy).
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The staff pages' languages, named in their own language (the choice on /account/language/;
# else the browser's). Translations: locale/<code>/LC_MESSAGES/django.po, compiled .mo beside.
LANGUAGES = [("en", "English"), ("fr", "Français"), ("ro", "Română")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Off: numbers shown to people go through `intcomma` (grouped per language: 1,851 / 1 851 /
# 1.851); raw numbers in templates are ids, sizes and counts in attributes and URLs (value=,
# max=, maxlength=, ?after=) that grouping would break.
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

# --- Celery: the broker carries ids only; the database is the source of truth. -------------
# The default needs no server: smshub.broker, kombu's filesystem transport made safe for several
# processes, in var/broker. `filesystem://` (kombu's own, which can lose messages: kombu #1551)
# means the same folders, so it is read as `smshubfs://`.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="smshubfs://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_URL = "smshubfs://" + CELERY_BROKER_URL.removeprefix("filesystem://")
if CELERY_BROKER_URL.startswith("smshubfs://"):
    importlib.import_module("smshub.broker")  # registers the smshubfs:// scheme with kombu
    _broker_dir = env.path("CELERY_FILESYSTEM_DIR", default=VAR_DIR / "broker")
    for _sub in ("queue", "processed", "control", "unreadable"):
        Path(_broker_dir, _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(Path(_broker_dir, "queue")),
        "data_folder_out": str(Path(_broker_dir, "queue")),
        "processed_folder": str(Path(_broker_dir, "processed")),
        "control_folder": str(Path(_broker_dir, "control")),
        "unreadable_folder": str(Path(_broker_dir, "unreadable")),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(
    env.path("CELERY_BEAT_SCHEDULE_FILENAME", default=VAR_DIR / "celerybeat-schedule")
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- SMS Hub ---------------------------------------------------------------------------------
# Provider kinds: slug -> adapter class. Adding a provider is one line here.
SMSHUB_PROVIDERS = {
    "simulator": "providers.simulator.adapter.SimulatorProvider",
    "vortext": "providers.vortext.VortextProvider",
    "primotexto": "providers.primotexto.PrimotextoProvider",
    "smsadvert": "providers.smsadvert.SmsAdvertProvider",
    "expertflow": "providers.expertflow.ExpertflowProvider",
    "ogangi": "providers.ogangi.OgangiProvider",
    "twilio": "providers.twilio.TwilioStyleProvider",
}
# How often the beat sweep claims due messages, and how many one claim takes (a claim's and a
# record's fixed cost, ~10 queries, shared by that many messages).
SMSHUB_SWEEP_INTERVAL = env.float("SMSHUB_SWEEP_INTERVAL", default=5.0)
SMSHUB_DISPATCH_BATCH_SIZE = env.int("SMSHUB_DISPATCH_BATCH_SIZE", default=200)
# Messages a worker process keeps in flight at most (claimed, their calls made at once, not yet
# recorded): what is left `sending`, then `unknown`, should the process be killed. Three
# batches: one being claimed or recorded while two are on the wire (bench/peer.py: bulk at 50 ms
# went from 0.36 to 0.46-0.49 of Kannel with batches of 200 and 600 in flight, against 100 and
# 300, in the same hour).
SMSHUB_SEND_CONCURRENCY = env.int("SMSHUB_SEND_CONCURRENCY", default=600)
# Dispatch tasks the sweep keeps running or queued at most (more worker processes than this
# would sit idle while messages are due).
SMSHUB_DISPATCHERS = env.int("SMSHUB_DISPATCHERS", default=16)
# Seconds a worker waits after a claim that found less than a batch before the next: single
# messages gather into batches (a claim's fixed cost, ~10 queries, shared by more of them) at
# the price of that much latency at most.
SMSHUB_DISPATCH_GATHER = env.float("SMSHUB_DISPATCH_GATHER", default=0.2)
# Seconds a dispatch task stays after its last work, for messages queued meanwhile.
SMSHUB_DISPATCH_LINGER = env.float("SMSHUB_DISPATCH_LINGER", default=0.5)
CELERY_BEAT_SCHEDULE = {
    # Claims what is due: scheduled sends, retries, and anything the broker dropped.
    "sweep": {
        "task": "campaigns.sweep",
        "schedule": SMSHUB_SWEEP_INTERVAL,
        "options": {"expires": SMSHUB_SWEEP_INTERVAL},
    },
    "forward": {
        "task": "campaigns.forward",
        "schedule": SMSHUB_SWEEP_INTERVAL,
        "options": {"expires": SMSHUB_SWEEP_INTERVAL},
    },
    "poll-inbound": {
        "task": "campaigns.poll_inbound",
        "schedule": env.float("SMSHUB_POLL_INTERVAL", default=30.0),
        "options": {"expires": 30.0},
    },
    # Retention: purges what is older than SMSHUB_RETENTION_DAYS / SMSHUB_LOG_RETENTION_DAYS.
    "purge": {
        "task": "campaigns.purge",
        "schedule": env.float("SMSHUB_RETENTION_INTERVAL", default=3600.0),
        "options": {"expires": 600.0},
    },
}
# Seconds a message may stay `sending` before it is marked `unknown` (never resent blindly).
SMSHUB_SENDING_TIMEOUT = env.int("SMSHUB_SENDING_TIMEOUT", default=300)
# HTTP timeouts towards providers: (connect, read) seconds.
SMSHUB_HTTP_TIMEOUT = (
    env.float("SMSHUB_HTTP_CONNECT_TIMEOUT", default=5.0),
    env.float("SMSHUB_HTTP_READ_TIMEOUT", default=20.0),
)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# json: one object per line (time, level, logger, message, request_id, ...); plain: for people.
# Secrets are always masked in logs; phone numbers too (to their last 4 digits) unless DEBUG.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}.")
# Everything to stderr through the masking filter, Django's and runserver's records included;
# Celery workers and beat log through it too (smshub.logging takes over their logging setup).
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT, numbers=not DEBUG)
# Attempts per message before it fails (temporary errors and throttling), and the first backoff.
SMSHUB_MAX_ATTEMPTS = env.int("SMSHUB_MAX_ATTEMPTS", default=5)
SMSHUB_RETRY_BASE_DELAY = env.float("SMSHUB_RETRY_BASE_DELAY", default=10.0)
# Request bodies read into memory at most (Django's default is 2.5 MB): 10,000 contacts with
# their fields in one API call fit. A larger body is a 413 saying so.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)
# Webhooks: the largest body accepted, in bytes.
SMSHUB_WEBHOOK_MAX_BODY = env.int("SMSHUB_WEBHOOK_MAX_BODY", default=1024 * 1024)
# Delivery reports of providers whose send gives no id (Expertflow) match the oldest message to
# their number handed to the provider within this many hours (0: never matched by number).
SMSHUB_DLR_NUMBER_WINDOW_HOURS = env.float("SMSHUB_DLR_NUMBER_WINDOW_HOURS", default=24.0)
# Replies made only of one of these words (case and accents ignored) opt the number out, or back in.
SMSHUB_STOP_KEYWORDS = env.list(
    "SMSHUB_STOP_KEYWORDS",
    default=[
        "STOP",
        "STOP SMS",
        "STOPSMS",
        "STOP ALL",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "OPTOUT",
        "OPT OUT",
        "ARRET",
        "ARRETER",
        "DESABONNER",
        "DESINSCRIRE",
        "DEZABONARE",
        "DEZABONEAZA",
        "OPRESTE",
        "STOP MESAJE",
    ],
)
SMSHUB_START_KEYWORDS = env.list(
    "SMSHUB_START_KEYWORDS", default=["START", "UNSTOP", "SUBSCRIBE", "ABONARE", "REPRENDRE"]
)
# JSON API: requests per minute per API key (fixed one-minute windows, counted in the cache);
# one-time codes: seconds a code is valid, and wrong tries before it is dead.
SMSHUB_API_RATE_LIMIT = env.int("SMSHUB_API_RATE_LIMIT", default=120)
SMSHUB_OTP_TTL = env.int("SMSHUB_OTP_TTL", default=300)
SMSHUB_OTP_MAX_ATTEMPTS = env.int("SMSHUB_OTP_MAX_ATTEMPTS", default=5)
# Lock-outs (smshub.lockout): failed logins within SMSHUB_LOGIN_WINDOW seconds that lock a user
# name, or an address, for SMSHUB_LOGIN_LOCK seconds; invalid API keys within a minute after
# which an address is refused (429) for a minute.
SMSHUB_LOGIN_USER_FAILURES = env.int("SMSHUB_LOGIN_USER_FAILURES", default=5)
SMSHUB_LOGIN_ADDRESS_FAILURES = env.int("SMSHUB_LOGIN_ADDRESS_FAILURES", default=20)
SMSHUB_LOGIN_WINDOW = env.int("SMSHUB_LOGIN_WINDOW", default=900)
SMSHUB_LOGIN_LOCK = env.int("SMSHUB_LOGIN_LOCK", default=900)
SMSHUB_API_KEY_FAILURES = env.int("SMSHUB_API_KEY_FAILURES", default=20)
# Proxies trusted to say who the client is (the last X-Forwarded-For address they add). Anyone
# else's X-Forwarded-For is ignored.
SMSHUB_TRUSTED_PROXIES = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1", "::1"])
# Forgets idempotency answers after 24 hours and masks used or expired one-time codes.
CELERY_BEAT_SCHEDULE["api-purge"] = {
    "task": "api.purge",
    "schedule": 600.0,
    "options": {"expires": 600.0},
}
# Forwarding replies and statuses to an account's own URL: attempts before giving up.
SMSHUB_FORWARD_MAX_ATTEMPTS = env.int("SMSHUB_FORWARD_MAX_ATTEMPTS", default=8)
# Retries: attempts on one provider account before failing over to the next of the route.
# Circuit breaker: temporary failures in a row that open it, and how long it stays open.
SMSHUB_CIRCUIT_FAILURES = env.int("SMSHUB_CIRCUIT_FAILURES", default=5)
SMSHUB_CIRCUIT_OPEN_SECONDS = env.float("SMSHUB_CIRCUIT_OPEN_SECONDS", default=30.0)
# Retention (0: keep forever): final messages with their events, replies and forwards after
# SMSHUB_RETENTION_DAYS; webhook requests and unmatched delivery reports after
# SMSHUB_LOG_RETENTION_DAYS. With SMSHUB_RETENTION_EXPORT_DIR set, purged rows are first
# appended to one CSV file per table and day there.
SMSHUB_RETENTION_DAYS = env.int("SMSHUB_RETENTION_DAYS", default=400)
SMSHUB_LOG_RETENTION_DAYS = env.int("SMSHUB_LOG_RETENTION_DAYS", default=30)
SMSHUB_RETENTION_EXPORT_DIR = env.str("SMSHUB_RETENTION_EXPORT_DIR", default="")
SMSHUB_RETENTION_BATCH_SIZE = env.int("SMSHUB_RETENTION_BATCH_SIZE", default=1000)

# --- Production: static files, HTTPS, Content-Security-Policy, health, metrics ---------------
# Static files are served by the web processes (WhiteNoise): with DEBUG off, compressed and with
# content-hashed names after `manage.py collectstatic` (cached for a year by browsers).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if DEBUG:  # development serves from the apps' folders; an empty STATIC_ROOT keeps WhiteNoise quiet
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
# HTTPS. Behind a proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER to the header it sets
# (X-Forwarded-Proto) and make sure the proxy always overwrites that header.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_ssl_header.upper().replace("-", "_").removeprefix("HTTP_"),
        "https",
    )
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes and scrapers often speak plain HTTP to a web process directly.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Content-Security-Policy: scripts only from this site (htmx and the project's own files; no
# inline script, no event-handler attribute, no eval: htmx runs with allowEval off). Inline
# styles are allowed: the dashboard's chart is an SVG with its own <style>.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# Celery: the queue tasks go to by default (several hubs may share one broker), and processes
# per worker (default: one per CPU).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=None)
CELERY_IMPORTS = ["smshub.heartbeat"]
# Beat's heartbeat: a task every SMSHUB_HEARTBEAT_INTERVAL seconds writes the time to the cache;
# /readyz fails when it is older than SMSHUB_HEARTBEAT_MAX_AGE (default: three intervals).
SMSHUB_HEARTBEAT_INTERVAL = env.float("SMSHUB_HEARTBEAT_INTERVAL", default=10.0)
SMSHUB_HEARTBEAT_MAX_AGE = env.float(
    "SMSHUB_HEARTBEAT_MAX_AGE", default=3 * SMSHUB_HEARTBEAT_INTERVAL
)
CELERY_BEAT_SCHEDULE["heartbeat"] = {
    "task": "smshub.heartbeat",
    "schedule": SMSHUB_HEARTBEAT_INTERVAL,
    "options": {"expires": SMSHUB_HEARTBEAT_MAX_AGE},
}
# CSV files uploaded on the compose page wait here between upload, preview and sending: with
# several web machines, a folder they all share (or a proxy that keeps a user on one machine).
SMSHUB_UPLOAD_DIR = Path(env.str("SMSHUB_UPLOAD_DIR", default=str(VAR_DIR / "uploads")))
# /readyz: seconds to wait for the broker.
SMSHUB_READYZ_TIMEOUT = env.float("SMSHUB_READYZ_TIMEOUT", default=2.0)
# /metrics: the bearer token Prometheus sends (unset: no /metrics at all), and the window, in
# seconds, of the message counts and the send-latency histogram.
SMSHUB_METRICS_TOKEN = env.str("SMSHUB_METRICS_TOKEN", default="")
SMSHUB_METRICS_WINDOW = env.float("SMSHUB_METRICS_WINDOW", default=300.0)
