"""The dispatch engine's rules: flood limits, failover, circuit breaker, windows, quiet hours,
paused campaigns, and concurrent claimers that never take the same message."""

import threading
import time
from datetime import datetime, timedelta
from datetime import time as clock

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections
from django.utils import timezone

from campaigns.models import Campaign, Message, RouteEntry
from campaigns.services import dispatch
from providers import circuit

from ..conftest import claim, dispatch_batch
from ..factories import (
    AccountFactory,
    CampaignFactory,
    CategoryFactory,
    MessageFactory,
    ProviderAccountFactory,
)

pytestmark = pytest.mark.django_db

Status = Message.Status
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fresh_cache(db):
    cache.clear()


def queued(account, count, segments=1, **kwargs):
    return [
        MessageFactory(account=account, recipient=f"+336123400{i:02d}", segments=segments, **kwargs)
        for i in range(count)
    ]


def age_claims(account, seconds):
    """As if the messages claimed so far had been claimed `seconds` ago."""
    Message.objects.filter(account=account, claimed_at__isnull=False).update(
        claimed_at=timezone.now() - timedelta(seconds=seconds)
    )
    dispatch.forget_state()


def test_an_account_minute_limit_counts_segments_and_makes_messages_wait(provider_account):
    account = AccountFactory(route=[provider_account], flood_limit_per_minute=5)
    queued(account, 2, segments=2)  # 4 segments
    queued(account, 3, segments=1)
    first = claim(100)
    assert sum(m.segments for m in first) == 5  # 2 + 2 + 1: the next would make 6
    assert claim(100) == []
    assert Message.objects.filter(status=Status.QUEUED).count() == 2  # waiting, not failed
    age_claims(account, 30)
    assert claim(100) == []  # still inside the same sliding minute
    age_claims(account, 63)
    assert len(claim(100)) == 2


def test_an_hour_limit(provider_account):
    account = AccountFactory(route=[provider_account], flood_limit_per_hour=3)
    queued(account, 5)
    assert len(claim(100)) == 3
    age_claims(account, 120)
    assert claim(100) == []


def test_one_accounts_limit_does_not_hold_up_another(provider_account):
    limited = AccountFactory(route=[provider_account], flood_limit_per_minute=1)
    other = AccountFactory(route=[provider_account])
    queued(limited, 5)
    MessageFactory(account=other, recipient="+33699999999")
    claimed = claim(100)
    assert sorted(m.account_id for m in claimed) == sorted([limited.pk, other.pk])
    later = MessageFactory(account=other, recipient="+33699999998")
    assert [m.pk for m in claim(2)] == [later.pk]  # the held account is skipped


def test_a_provider_per_second_limit(simulator):
    provider = ProviderAccountFactory(base_url=simulator.url, max_per_second=3)
    account = AccountFactory(route=[provider])
    queued(account, 5)
    batch = dispatch.claim_batch(100)
    assert len(batch.messages) == 3
    assert batch.waiting  # the rest can go in the next second
    assert Message.objects.filter(status=Status.QUEUED).count() == 2
    claimed = Message.objects.filter(claimed_at__isnull=False)
    claimed.update(claimed_at=timezone.now() - timedelta(seconds=2))
    assert claim(100) == []  # still in flight: they count until their calls are done
    claimed.update(status=Status.SENT, sent_at=timezone.now() - timedelta(seconds=0.2))
    assert claim(100) == []  # answered less than a second ago: counted a while yet
    claimed.update(sent_at=timezone.now() - timedelta(seconds=1.1))
    batch = dispatch.claim_batch(100)
    assert len(batch.messages) == 2
    assert batch.not_before == {}  # the budget is free now: sent at once


def test_per_second_budget_freeing_soon_is_claimed_ahead_and_the_call_waits_for_it(simulator):
    provider = ProviderAccountFactory(base_url=simulator.url, max_per_second=2)
    account = AccountFactory(route=[provider])
    first = queued(account, 2)
    dispatch_batch()
    # One message needs one call's budget: the first answered frees it a second later.
    answered = min(m.sent_at for m in Message.objects.filter(pk__in=[m.pk for m in first]))
    later = MessageFactory(account=account, recipient="+33612349999")
    dispatch.dispatch_for(10)  # claims `later` within `AHEAD` of the budget freeing
    later.refresh_from_db()
    assert later.status == Status.SENT
    arrived = max(
        datetime.fromisoformat(e["at"])
        for e in simulator.requests_log
        if e["kind"] == "request" and e["path"] == "/simulator/messages"
    )
    # Not a moment sooner (the log keeps milliseconds): the limit holds.
    assert arrived >= answered + timedelta(seconds=1) - timedelta(milliseconds=1)
    assert later.claimed_at < answered + timedelta(seconds=1)  # claimed before the budget freed


def test_failover_to_the_next_provider_of_the_route(settings, simulator):
    settings.SMSHUB_MAX_ATTEMPTS = 2
    settings.SMSHUB_RETRY_BASE_DELAY = 0
    broken = ProviderAccountFactory(name="Broken", base_url=CLOSED_PORT)
    working = ProviderAccountFactory(name="Working", base_url=simulator.url)
    account = AccountFactory(route=[broken, working])
    message = MessageFactory(account=account)
    for _ in range(2):  # two tries on the broken one
        dispatch_batch()
        message.refresh_from_db()
        assert message.status == Status.RETRYING
        dispatch.promote_due(now=timezone.now() + timedelta(seconds=1))
    assert message.route_step == 1
    assert "failing over to Working" in message.events.filter(to_status="retrying").last().detail
    dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_account == working
    assert message.attempts == 3


def test_retries_spent_on_every_provider_fail_the_message(settings):
    settings.SMSHUB_MAX_ATTEMPTS = 1
    account = AccountFactory(route=[ProviderAccountFactory(base_url=CLOSED_PORT)])
    message = MessageFactory(account=account)
    dispatch_batch()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "could not reach" in message.error_reason
    assert "Retries spent on every provider account" in message.events.last().detail


def test_a_refusal_of_the_message_fails_it_at_once_without_failover(simulator):
    first = ProviderAccountFactory(base_url=simulator.url)
    account = AccountFactory(route=[first, ProviderAccountFactory(base_url=simulator.url)])
    message = MessageFactory(account=account, recipient="+0612345678")  # not a number it takes
    dispatch_batch()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "400")
    assert message.provider_account == first
    assert "E.164" in message.error_reason


def test_the_circuit_opens_after_failures_and_traffic_goes_to_the_next_provider(
    settings, simulator
):
    settings.SMSHUB_CIRCUIT_FAILURES = 2
    settings.SMSHUB_CIRCUIT_OPEN_SECONDS = 0.5
    broken = ProviderAccountFactory(name="Broken", base_url=CLOSED_PORT)
    working = ProviderAccountFactory(name="Working", base_url=simulator.url)
    account = AccountFactory(route=[broken, working])
    queued(account, 2)
    dispatch_batch()  # both fail on Broken: two failures in a row
    assert circuit.state(broken.pk) == circuit.OPEN
    fresh = MessageFactory(account=account, recipient="+33699999999")
    dispatch_batch()
    fresh.refresh_from_db()
    assert (fresh.status, fresh.provider_account) == (Status.SENT, working)
    time.sleep(0.6)
    assert circuit.state(broken.pk) == circuit.HALF_OPEN
    assert circuit.allowance(broken.pk) == 1  # one probe
    assert circuit.allowance(broken.pk) == 0  # and only one
    circuit.record_batch(broken.pk, [True])  # the probe answered
    assert circuit.state(broken.pk) == circuit.CLOSED


def test_the_admin_shows_the_circuit(admin_client, settings):
    settings.SMSHUB_CIRCUIT_FAILURES = 1
    provider = ProviderAccountFactory(name="Flaky")
    circuit.record_batch(provider.pk, [False])
    page = admin_client.get("/admin/providers/provideraccount/").content.decode()
    assert "circuit open until" in page


def test_a_send_window(provider_account):
    account = AccountFactory(route=[provider_account])
    now = timezone.now()
    later = MessageFactory(
        account=account, window_start=now + timedelta(hours=1), window_end=now + timedelta(hours=2)
    )
    missed = MessageFactory(
        account=account,
        recipient="+33699999999",
        window_start=now - timedelta(hours=2),
        window_end=now - timedelta(hours=1),
    )
    assert dispatch.expire_windows() == 1
    assert claim(100) == []
    missed.refresh_from_db()
    later.refresh_from_db()
    assert missed.status == Status.EXPIRED
    assert "window ended" in missed.error_reason
    assert later.status == Status.QUEUED


def test_quiet_hours_hold_messages_without_failing_them(provider_account):
    local_now = timezone.now().astimezone(timezone.get_fixed_timezone(60))
    account = AccountFactory(
        route=[provider_account],
        timezone="Etc/GMT-1",
        quiet_hours_start=(local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_hours_end=(local_now + timedelta(hours=1)).time().replace(second=0, microsecond=0),
    )
    message = MessageFactory(account=account)
    assert claim(100) == []
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_quiet_hours_across_midnight():
    account = AccountFactory.build(
        timezone="Europe/Paris", quiet_hours_start=clock(21), quiet_hours_end=clock(8)
    )
    paris = timezone.get_fixed_timezone(60)  # November: UTC+1
    night = timezone.datetime(2026, 11, 21, 23, 30, tzinfo=paris)
    assert account.in_quiet_hours(night).hour == 8
    assert account.in_quiet_hours(night).day == 22
    assert account.in_quiet_hours(timezone.datetime(2026, 11, 21, 12, 0, tzinfo=paris)) is None
    assert account.in_quiet_hours(timezone.datetime(2026, 11, 21, 7, 59, tzinfo=paris)).day == 21


def test_a_paused_campaigns_messages_wait(provider_account):
    account = AccountFactory(route=[provider_account])
    campaign = Campaign.objects.create(account=account, name="Spring", status="paused")
    queued(account, 2, campaign=campaign)
    assert claim(100) == []
    campaign.status = "running"
    campaign.save()
    assert len(claim(100)) == 2


def test_a_campaign_never_sends_twice_to_a_number(provider_account):
    campaign = Campaign.objects.create(account=AccountFactory(), name="Once")
    MessageFactory(account=campaign.account, campaign=campaign, recipient="+33612345678")
    with pytest.raises(IntegrityError):
        MessageFactory(account=campaign.account, campaign=campaign, recipient="+33612345678")


@pytest.mark.django_db(transaction=True)
def test_four_concurrent_claimers_never_take_the_same_message(provider_account):
    account = AccountFactory(route=[provider_account])
    Message.objects.bulk_create(
        Message(account=account, recipient=f"+3361234{i:04d}", text="x", status="queued")
        for i in range(400)
    )
    taken, errors = [], []
    barrier = threading.Barrier(4)

    def claimer():
        barrier.wait()
        try:
            while batch := claim(25):
                taken.extend(m.pk for m in batch)
        except Exception as exc:  # surfaced below: a "database is locked" must not happen
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(taken) == len(set(taken)) == 400
    assert Message.objects.filter(status=Status.SENDING).count() == 400


def test_staff_may_resend_an_unknown_message_explicitly(admin_client, provider_account):
    account = AccountFactory(route=[provider_account])
    unknown = MessageFactory(account=account, status=Status.UNKNOWN)
    sent = MessageFactory(account=account, recipient="+33699999999", status=Status.SENT)
    response = admin_client.post(
        "/admin/campaigns/message/",
        {"action": "resend_unknown", "_selected_action": [unknown.pk, sent.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 message queued to send again. 1 skipped" in page
    unknown.refresh_from_db()
    sent.refresh_from_db()
    assert (unknown.status, sent.status) == (Status.QUEUED, Status.SENT)
    assert "Sent again on request by admin" in unknown.events.last().detail


def test_a_limit_holds_when_accounts_messages_interleave(provider_account):
    limited = AccountFactory(route=[provider_account], flood_limit_per_minute=2)
    other = AccountFactory(route=[provider_account])
    for i in range(4):  # limited, other, limited, other...
        MessageFactory(account=limited, recipient=f"+3361234500{i}")
        MessageFactory(account=other, recipient=f"+3361234600{i}")
    claimed = claim(100)
    assert sum(m.account_id == limited.pk for m in claimed) == 2
    assert sum(m.account_id == other.pk for m in claimed) == 4


def test_messages_of_a_category_follow_its_own_route(simulator):
    default = ProviderAccountFactory(name="Default", base_url=simulator.url)
    marketing_route = ProviderAccountFactory(name="Marketing", base_url=simulator.url)
    account = AccountFactory(route=[default])
    marketing, billing = CategoryFactory(account=account), CategoryFactory(account=account)
    RouteEntry.objects.create(
        account=account, category=marketing, provider_account=marketing_route, position=0
    )
    promo = MessageFactory(account=account, category=marketing, recipient="+33612340001")
    invoice = MessageFactory(account=account, category=billing, recipient="+33612340002")
    plain = MessageFactory(account=account, recipient="+33612340003")
    dispatch_batch()
    for message in (promo, invoice, plain):
        message.refresh_from_db()
        assert message.status == Status.SENT
    assert promo.provider_account == marketing_route
    assert invoice.provider_account == default  # a category without a route: the default one
    assert plain.provider_account == default


def test_a_category_route_fails_over_within_itself(settings, simulator):
    settings.SMSHUB_MAX_ATTEMPTS = 1
    broken = ProviderAccountFactory(name="Broken", base_url=CLOSED_PORT)
    backup = ProviderAccountFactory(name="Backup", base_url=simulator.url)
    account = AccountFactory(route=[ProviderAccountFactory(name="Default", base_url=CLOSED_PORT)])
    category = CategoryFactory(account=account)
    for position, provider in enumerate([broken, backup]):
        RouteEntry.objects.create(
            account=account, category=category, provider_account=provider, position=position
        )
    message = MessageFactory(account=account, category=category)
    dispatch_batch()
    message.refresh_from_db()
    assert "failing over to Backup" in message.events.filter(to_status="retrying").last().detail
    dispatch.promote_due(now=timezone.now() + timedelta(seconds=1))
    dispatch_batch()
    message.refresh_from_db()
    assert (message.status, message.provider_account) == (Status.SENT, backup)


def test_a_route_entry_refuses_another_accounts_category():
    account, other = AccountFactory(), AccountFactory()
    entry = RouteEntry(
        account=account,
        category=CategoryFactory(account=other),
        provider_account=ProviderAccountFactory(),
    )
    with pytest.raises(ValidationError, match="another account"):
        entry.full_clean()


SMSADVERT = {"token": "smsadvert-token"}


def numbered(account, prefix: str, count: int, text: str) -> list[Message]:
    """Messages to numbers no other test uses: the session simulator's log is shared."""
    return [
        MessageFactory(account=account, recipient=f"+336{prefix}{i:04d}", text=text)
        for i in range(count)
    ]


def smsadvert_calls(simulator, messages) -> list[dict]:
    """The successful calls the simulator's SMSAdvert received for these messages."""
    numbers = {m.recipient for m in messages}
    return [
        e
        for e in simulator.requests_log
        if e.get("kind") == "request"
        and e["path"] == "/api/sms/"
        and e["status"] == 200
        and numbers & set(e["body"]["phone"].split(","))
    ]


def test_smsadvert_gets_many_recipients_in_one_call(simulator):
    provider = ProviderAccountFactory(
        name="SMSAdvert",
        slug="smsadvert",
        base_url=simulator.url,
        credentials={**SMSADVERT, "multi_recipient": True},  # the explicit choice
    )
    account = AccountFactory(route=[provider])
    messages = numbered(account, "5551", 5, "The pharmacy is open on Sunday")
    other_text = MessageFactory(account=account, recipient="+33655529999", text="Another text")
    dispatch_batch()
    calls = smsadvert_calls(simulator, [*messages, other_text])
    assert len(calls) == 2  # one per text
    together = next(c for c in calls if "," in c["body"]["phone"])
    assert sorted(together["body"]["phone"].split(",")) == sorted(m.recipient for m in messages)
    assert "callback" not in together["body"]  # one msgId for all: no per-message report
    for message in [*messages, other_text]:
        message.refresh_from_db()
        assert message.status == Status.SENT
    assert {m.provider_message_id.rsplit(":", 1)[1] for m in messages} == {
        m.recipient for m in messages
    }
    assert "callback" in next(c for c in calls if "," not in c["body"]["phone"])["body"]


def test_smsadvert_one_number_per_call_by_default_each_with_its_report(simulator):
    provider = ProviderAccountFactory(
        name="SMSAdvert", slug="smsadvert", base_url=simulator.url, credentials=SMSADVERT
    )
    account = AccountFactory(route=[provider])
    messages = numbered(account, "5553", 3, "The pharmacy is open on Sunday")
    dispatch_batch()
    calls = smsadvert_calls(simulator, messages)
    assert sorted(c["body"]["phone"] for c in calls) == sorted(m.recipient for m in messages)
    assert all(c["body"]["callback"] for c in calls)
    for message in messages:
        message.refresh_from_db()
        assert message.status == Status.SENT and ":" not in message.provider_message_id


def test_the_sweep_keeps_at_most_the_configured_dispatch_tasks(settings, provider_account):
    """A campaign costs a few broker messages: the sweep tops dispatch tasks up to the
    configured number, and publishes again only when a task gives its slot back."""
    from celery.signals import before_task_publish

    from campaigns import tasks

    settings.SMSHUB_DISPATCHERS, settings.SMSHUB_DISPATCH_BATCH_SIZE = 3, 10
    account = AccountFactory(route=[provider_account])
    Message.objects.bulk_create(
        Message(account=account, recipient=f"+3361255{i:04d}", text="Hello", segments=1)
        for i in range(50)
    )
    published = []

    def count(sender=None, body=None, **kwargs):
        if sender == "campaigns.dispatch":
            published.append(body[0])  # the task's arguments: (slot,)

    before_task_publish.connect(count, weak=False)
    try:
        tasks.sweep()
        assert sorted(published) == [(0,), (1,), (2,)]
        tasks.sweep()
        assert len(published) == 3  # all three still hold their slots
        tasks.dispatch(slot=1)  # a task runs, sends, and gives its slot back
        assert Message.objects.filter(status=Status.SENT).count() == 50
        Message.objects.bulk_create(
            Message(account=account, recipient=f"+3361256{i:04d}", text="Hello", segments=1)
            for i in range(50)
        )
        tasks.sweep()
        assert published[3:] == [(1,)]
    finally:
        before_task_publish.disconnect(count)


def test_a_nudged_task_with_a_full_first_batch_starts_the_others_at_once(
    settings, provider_account
):
    """A new campaign's nudge starts one task: seeing more due than a batch, it publishes the
    tasks the messages need (up to the slots) rather than leaving them to the next sweep."""
    from celery.signals import before_task_publish

    from campaigns import tasks

    settings.SMSHUB_DISPATCHERS, settings.SMSHUB_DISPATCH_BATCH_SIZE = 3, 10
    account = AccountFactory(route=[provider_account])
    Message.objects.bulk_create(
        Message(account=account, recipient=f"+3361257{i:04d}", text="Hello", segments=1)
        for i in range(50)
    )
    published = []

    def count(sender=None, body=None, **kwargs):
        if sender == "campaigns.dispatch":
            published.append(body[0])

    before_task_publish.connect(count, weak=False)
    try:
        tasks.dispatch()  # the nudged one: no slot of its own
    finally:
        before_task_publish.disconnect(count)
    assert sorted(published) == [(0,), (1,), (2,)]
    assert Message.objects.filter(status=Status.SENT).count() == 50


def test_a_campaign_arriving_after_a_tasks_first_claim_starts_the_others_at_once(
    settings, provider_account, monkeypatch, published
):
    """The task a new campaign's nudge started may claim first while the campaign is still being
    written (a partial batch): the first full batch it claims publishes the other tasks."""
    from campaigns import tasks

    settings.SMSHUB_DISPATCHERS, settings.SMSHUB_DISPATCH_BATCH_SIZE = 3, 10
    account = AccountFactory(route=[provider_account])
    queued(account, 3)
    campaign = CampaignFactory(account=account, status=Campaign.Status.IMPORTING)
    Message.objects.bulk_create(
        Message(account=account, campaign=campaign, recipient=f"+3361258{i:04d}", text="Hi")
        for i in range(50)
    )
    real = tasks.dispatch_service.dispatch_for

    def campaign_written_after_the_first_claim(seconds, after_batch, linger):
        def after(batch):
            after_batch(batch)
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)

        return real(seconds, after, linger)

    monkeypatch.setattr(
        tasks.dispatch_service, "dispatch_for", campaign_written_after_the_first_claim
    )
    tasks.dispatch()  # the nudged one: no slot of its own
    assert sorted(published) == [(0,), (1,), (2,)]
    assert Message.objects.filter(status=Status.SENT).count() == 53


def test_calls_in_flight_at_most_per_provider_account(simulator):
    """Providers cap concurrent connections: a provider account's messages being sent, by any
    worker, never exceed its "calls in flight at most"; the others wait, never fail."""
    provider = ProviderAccountFactory(base_url=simulator.url, max_in_flight=3)
    account = AccountFactory(route=[provider])
    queued(account, 10)
    assert len(claim(10)) == 3  # claimed: being sent from now on
    assert claim(10) == []  # another worker finds no room
    Message.objects.filter(status=Status.SENDING).update(status=Status.SENT)  # answered
    assert dispatch_batch() == 3
    assert Message.objects.filter(status=Status.SENT).count() == 6
    assert Message.objects.filter(status=Status.QUEUED).count() == 4


@pytest.fixture
def published():
    """The arguments of every dispatch task published meanwhile, in order."""
    from celery.signals import before_task_publish

    seen = []

    def count(sender=None, body=None, **kwargs):
        if sender == "campaigns.dispatch":
            seen.append(tuple(body[0]))

    before_task_publish.connect(count, weak=False)
    yield seen
    before_task_publish.disconnect(count)


def test_a_burst_of_single_sends_wakes_one_dispatch_task(
    provider_account, published, django_capture_on_commit_callbacks
):
    """However many messages arrive, a task is published only when none is awake: the one
    running takes them, in batches; once it has given its slot back, the next message wakes
    another."""
    from campaigns import tasks
    from campaigns.services import wake
    from campaigns.services.compose import enqueue_message

    account = AccountFactory(route=[provider_account])
    for i in range(40):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_message(account, recipient=f"+3361258{i:04d}", text="Hello")
    assert published == [(0,)]

    assert tasks.dispatch(slot=0) == 40
    assert Message.objects.filter(status=Status.SENT).count() == 40
    # The next message arrives after this process's recheck interval (wake.RECHECK): on a fast
    # machine the 40 sends above may take less.
    wake.forget()
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_message(account, recipient="+33612590000", text="Hello")
    assert published == [(0,), (0,)]


def test_a_message_queued_as_its_task_ends_gets_a_task(
    provider_account, published, monkeypatch, django_capture_on_commit_callbacks
):
    """A message committed after a task's last look for work, while the task still held its
    slot (so its nudge published nothing), is not left for the sweep: the task, giving its
    slot back, sees it queued and publishes another."""
    from campaigns import tasks
    from campaigns.services import wake
    from campaigns.services.compose import enqueue_message

    account = AccountFactory(route=[provider_account])
    wake.hold_slot(0)  # the task below, published and running
    real = dispatch.dispatch_for

    def last_look_then_a_message(*args, **kwargs):
        total = real(*args, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_message(account, recipient="+33612591111", text="Hello")
        return total

    monkeypatch.setattr(dispatch, "dispatch_for", last_look_then_a_message)
    tasks.dispatch(slot=0)
    assert published == [(0,)]  # by the ending task: the message's own nudge saw slot 0 held
    assert Message.objects.get(recipient="+33612591111").status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_lingering_dispatch_loop_takes_messages_queued_meanwhile(provider_account):
    """A dispatch task stays a moment after its last work: a message queued then is sent by
    it, without another task."""
    account = AccountFactory(route=[provider_account])
    result = {}
    loop = threading.Thread(target=lambda: result.update(n=dispatch.dispatch_for(10, linger=2)))
    loop.start()
    time.sleep(0.5)
    message = MessageFactory(account=account, recipient="+33612592222")
    loop.join(timeout=15)
    connections.close_all()
    assert result == {"n": 1}
    message.refresh_from_db()
    assert message.status == Status.SENT
