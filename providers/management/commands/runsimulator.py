"""`manage.py runsimulator`: run the provider simulator (a fake SMS provider) in the foreground."""

import logging
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from providers.simulator.server import SimulatorServer


class Command(BaseCommand):
    help = (
        "Run the provider simulator, a fake SMS provider for development and tests. "
        "Numbers ending in 0000 are reported undelivered (UNREACHABLE)."
    )
    requires_system_checks = []  # the simulator stands apart from the hub's apps and database

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
        )
        parser.add_argument("--port", type=int, default=8025, help="port (default: %(default)s)")
        parser.add_argument(
            "--api-key",
            default=None,
            help="bearer token clients must send (default: $SIMULATOR_API_KEY or 'simulator-key')",
        )
        parser.add_argument(
            "--dlr-delay",
            type=float,
            default=2.0,
            help="seconds before the delivery report callback (default: %(default)s)",
        )

    def handle(self, *args, **options):
        api_key = options["api_key"] or os.environ.get("SIMULATOR_API_KEY") or "simulator-key"
        port, dlr_delay = options["port"], options["dlr_delay"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, not {port}")
        if dlr_delay < 0:
            raise CommandError("--dlr-delay must be zero or more seconds")
        self._ensure_log_output(options["verbosity"])
        try:
            server = SimulatorServer(
                host=options["host"], port=port, api_key=api_key, dlr_delay=dlr_delay
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{port}: {exc}") from exc

        # honcho and process managers stop us with SIGTERM: leave as cleanly as on Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        self.stdout.write(f"Provider simulator listening on {server.url} (Ctrl-C to stop)")
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
        logger = logging.getLogger("providers.simulator")
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
