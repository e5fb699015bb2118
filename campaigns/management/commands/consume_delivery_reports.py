"""Read a provider's delivery reports from its message queue over STOMP (Expertflow's
`delivery-report` queue) and apply them like webhook reports.

Each report is stored in the webhook log first and acknowledged only once stored, so a crash or
a database outage loses nothing: the broker delivers an unacknowledged report again.
"""

import logging
import os
import queue
import threading
import time

import stomp
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from campaigns.models import WebhookRequest
from campaigns.services import webhook_log
from providers.exceptions import WebhookValidationError
from providers.models import ProviderAccount

logger = logging.getLogger(__name__)


class _Listener(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.disconnected = threading.Event()

    def on_message(self, frame) -> None:
        self.frames.put(frame)

    def on_error(self, frame) -> None:
        logger.error("STOMP broker error: %s", frame.body)

    def on_disconnected(self) -> None:
        self.disconnected.set()


class Command(BaseCommand):
    help = "Apply delivery reports published on a STOMP queue (Expertflow's delivery-report)."

    def add_arguments(self, parser):
        env = os.environ.get
        parser.add_argument("--provider", required=True, help="the provider account's name")
        parser.add_argument("--host", default=env("SMSHUB_STOMP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(env("SMSHUB_STOMP_PORT", "61613")))
        parser.add_argument("--user", default=env("SMSHUB_STOMP_USER", "guest"))
        parser.add_argument("--password", default=env("SMSHUB_STOMP_PASSWORD", "guest"))
        parser.add_argument("--queue", default=env("SMSHUB_STOMP_QUEUE", "delivery-report"))
        parser.add_argument(
            "--max-messages", type=int, default=0, help="stop after this many (0: run forever)"
        )
        parser.add_argument(
            "--idle-timeout", type=float, default=0, help="stop after this many idle seconds"
        )

    def handle(self, *args, **options):
        try:
            provider_account = ProviderAccount.objects.get(name=options["provider"])
        except ProviderAccount.DoesNotExist:
            raise CommandError(f"No provider account named “{options['provider']}”.") from None
        listener = _Listener()
        connection = stomp.Connection(
            [(options["host"], options["port"])], heartbeats=(10000, 10000)
        )
        connection.set_listener("reports", listener)
        try:
            connection.connect(options["user"], options["password"], wait=True)
        except stomp.exception.StompException as exc:
            raise CommandError(
                f"Cannot connect to the STOMP broker at {options['host']}:{options['port']}: "
                f"{exc.__class__.__name__}"
            ) from None
        destination = f"/queue/{options['queue']}"
        connection.subscribe(destination, id="smshub", ack="client-individual")
        self.stdout.write(f"Reading {destination} for {provider_account.name} (Ctrl-C to stop)")
        handled, idle_since = 0, time.monotonic()
        try:
            while not listener.disconnected.is_set():
                try:
                    frame = listener.frames.get(timeout=0.5)
                except queue.Empty:
                    if (
                        options["idle_timeout"]
                        and time.monotonic() - idle_since > options["idle_timeout"]
                    ):
                        break
                    continue
                idle_since = time.monotonic()
                self._handle(connection, provider_account, frame)
                handled += 1
                if options["max_messages"] and handled >= options["max_messages"]:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            connection.disconnect()
        self.stdout.write(f"{handled} delivery reports read.")

    def _handle(self, connection, provider_account, frame) -> None:
        message_id, subscription = frame.headers["message-id"], frame.headers["subscription"]
        try:
            log = WebhookRequest.objects.create(
                provider_account=provider_account,
                kind=WebhookRequest.Kind.QUEUE,
                content_type=frame.headers.get("content-type", "application/json"),
                headers={k: v for k, v in frame.headers.items() if k not in ("passcode", "login")},
                body=frame.body
                if isinstance(frame.body, str)
                else frame.body.decode("utf-8", "replace"),
            )
        except DatabaseError:
            logger.exception("could not store a queued delivery report: left on the queue")
            connection.nack(message_id, subscription)
            return
        connection.ack(message_id, subscription)  # stored: from here on the hub has it
        try:
            webhook_log.process(log)
        except WebhookValidationError as exc:
            logger.warning("queued delivery report #%s refused: %s", log.pk, exc)
        except Exception:
            # Stored as received: a worker applies it later (`webhook_log.apply_received`).
            logger.exception(
                "queued delivery report #%s not applied now: left to the workers", log.pk
            )
