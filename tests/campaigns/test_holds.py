"""A provider that refuses the provider account itself (credentials refused, a revoked key) puts
it on hold: its messages wait or fail over, none fails; admin and the dashboard say why."""

from uuid import uuid4

import pytest
from django.core.cache import cache

from campaigns.audit.models import AuditEntry
from campaigns.models import Campaign, Membership, Message
from campaigns.services import dispatch
from campaigns.services.holds import hold
from providers.models import ProviderAccount

from ..conftest import claim, dispatch_batch
from ..factories import (
    AccountFactory,
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    ProviderAccountFactory,
)

pytestmark = pytest.mark.django_db

Status = Message.Status


@pytest.fixture(autouse=True)
def fresh_cache(db):
    cache.clear()


def revoked(simulator, name="Revoked") -> ProviderAccount:
    """A provider account whose key the provider no longer takes (the simulator answers 401)."""
    return ProviderAccountFactory(
        name=name, base_url=simulator.url, credentials={"api_key": "revoked-key-0123456789"}
    )


def sends_to(simulator, message) -> int:
    """Calls the simulator took for `message` (its text is the test's own)."""
    return sum(
        1
        for entry in simulator.requests_log
        if entry.get("path") == "/simulator/messages"
        and (entry.get("body") or {}).get("text") == message.text
    )


def test_refused_credentials_hold_the_provider_account_and_the_message_waits(simulator):
    provider = revoked(simulator, "Primary")
    message = MessageFactory(account=AccountFactory(route=[provider]), text=f"Hold {uuid4()}")
    assert dispatch_batch() == 1

    message.refresh_from_db()
    assert message.status == Status.QUEUED  # not failed
    assert message.error_code == "401"
    assert message.attempts == 1 and message.step_attempts == 0  # no retry spent
    last = message.events.last()
    assert (last.from_status, last.to_status) == (Status.SENDING, Status.QUEUED)
    assert "Primary is on hold" in last.detail
    provider.refresh_from_db()
    assert provider.on_hold
    assert provider.hold_reason.startswith("credentials refused by Simulator (HTTP 401)")
    assert AuditEntry.objects.filter(object_id=str(provider.pk), changes__has_key="held_since")

    # Nothing more is claimed for it, nor counted as due: no call goes to the provider.
    assert dispatch_batch() == 0
    assert dispatch.due_count() == 0
    assert sends_to(simulator, message) == 1

    # The key is replaced and the hold released: the message goes.
    provider.credentials = {"api_key": "simulator-key"}
    provider.save()
    assert provider.release_hold()
    dispatch.forget_state()  # another process sees the release within a second
    assert dispatch_batch() == 1
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_reason) == (Status.SENT, "", "")


def test_messages_of_a_held_provider_account_fail_over_along_the_route(simulator):
    first = revoked(simulator, "First")
    second = ProviderAccountFactory(name="Second", base_url=simulator.url)
    account = AccountFactory(route=[first, second])
    messages = [MessageFactory(account=account, recipient=f"+3361234560{i}") for i in range(3)]
    dispatch_batch()  # all three go to First, which refuses the account
    dispatch_batch()  # First is on hold: Second takes them
    for message in messages:
        message.refresh_from_db()
        assert (message.status, message.provider_account) == (Status.SENT, second)
        assert message.route_step == 0  # failing over around a hold spends no step
    assert not Message.objects.filter(status=Status.FAILED).exists()


def test_a_revoked_key_fails_no_message_of_a_campaign(simulator, settings):
    settings.SMSHUB_DISPATCH_BATCH_SIZE = 50
    provider = revoked(simulator)
    account = AccountFactory(route=[provider])
    campaign = Campaign.objects.create(account=account, name="Spring", status="running")
    for i in range(120):
        MessageFactory(account=account, campaign=campaign, recipient=f"+33612{i:06d}")
    settings.SMSHUB_SEND_CONCURRENCY = 100
    claimed = dispatch.dispatch_for(5)
    assert claimed == 100  # two batches in flight at most; nothing was claimed after the hold
    assert set(campaign.messages.values_list("status", flat=True)) == {Status.QUEUED}
    assert ProviderAccount.objects.get(pk=provider.pk).on_hold


def test_a_held_route_does_not_hold_up_other_accounts(simulator):
    """Due messages are claimed oldest first: those that only a held provider account could
    take must not fill every claim while others wait behind them."""
    held = revoked(simulator)
    hold(held, "credentials refused by Simulator (HTTP 401)")
    stuck = AccountFactory(route=[held])
    for i in range(30):
        MessageFactory(account=stuck, recipient=f"+33612{i:06d}")
    other = AccountFactory(route=[ProviderAccountFactory(base_url=simulator.url)])
    waiting = [MessageFactory(account=other, recipient=f"+4074012345{i}") for i in range(3)]
    claimed = claim(10)
    assert sorted(m.pk for m in claimed) == [m.pk for m in waiting]
    assert dispatch.due_count() == 0  # the sweep publishes no task for the stuck ones


def test_a_categorys_own_route_is_blocked_apart_from_the_default_one(simulator):
    held = revoked(simulator)
    hold(held, "credentials refused")
    account = AccountFactory(route=[ProviderAccountFactory(base_url=simulator.url)])
    alerts = CategoryFactory(account=account, name="Alerts", tag="alerts")
    account.route_entries.create(provider_account=held, category=alerts, position=0)
    alert = MessageFactory(account=account, category=alerts, recipient="+33612000001")
    plain = MessageFactory(account=account, recipient="+33612000002")
    other = CategoryFactory(account=account, name="News", tag="news")  # no route of its own
    news = MessageFactory(account=account, category=other, recipient="+33612000003")
    assert sorted(m.pk for m in claim(10)) == [plain.pk, news.pk]
    alert.refresh_from_db()
    assert alert.status == Status.QUEUED


def test_a_secret_the_provider_echoes_is_masked_in_the_reason(simulator):
    provider = revoked(simulator)
    hold(provider, "credentials refused: unknown key revoked-key-0123456789")
    provider.refresh_from_db()
    assert "revoked-key-0123456789" not in provider.hold_reason
    assert provider.hold_reason.endswith("6789")


def test_admin_shows_the_hold_and_releases_it(admin_client, simulator):
    provider = revoked(simulator)
    hold(provider, "credentials refused by Simulator (HTTP 401): invalid api key")
    listing = admin_client.get("/admin/providers/provideraccount/?on_hold=yes").content.decode()
    assert "<strong>On hold</strong> since" in listing
    assert "credentials refused by Simulator (HTTP 401): invalid api key" in listing
    page = admin_client.get(f"/admin/providers/provideraccount/{provider.pk}/change/")
    assert "On hold since" in page.content.decode()
    assert "credentials refused by Simulator (HTTP 401): invalid api key" in page.content.decode()

    response = admin_client.post(
        "/admin/providers/provideraccount/",
        {"action": "release_hold", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert "Hold released on Revoked" in response.content.decode()
    provider.refresh_from_db()
    assert not provider.on_hold
    assert AuditEntry.objects.filter(
        object_id=str(provider.pk), actor_name="admin", changes__has_key="held_since"
    ).exists()


def test_new_credentials_saved_in_admin_release_the_hold(admin_client, simulator):
    provider = revoked(simulator)
    assert provider.slug == "simulator"  # its key is typed into the simulator's field
    hold(provider, "credentials refused by Simulator (HTTP 401)")
    response = admin_client.post(
        f"/admin/providers/provideraccount/{provider.pk}/change/",
        {
            "name": provider.name,
            "slug": "simulator",
            "base_url": provider.base_url,
            "simulator__api_key": "simulator-key",
            "enabled": "on",
            "priority": "100",
            "max_per_second": "",
        },
        follow=True,
    )
    assert "hold released" in response.content.decode()
    provider.refresh_from_db()
    assert not provider.on_hold
    assert provider.credentials == {"api_key": "simulator-key"}


def test_a_passing_connection_test_releases_the_hold(admin_client, simulator):
    provider = ProviderAccountFactory(name="Fixed", base_url=simulator.url)
    hold(provider, "credentials refused by Simulator (HTTP 401)")
    response = admin_client.post(
        "/admin/providers/provideraccount/",
        {"action": "test_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert "Hold released" in response.content.decode()
    provider.refresh_from_db()
    assert not provider.on_hold


def test_the_dashboard_says_which_provider_account_is_on_hold_and_why(client, simulator):
    provider = revoked(simulator, "Primotexto main")
    hold(provider, "credentials refused by Primotexto (HTTP 401): invalid key")
    member = MembershipFactory(
        account=AccountFactory(route=[provider]), role=Membership.Role.VIEWER
    ).user
    stranger = MembershipFactory(
        account=AccountFactory(route=[ProviderAccountFactory(base_url=simulator.url)])
    ).user

    client.force_login(member)
    page = client.get("/").content.decode()
    assert "Provider accounts on hold" in page
    assert "Primotexto main" in page
    assert "credentials refused by Primotexto (HTTP 401): invalid key" in page

    client.force_login(stranger)  # its routes do not go through it
    assert "Provider accounts on hold" not in client.get("/").content.decode()
