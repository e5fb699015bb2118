"""Create (or bring back) the demo: an account, its admin user and a simulator provider account.

Safe to run again: it updates what exists and never duplicates. Meant for development only.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns.contacts.models import (
    Contact,
    ContactField,
    ContactList,
    Template,
)
from campaigns.contacts.models import Membership as ListMembership
from campaigns.models import Account, Category, Membership, RouteEntry, SenderName
from providers.models import ProviderAccount

# (number, first name, city): the last replies when sent to (the simulator's numbers ending
# 9999), one has no city, one no first name (the template's fallbacks show).
DEMO_CONTACTS = [
    ("+33612345601", "Camille", "Lyon"),
    ("+33612345602", "Ioana", "Paris"),
    ("+33612345603", "", "Nantes"),
    ("+33612349999", "Luca", ""),
]
DEMO_TEMPLATE = "Hello {first_name|there}, your table in {city|our bistro} is ready."
DEMO_PROVIDERS = [
    ("Vortext (simulated)", "vortext", {"username": "vortext", "password": "vortext-secret"}),
    ("Primotexto (simulated)", "primotexto", {"api_key": "primotexto-key"}),
    ("SMSAdvert (simulated)", "smsadvert", {"token": "smsadvert-token"}),
    ("Expertflow (simulated)", "expertflow", {"channel": "sms"}),
    (
        "Ogangi (simulated)",
        "ogangi",
        {"instance_id": "1001", "public_key": "ogangi-public", "private_key": "ogangi-private"},
    ),
]


class Command(BaseCommand):
    help = "Seed a demo account, an admin user and a simulator provider account (development)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("DEMO_USERNAME", "admin"))
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "smshub-demo"))
        parser.add_argument(
            "--simulator-url",
            default=os.environ.get("SIMULATOR_URL", "http://127.0.0.1:8025"),
        )
        parser.add_argument(
            "--simulator-api-key", default=os.environ.get("SIMULATOR_API_KEY", "simulator-key")
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo creates a known password: it runs only with DEBUG on.")
        user, _ = get_user_model().objects.get_or_create(username=options["username"])
        user.is_staff = user.is_superuser = True
        user.email = user.email or f"{options['username']}@example.com"
        user.set_password(options["password"])
        user.save()

        simulator, _ = ProviderAccount.objects.update_or_create(
            name="Simulator",
            defaults={
                "slug": "simulator",
                "base_url": options["simulator_url"],
                "credentials": {"api_key": options["simulator_api_key"]},
                "enabled": True,
            },
        )
        # One account per real provider, each pointing at the simulator, which speaks its wire
        # protocol with these (its default) credentials: every provider can be tried locally.
        for name, slug, credentials in DEMO_PROVIDERS:
            ProviderAccount.objects.update_or_create(
                name=name,
                defaults={
                    "slug": slug,
                    "base_url": options["simulator_url"],
                    "credentials": credentials,
                    "enabled": True,
                },
            )
        account, _ = Account.objects.get_or_create(
            name="Demo",
            defaults={"timezone": "Europe/Paris", "country": "FR", "flood_limit_per_minute": 600},
        )
        RouteEntry.objects.get_or_create(
            account=account, provider_account=simulator, defaults={"position": 0}
        )
        Membership.objects.update_or_create(
            user=user, account=account, defaults={"role": Membership.Role.ADMIN}
        )
        SenderName.objects.update_or_create(
            account=account, name="SMSHub", defaults={"status": SenderName.Status.APPROVED}
        )
        Category.objects.get_or_create(
            account=account, tag="notifications", defaults={"name": "Notifications"}
        )
        self._contacts(account)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: account “{account.name}”, login {user.username} / "
                f"{options['password']}, provider “{simulator.name}” at {simulator.base_url}"
            )
        )

    def _contacts(self, account: Account) -> None:
        """A few contacts with custom fields, a list and a template, to try personalisation."""
        for key, label in (("first_name", "First name"), ("city", "City")):
            ContactField.objects.get_or_create(account=account, key=key, defaults={"label": label})
        regulars, _ = ContactList.objects.get_or_create(account=account, name="Regulars")
        for number, first_name, city in DEMO_CONTACTS:
            contact, _ = Contact.objects.get_or_create(
                account=account,
                number=number,
                defaults={
                    "name": f"{first_name} (demo)" if first_name else "",
                    "language": "fr",
                    "values": {k: v for k, v in (("first_name", first_name), ("city", city)) if v},
                },
            )
            ListMembership.objects.get_or_create(contact_list=regulars, contact=contact)
        Template.objects.get_or_create(
            account=account,
            name="Table ready",
            defaults={
                "text": "Hello {first_name|there}, your table in {city|our bistro} is ready."
            },
        )
