"""Send one SMS now through a named provider account, recorded like any other message."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from campaigns import statuses
from campaigns.models import Account, Message, MessageEvent
from campaigns.phone import normalize
from campaigns.services import dispatch
from campaigns.services.compose import create_message
from providers.models import ProviderAccount


class Command(BaseCommand):
    help = (
        "Send one SMS synchronously through a provider account and print the outcome as JSON. "
        "Exit status 0 when the provider accepted it, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True, help="the provider account's name")
        parser.add_argument(
            "--to",
            required=True,
            help="the number: with its country code, or national in the account's country",
        )
        parser.add_argument("--text", required=True)
        parser.add_argument("--sender", default="")
        parser.add_argument(
            "--account", help="the account to record it under (needed when there are several)"
        )

    def handle(self, *args, **options):
        provider_account = self._provider(options["provider"])
        account = self._account(options["account"])
        try:
            recipient = normalize(options["to"], account.region)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if not options["text"].strip():
            raise CommandError("The text is empty.")

        message = create_message(
            account,
            recipient=recipient,
            text=options["text"],
            sender=options["sender"],
            source=MessageEvent.Source.STAFF,
            status=Message.Status.SENDING,
            detail=f"Sent from the command line through {provider_account.name}.",
            claimed_at=timezone.now(),
        )
        outcome = dispatch.send_through(message, provider_account)
        dispatch.record(outcome)
        dispatch.apply_waiting_reports([outcome])
        message.refresh_from_db()
        accepted = message.status in statuses.ACCEPTED
        self.stdout.write(
            json.dumps(
                {
                    "message_id": message.pk,
                    "status": message.status,
                    "provider_message_id": message.provider_message_id,
                    "cost": str(message.cost) if message.cost is not None else None,
                    "segments": message.segments,
                    "error": message.error_reason or None,
                }
            )
        )
        if not accepted:
            later = {
                Message.Status.RETRYING: " The hub will try again later.",
                Message.Status.QUEUED: f" {provider_account.name} is now on hold (admin → "
                "Provider accounts); the message waits for a provider account of its route.",
            }
            raise CommandError(
                f"{provider_account.name} did not accept the message: {message.error_reason}"
                + later.get(message.status, ""),
                returncode=1,
            )

    def _provider(self, name: str) -> ProviderAccount:
        try:
            return ProviderAccount.objects.get(name=name)
        except ProviderAccount.DoesNotExist:
            known = ", ".join(ProviderAccount.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No provider account named “{name}”. Known: {known}.") from None

    def _account(self, name: str | None) -> Account:
        if name:
            try:
                return Account.objects.get(name=name)
            except Account.DoesNotExist:
                raise CommandError(f"No account named “{name}”.") from None
        accounts = list(Account.objects.all()[:2])
        if len(accounts) != 1:
            raise CommandError("Say which account to record the message under: --account NAME.")
        return accounts[0]
