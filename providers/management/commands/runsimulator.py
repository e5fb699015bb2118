"""`manage.py runsimulator`: run the provider simulator (fakes of every provider) in the foreground.

One URL serves all the fakes (see `providers.simulator.server` for what each accepts):

    python manage.py runsimulator --port 8025 \\
        --fault vortext:error_rate=0.2 --fault ogangi:latency_ms=300 \\
        --hub-url expertflow:dlr=http://127.0.0.1:8000/hooks/expertflow/<token>/dlr/ --seed 7

Where the simulator calls the hub back (``hub_urls``) and which credentials it accepts:

- ``--hub-url SLUG:KIND=URL`` (repeatable; KIND is ``dlr`` or ``inbound``) sets them by hand.
- Without any ``--hub-url``, and unless ``--no-db``, they come from the hub's database: for each
  of the six slugs, the first enabled ``ProviderAccount`` (by priority, then name) gives
  ``webhook_url("dlr")`` / ``webhook_url("inbound")`` as that slug's hub URLs and its
  credentials (under the fake's own key names) override the fake's defaults, so the simulator
  accepts what the hub sends. If the database cannot be read (not migrated, not reachable),
  a warning is logged and the defaults stay.
- ``--api-key`` (else the database's simulator account, else ``$SIMULATOR_API_KEY``, else
  ``simulator-key``) is the bearer token of the "simulator" protocol.

Faults: ``--fault SLUG:KEY=VALUE`` (repeatable), KEY one of ``error_rate``, ``throttle_rate``,
``timeout_rate`` (0 to 1), ``latency_ms``, ``retry_after``, ``hang_seconds``, ``error_status``;
``--seed`` makes the random faults reproducible. Everything can be changed while it runs with
``POST /_simulator/config`` (``GET`` shows it).
"""

import logging
import os
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.simulator.fakes import FAKES
from providers.simulator.server import HUB_URL_KINDS, SimulatorServer, mask_url

logger = logging.getLogger("providers.simulator")


def parse_fault(value: str) -> tuple[str, str, float]:
    """``"vortext:error_rate=0.5"`` → ``("vortext", "error_rate", 0.5)``."""
    slug, sep, rest = value.partition(":")
    key, eq, number = rest.partition("=")
    if not sep or not eq or not slug or not key:
        raise CommandError(f"--fault wants SLUG:KEY=VALUE, not {value!r}")
    if slug not in FAKES:
        raise CommandError(f"--fault: unknown provider {slug!r} (known: {', '.join(FAKES)})")
    try:
        return slug, key, float(number)
    except ValueError:
        raise CommandError(f"--fault {value!r}: the value must be a number") from None


def parse_hub_url(value: str) -> tuple[str, str, str]:
    """``"expertflow:dlr=http://..."`` → ``("expertflow", "dlr", "http://...")``."""
    slug, sep, rest = value.partition(":")
    kind, eq, url = rest.partition("=")
    if not sep or not eq or not slug or not kind or not url:
        raise CommandError(f"--hub-url wants SLUG:KIND=URL, not {value!r}")
    if slug not in FAKES:
        raise CommandError(f"--hub-url: unknown provider {slug!r} (known: {', '.join(FAKES)})")
    if kind not in HUB_URL_KINDS:
        raise CommandError(f"--hub-url: KIND must be one of {', '.join(HUB_URL_KINDS)}")
    return slug, kind, url


def settings_from_database() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """``(hub_urls, credentials)`` from the first enabled provider account of each slug.

    Returns empty settings, with a warning logged, when the database cannot be read.
    """
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError

    from providers.models import ProviderAccount

    hub_urls: dict[str, dict[str, str]] = {}
    credentials: dict[str, dict[str, str]] = {}
    try:
        accounts = list(
            ProviderAccount.objects.filter(enabled=True, slug__in=list(FAKES)).order_by(
                "priority", "name"
            )
        )
    except (DatabaseError, ImproperlyConfigured) as exc:
        logger.warning(
            "cannot read the provider accounts (%s: %s); using the defaults",
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        )
        return {}, {}
    for account in accounts:
        if account.slug in hub_urls:
            continue  # the first account per slug wins
        hub_urls[account.slug] = {kind: account.webhook_url(kind) for kind in HUB_URL_KINDS}
        raw = account.credentials if isinstance(account.credentials, dict) else {}
        credentials[account.slug] = FAKES[account.slug].normalize_credentials(raw)
        logger.info("%s: hub URLs and credentials of provider account %r", account.slug, account)
    return hub_urls, credentials


class Command(BaseCommand):
    help = (
        "Run the provider simulator: fakes of Vortext, Primotexto, SMSAdvert, Expertflow, Ogangi "
        "and the simulator protocol on one URL. Numbers ending in 0000 are reported undelivered; "
        "numbers ending in 9999 reply. Faults and hub URLs: POST /_simulator/config."
    )
    requires_system_checks = []  # the simulator stands apart from the hub's apps

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
        )
        parser.add_argument("--port", type=int, default=8025, help="port (default: %(default)s)")
        parser.add_argument(
            "--api-key",
            default=None,
            help="bearer token of the simulator protocol (default: the database's simulator "
            "account, else $SIMULATOR_API_KEY, else 'simulator-key')",
        )
        parser.add_argument(
            "--dlr-delay",
            type=float,
            default=2.0,
            help="seconds before delivery reports; replies come twice as late "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="SLUG:KEY=VALUE",
            help="a fault, e.g. vortext:error_rate=0.1, smsadvert:throttle_rate=1, "
            "ogangi:latency_ms=500, expertflow:timeout_rate=0.05 (repeatable)",
        )
        parser.add_argument(
            "--hub-url",
            action="append",
            default=[],
            metavar="SLUG:KIND=URL",
            help="where to push delivery reports (dlr) or replies (inbound) for a provider "
            "(repeatable); without any, they are read from the hub's provider accounts",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="seed of the random faults (reproducible)"
        )
        parser.add_argument(
            "--no-db",
            action="store_true",
            help="do not read hub URLs and credentials from the hub's database",
        )

    def handle(self, *args, **options):
        port, dlr_delay = options["port"], options["dlr_delay"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, not {port}")
        if dlr_delay < 0:
            raise CommandError("--dlr-delay must be zero or more seconds")
        self._ensure_log_output(options["verbosity"])

        faults: dict[str, dict[str, float]] = {}
        for value in options["fault"]:
            slug, key, number = parse_fault(value)
            faults.setdefault(slug, {})[key] = number
        hub_urls: dict[str, dict[str, str]] = {}
        for value in options["hub_url"]:
            slug, kind, url = parse_hub_url(value)
            hub_urls.setdefault(slug, {})[kind] = url
        credentials: dict[str, dict[str, Any]] = {}
        if not hub_urls and not options["no_db"]:
            hub_urls, credentials = settings_from_database()
        api_key = (
            options["api_key"]
            or credentials.get("simulator", {}).get("api_key")
            or os.environ.get("SIMULATOR_API_KEY")
            or "simulator-key"
        )
        credentials.setdefault("simulator", {})["api_key"] = api_key

        try:
            server = SimulatorServer(
                host=options["host"],
                port=port,
                api_key=api_key,
                dlr_delay=dlr_delay,
                credentials=credentials,
                hub_urls=hub_urls,
                faults=faults,
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{port}: {exc}") from exc

        # honcho and process managers stop us with SIGTERM: leave as cleanly as on Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        self.stdout.write(f"Provider simulator listening on {server.url} (Ctrl-C to stop)")
        for slug, urls in sorted(hub_urls.items()):
            for kind, url in sorted(urls.items()):
                self.stdout.write(f"  {slug} {kind} -> {mask_url(url)}")
        for slug, settings in sorted(faults.items()):
            shown = ", ".join(f"{key}={value:g}" for key, value in sorted(settings.items()))
            self.stdout.write(f"  {slug} faults: {shown}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.stop()
        self.stdout.write("Provider simulator stopped.")

    def _ensure_log_output(self, verbosity: int) -> None:
        """Show the simulator's request lines unless the project's LOGGING already handles them."""
        if logger.level == logging.NOTSET:  # not configured by settings.LOGGING
            logger.setLevel(logging.INFO if verbosity >= 1 else logging.WARNING)
        if not logger.hasHandlers():
            handler = logging.StreamHandler()  # stderr
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            logger.addHandler(handler)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
