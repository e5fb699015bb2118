import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from campaigns.models import Account, Membership, SenderName
from providers.models import ProviderAccount

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_a_working_demo_and_can_run_twice(settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    token = ProviderAccount.objects.get(slug="simulator").webhook_token
    call_command("seed_demo", password="another-password", verbosity=0)

    account = Account.objects.get()
    assert account.name == "Demo"
    assert [p.slug for p in account.route()] == ["simulator"]
    simulator = ProviderAccount.objects.get(slug="simulator")
    assert simulator.webhook_token == token  # webhook URLs stay valid
    assert sorted(ProviderAccount.objects.values_list("slug", flat=True)) == [
        "expertflow",
        "ogangi",
        "primotexto",
        "simulator",
        "smsadvert",
        "vortext",
    ]
    membership = Membership.objects.get()
    assert membership.role == Membership.Role.ADMIN
    assert authenticate(username="admin", password="another-password") == membership.user
    assert SenderName.objects.get().status == SenderName.Status.APPROVED


def test_seed_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo", verbosity=0)
    assert not Account.objects.exists()
