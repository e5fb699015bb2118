"""Audit trail: every change to a provider account, an account's settings, a route, a sender
name or an opt-out is recorded with who, when, through what and from what to what; secrets only
as "changed"; read-only in the admin."""

import json
import logging
import re
from datetime import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.audit.middleware import AuditMiddleware
from campaigns.audit.models import AuditEntry
from campaigns.audit.recorder import acting_as, record_created
from campaigns.audit.recorder import update as audit_update
from campaigns.models import Account, OptOut, RouteEntry, SenderName
from campaigns.services.inbound import receive_inbound
from providers.events import InboundSMS
from providers.exceptions import ProviderTemporaryError
from providers.forms import ProviderAccountForm
from providers.models import ProviderAccount

from ..factories import AccountFactory, ProviderAccountFactory, SenderNameFactory, UserFactory

pytestmark = pytest.mark.django_db

API_KEY = "pk-live-audit-secret-0123456789"
Action, Via = AuditEntry.Action, AuditEntry.Via


def entries_for(obj) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            content_type__model=obj._meta.model_name, object_id=str(obj.pk)
        ).order_by("id")
    )


def last_entry(obj) -> AuditEntry:
    return entries_for(obj)[-1]


def no_secret_in(entries, *secrets) -> bool:
    text = json.dumps([e.changes for e in entries]) + " ".join(e.object_repr for e in entries)
    return not any(secret in text for secret in secrets)


@pytest.fixture
def provider(db):
    return ProviderAccountFactory(name="Sim", credentials={"api_key": API_KEY, "region": "eu"})


@pytest.fixture
def account(provider):
    return AccountFactory(name="Acme", route=[provider])


def admin_form_data(response) -> dict:
    """What the browser would send back from an admin change page, unchanged."""
    data = {}

    def add(form, name):
        value = form[name].value()
        key = form.add_prefix(name)
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        elif value is not None:
            data[key] = str(value)

    form = response.context["adminform"].form
    for name in form.fields:
        add(form, name)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = str(value)
        for inline_form in formset.forms:
            for name in inline_form.fields:
                add(inline_form, name)
    return data


# --- changes made in the admin -----------------------------------------------------------------


def test_admin_change_to_a_provider_account(admin_client, admin_user, provider):
    url = reverse("admin:providers_provideraccount_change", args=[provider.pk])
    data = admin_form_data(admin_client.get(url))
    data["priority"] = "5"
    assert provider.slug == "simulator"
    data["simulator__api_key"] = "pk-live-replaced-9999"
    assert admin_client.post(url, data).status_code == 302
    provider.refresh_from_db()
    # "region" is no field of the form: kept as it was, so not a change.
    assert provider.credentials == {"api_key": "pk-live-replaced-9999", "region": "eu"}

    entry = last_entry(provider)
    assert (entry.action, entry.via, entry.actor, entry.actor_name) == (
        Action.CHANGED,
        Via.ADMIN,
        admin_user,
        admin_user.username,
    )
    assert entry.changes == {"credentials.api_key": "changed", "priority": [100, 5]}
    assert no_secret_in(entries_for(provider), API_KEY, "pk-live-replaced-9999")


def test_health_noted_during_an_admin_save_is_not_logged_as_a_change(
    admin_client, provider, monkeypatch
):
    """A worker notes the account's health (last success, last error) while an admin saves it:
    the admin's entry holds what the admin changed, not the health bookkeeping."""
    url = reverse("admin:providers_provideraccount_change", args=[provider.pk])
    data = admin_form_data(admin_client.get(url))
    data["priority"] = "5"
    clean = ProviderAccountForm.clean

    def clean_while_a_worker_notes_health(form):
        worker_copy = ProviderAccount.objects.get(pk=provider.pk)
        worker_copy.note_answers(
            [None, ProviderTemporaryError("timed out after 10s", code="network")]
        )
        return clean(form)

    monkeypatch.setattr(ProviderAccountForm, "clean", clean_while_a_worker_notes_health)
    assert admin_client.post(url, data).status_code == 302

    entry = last_entry(provider)
    assert entry.via == Via.ADMIN
    assert entry.changes == {"priority": [100, 5]}
    assert not AuditEntry.objects.filter(changes__has_key="last_error_code").exists()


def test_admin_rotating_secrets_records_them_as_changed(admin_client, provider, account):
    admin_client.post(
        reverse("admin:providers_provideraccount_changelist"),
        {"action": "rotate_webhook_token", "_selected_action": [provider.pk]},
    )
    admin_client.post(
        reverse("admin:campaigns_account_changelist"),
        {"action": "rotate_forward_secret", "_selected_action": [account.pk]},
    )
    provider.refresh_from_db()
    account.refresh_from_db()
    assert last_entry(provider).changes == {"webhook_token": "changed"}
    assert last_entry(account).changes == {"forward_secret": "changed"}
    assert last_entry(account).via == Via.ADMIN
    entries = AuditEntry.objects.all()
    assert no_secret_in(entries, provider.webhook_token, account.forward_secret, API_KEY)


def test_admin_change_to_flood_limits_and_route(admin_client, admin_user, account, provider):
    second = ProviderAccountFactory(name="Backup")
    url = reverse("admin:campaigns_account_change", args=[account.pk])
    data = admin_form_data(admin_client.get(url))
    data["flood_limit_per_minute"] = "60"
    data["quiet_hours_start"], data["quiet_hours_end"] = "21:00", "08:00"
    data["route_entries-0-position"] = "3"  # the existing step moves
    data["route_entries-TOTAL_FORMS"] = "2"  # and a new one is added
    data["route_entries-1-position"] = "1"
    data["route_entries-1-provider_account"] = str(second.pk)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["errors"]

    entry = last_entry(account)
    assert (entry.via, entry.actor, entry.account_id) == (Via.ADMIN, admin_user, account.pk)
    assert entry.changes == {
        "flood_limit_per_minute": [None, 60],
        "quiet_hours_end": [None, time(8).isoformat()],
        "quiet_hours_start": [None, time(21).isoformat()],
    }
    moved, added = RouteEntry.objects.filter(account=account).order_by("id")
    assert last_entry(moved).changes == {"position": [0, 3]}
    assert last_entry(added).action == Action.CREATED
    assert last_entry(added).changes["provider_account"] == [None, f"Backup (#{second.pk})"]
    assert last_entry(added).account_id == account.pk


def test_admin_approving_a_sender_name(admin_client, admin_user, account):
    sender = SenderNameFactory(account=account, name="CLINIC", status=SenderName.Status.PENDING)
    admin_client.post(
        reverse("admin:campaigns_sendername_changelist"),
        {"action": "approve", "_selected_action": [sender.pk]},
    )
    entry = last_entry(sender)
    assert (entry.action, entry.via, entry.actor) == (Action.CHANGED, Via.ADMIN, admin_user)
    assert entry.changes == {"status": ["pending", "approved"]}


def test_admin_adding_and_deleting_an_opt_out(admin_client, admin_user, account):
    response = admin_client.post(
        reverse("admin:campaigns_optout_add"),
        {"account": account.pk, "number": "+33611223344", "source": "staff", "keyword": ""},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    opt_out = OptOut.objects.get()
    created = last_entry(opt_out)
    assert (created.action, created.actor) == (Action.CREATED, admin_user)
    assert created.changes["number"] == [None, "+33611223344"]
    admin_client.post(reverse("admin:campaigns_optout_delete", args=[opt_out.pk]), {"post": "yes"})
    deleted = last_entry(opt_out)
    assert (deleted.action, deleted.via, deleted.account_id) == (
        Action.DELETED,
        Via.ADMIN,
        account.pk,
    )
    assert deleted.changes["number"] == ["+33611223344", None]


# --- changes made by services: the staff UI, the API, the system -------------------------------


def test_a_staff_ui_request_is_recorded_as_its_user(account):
    """What the middleware does for every staff UI view: the request's user made the change."""
    operator = UserFactory(username="olivia")
    request = RequestFactory().post("/senders/")
    request.user = operator

    def view(request):
        SenderName.objects.create(account=account, name="OLIVIA")
        Account.objects.filter(pk=account.pk).first().save()  # saved unchanged: nothing
        return None

    AuditMiddleware(view)(request)
    sender = SenderName.objects.get(name="OLIVIA")
    entry = last_entry(sender)
    assert (entry.action, entry.via, entry.actor, entry.actor_name) == (
        Action.CREATED,
        Via.WEB,
        operator,
        "olivia",
    )
    assert entry.changes["name"] == [None, "OLIVIA"]
    assert [e.action for e in entries_for(account)] == [Action.CREATED]


def test_an_api_request_is_recorded_as_the_api(account):
    request = RequestFactory().post("/api/v1/opt-outs/")
    request.user = AnonymousUser()  # an API key, not a logged-in user

    def view(request):
        OptOut.objects.create(account=account, number="+33611223355", source="api")

    AuditMiddleware(view)(request)
    entry = last_entry(OptOut.objects.get())
    assert (entry.via, entry.actor, entry.actor_name) == (Via.API, None, "anonymous")

    request.auth = "Booking site (sk_3f9a…)"  # what the API's key authentication leaves
    request.user = AnonymousUser()
    AuditMiddleware(lambda request: OptOut.objects.get().delete())(request)
    entry = last_entry(OptOut(pk=entry.object_id))
    assert (entry.action, entry.via, entry.actor_name) == (
        Action.DELETED,
        Via.API,
        "API key Booking site (sk_3f9a…)",
    )


def test_service_code_names_its_user_with_acting_as(account, provider):
    manager = UserFactory(username="manager")
    with acting_as(manager):
        account.flood_limit_per_hour = 1000
        account.save()
        provider.credentials = {**provider.credentials, "api_key": "pk-live-from-service-1"}
        provider.enabled = False
        provider.save()
        RouteEntry.objects.filter(account=account).delete()
    assert last_entry(account).changes == {"flood_limit_per_hour": [None, 1000]}
    assert last_entry(provider).changes == {
        "credentials.api_key": "changed",
        "enabled": [True, False],
    }
    assert last_entry(provider).actor == manager
    [deleted] = AuditEntry.objects.filter(action=Action.DELETED)
    assert (deleted.actor, deleted.via, deleted.account_id) == (manager, Via.WEB, account.pk)


def test_bulk_changes_are_recorded_through_the_helpers(account):
    OptOut.objects.bulk_create(
        [OptOut(account=account, number=n) for n in ("+33611223377", "+33611223388")]
    )
    with acting_as(UserFactory(username="importer")):
        assert record_created(OptOut.objects.filter(account=account)) == 2
        senders = SenderNameFactory.create_batch(3, account=account, status="pending")
        assert audit_update(SenderName.objects.filter(name=senders[0].name), status="approved") == 1
    created = AuditEntry.objects.filter(content_type__model="optout", action=Action.CREATED)
    assert {e.changes["number"][1] for e in created} == {"+33611223377", "+33611223388"}
    assert {e.actor_name for e in created} == {"importer"}
    assert last_entry(senders[0]).changes == {"status": ["pending", "approved"]}
    assert [e.action for e in entries_for(senders[1])] == [Action.CREATED]


def test_bulk_created_rows_are_recorded_in_a_few_queries_whatever_their_number(account, caplog):
    """An import of many opt-outs records each row, but reads the account once and writes the
    entries together: an import of 1,851 numbers took 10 s, one query per row for its account
    and one insert per entry."""
    other = AccountFactory(name="Other shop")

    def imported(how_many: int, first: int) -> tuple[int, list[AuditEntry]]:
        numbers = [f"+336112{first + i:05d}" for i in range(how_many)]
        OptOut.objects.bulk_create(
            [OptOut(account=a, number=n) for n in numbers for a in (account, other)]
        )
        rows = list(OptOut.objects.filter(number__in=numbers))  # read back: no account cached
        with CaptureQueriesContext(connection) as queries, acting_as(UserFactory()):
            assert record_created(rows) == 2 * how_many
        made = AuditEntry.objects.filter(
            content_type__model="optout", object_id__in=[str(row.pk) for row in rows]
        )
        return len(queries), list(made)

    few, _ = imported(3, 0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="campaigns.audit.recorder"):
        many, entries = imported(1200, 100)
    # 400 times the rows: no more queries but the entries' inserts, a thousand at a time.
    assert many <= few + 2400 // 1000
    assert len(entries) == 2400
    by_account = {entry.account_id: entry for entry in entries}
    assert set(by_account) == {account.pk, other.pk}
    assert by_account[other.pk].changes["account"] == [None, f"Other shop (#{other.pk})"]
    assert {entry.action for entry in entries} == {AuditEntry.Action.CREATED}
    [line] = [r.getMessage() for r in caplog.records if "created x" in r.getMessage()]
    assert line.startswith("audit: campaigns.OptOut created x2400 (#")


def test_stop_and_start_replies_are_recorded_as_the_system(account, provider):
    receive_inbound(provider, InboundSMS(from_number="+33612345678", to_number="", text="STOP"))
    opt_out = OptOut.objects.get()
    receive_inbound(provider, InboundSMS(from_number="+33612345678", to_number="", text="START"))
    created, deleted = entries_for(opt_out)
    assert (created.action, created.via, created.actor, created.actor_name) == (
        Action.CREATED,
        Via.SYSTEM,
        None,
        "",
    )
    assert created.changes["keyword"] == [None, "STOP"]
    assert deleted.action == Action.DELETED


def test_deleting_an_account_records_everything_that_went_with_it(account):
    SenderNameFactory(account=account, name="ACME")
    OptOut.objects.create(account=account, number="+33611223366")
    account_id = account.pk
    with acting_as(UserFactory(username="closer")):
        account.delete()
    deleted = AuditEntry.objects.filter(action=Action.DELETED, account_id=account_id)
    assert sorted(deleted.values_list("content_type__model", flat=True)) == [
        "account",
        "optout",
        "routeentry",
        "sendername",
    ]
    assert set(deleted.values_list("actor_name", flat=True)) == {"closer"}


def test_bookkeeping_saves_record_nothing(provider):
    before = AuditEntry.objects.count()
    provider.inbound_cursor = "2026-11-21T10:00:00Z"
    provider.save(update_fields=["inbound_cursor"])
    ProviderAccount.objects.get(pk=provider.pk).save()  # nothing changed
    assert AuditEntry.objects.count() == before


# --- the trail in the admin --------------------------------------------------------------------


def test_the_trail_is_shown_read_only_in_the_admin(admin_client, provider, account):
    with acting_as(UserFactory(username="olivia")):
        provider.credentials = {"api_key": "pk-live-shown-nowhere-77", "region": "eu"}
        provider.max_per_second = 20
        provider.save()
    entry = last_entry(provider)

    changelist = admin_client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    assert "olivia" in changelist and "Staff UI" in changelist
    assert "max_per_second" in changelist and "— → 20" in changelist
    assert "credentials.api_key" in changelist and "changed (secret, not recorded)" in changelist
    assert "pk-live-shown-nowhere-77" not in changelist and API_KEY not in changelist

    page = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))
    assert page.status_code == 200
    form = page.content.decode().split('id="auditentry_form"')[1].split("</form>")[0]
    inputs = re.findall(r"<input[^>]*>", form)
    assert all('type="hidden"' in tag for tag in inputs)  # the CSRF token only
    assert "<textarea" not in form and "<select" not in form
    assert "changed (secret, not recorded)" in form
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:audit_auditentry_change", args=[entry.pk]), {}).status_code
        == 403
    )
    assert (
        admin_client.get(reverse("admin:audit_auditentry_delete", args=[entry.pk])).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()

    # Each object's page links to its own trail.
    provider_page = admin_client.get(
        reverse("admin:providers_provideraccount_change", args=[provider.pk])
    ).content.decode()
    assert "Who changed what, and when" in provider_page
    trail = admin_client.get(
        reverse("admin:audit_auditentry_changelist"),
        {"content_type__id__exact": entry.content_type_id, "object_id": provider.pk},
    )
    assert set(trail.context["cl"].result_list) == set(entries_for(provider))
    account_trail = admin_client.get(
        reverse("admin:audit_auditentry_changelist"), {"account_id": account.pk}
    )
    shown = {e.content_type.model for e in account_trail.context["cl"].result_list}
    assert shown == {"account", "routeentry"}


def test_opt_outs_added_from_the_staff_ui_are_recorded(client, account):
    """The opt-out page adds numbers in bulk: each new one is in the trail, with its user."""
    from campaigns.models import Membership

    from ..factories import MembershipFactory

    admin = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    client.force_login(admin)
    client.post(reverse("campaigns:optout_add"), {"number": "+33612345601"})
    opt_out = OptOut.objects.get(account=account)
    entry = last_entry(opt_out)
    assert (entry.action, entry.via, entry.actor) == (Action.CREATED, Via.WEB, admin)
