"""Test a provider account's connection and credentials, as admin's “Test connection” does."""

from django.core.management.base import BaseCommand, CommandError

from providers.exceptions import ProviderError
from providers.models import ProviderAccount


class Command(BaseCommand):
    help = "Call the provider's check for a provider account; exit status 1 when it fails."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the provider account's name")

    def handle(self, *args, name, **options):
        try:
            provider_account = ProviderAccount.objects.get(name=name)
        except ProviderAccount.DoesNotExist:
            known = ", ".join(ProviderAccount.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No provider account named “{name}”. Known: {known}.") from None
        try:
            description = provider_account.adapter().check()
        except ProviderError as exc:
            raise CommandError(f"{name}: {exc.message}", returncode=1) from None
        self.stdout.write(self.style.SUCCESS(f"{name}: {description}"))
