"""The admin: every page opens, provider secrets never show in full, actions never 500."""

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns import models as campaigns_models
from campaigns.models import (
    Account,
    Campaign,
    Category,
    Forward,
    ForwardAttempt,
    Membership,
    Message,
    MessageEvent,
    OptOut,
    PendingDeliveryReport,
    Reply,
    RouteEntry,
    SenderName,
    WebhookRequest,
)
from providers.models import ProviderAccount

SECRET = "super-secret-key-123456"
MASKED = "••••••••3456"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


def make_provider_account(**kwargs) -> ProviderAccount:
    fields = {
        "name": "Sim",
        "slug": "simulator",
        "base_url": CLOSED_PORT_URL,
        "credentials": {"api_key": SECRET, "username": "acme-user"},
    }
    return ProviderAccount.objects.create(**{**fields, **kwargs})


@pytest.fixture
def objects(admin_user) -> dict[type, object]:
    """One instance of every model the admin shows."""
    provider = make_provider_account()
    account = Account.objects.create(name="Acme", timezone="Europe/Paris")
    route = RouteEntry.objects.create(account=account, provider_account=provider, position=0)
    member = get_user_model().objects.create_user("operator", "operator@example.com", "pw")
    membership = Membership.objects.create(user=member, account=account)
    sender = SenderName.objects.create(account=account, name="ACME")
    category = Category.objects.create(account=account, name="Appointments", tag="appointments")
    campaign = Campaign.objects.create(
        account=account, name="Spring", category=category, text="Hello", created_by=admin_user
    )
    message = Message.objects.create(
        account=account,
        campaign=campaign,
        category=category,
        recipient="+33612345678",
        sender="ACME",
        text="Hello",
        status=Message.Status.SENT,
        provider_account=provider,
        provider_message_id="sim-1",
        created_by=admin_user,
    )
    event = MessageEvent.objects.create(
        message=message,
        from_status=Message.Status.QUEUED,
        to_status=Message.Status.SENT,
        source=MessageEvent.Source.PROVIDER,
        payload={"id": "sim-1"},
    )
    reply = Reply.objects.create(
        account=account,
        message=message,
        provider_account=provider,
        from_number="+33612345678",
        text="STOP",
    )
    opt_out = OptOut.objects.create(
        account=account, number="+33612345678", source=OptOut.Source.REPLY, keyword="STOP"
    )
    webhook_request = WebhookRequest.objects.create(
        provider_account=provider,
        kind="dlr",
        body='{"id": "sim-2", "status": "delivered"}',
        status=WebhookRequest.Status.UNMATCHED,
    )
    pending = PendingDeliveryReport.objects.create(
        provider_account=provider,
        provider_message_id="sim-2",
        status="delivered",
        webhook_request=webhook_request,
    )
    forward = Forward.objects.create(account=account, event="reply", payload={"text": "STOP"})
    ForwardAttempt.objects.create(forward=forward, url="http://127.0.0.1:9/", error="refused")
    instances = [
        webhook_request,
        pending,
        forward,
        provider,
        account,
        route,
        membership,
        sender,
        category,
        campaign,
        message,
        event,
        reply,
        opt_out,
    ]
    return {type(obj): obj for obj in instances}


def admin_url(model: type, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


REGISTERED = [
    WebhookRequest,
    PendingDeliveryReport,
    Forward,
    ProviderAccount,
    Account,
    Membership,
    SenderName,
    Category,
    Campaign,
    Message,
    MessageEvent,
    Reply,
    OptOut,
]


def test_every_campaigns_model_is_in_the_admin():
    models = {m for m in vars(campaigns_models).values() if isinstance(m, type)}
    domain = {m for m in models if m.__module__ == "campaigns.models" and hasattr(m, "_meta")}
    # Route entries and forwarding attempts are shown inline.
    assert domain - {RouteEntry, ForwardAttempt} <= set(admin.site._registry)
    assert ProviderAccount in admin.site._registry


@pytest.mark.django_db
@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m.__name__)
def test_admin_pages_open(admin_client, objects, model):
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    assert (
        admin_client.get(admin_url(model, "changelist"), {"q": "+33 6 12 34 56 78"}).status_code
        == 200
    )
    obj = objects[model]
    assert admin_client.get(admin_url(model, "change", obj.pk)).status_code == 200
    assert admin_client.get(admin_url(model, "history", obj.pk)).status_code == 200
    add = admin_client.get(admin_url(model, "add"))
    model_admin = admin.site._registry[model]
    if model_admin.has_add_permission(add.wsgi_request):
        assert add.status_code == 200
    else:
        assert add.status_code == 403


@pytest.mark.django_db
def test_message_admin_is_read_only_with_its_timeline(admin_client, objects):
    message = objects[Message]
    page = admin_client.get(admin_url(Message, "change", message.pk)).content.decode()
    assert 'name="text"' not in page  # no editable field
    assert "sim-1" in page  # the event's payload, in the timeline
    assert admin_url(Message, "delete", message.pk) in page
    response = admin_client.post(admin_url(Message, "change", message.pk), {"text": "Changed"})
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.text == "Hello"


@pytest.mark.django_db
def test_message_search_finds_a_number_typed_with_spaces(admin_client, objects):
    response = admin_client.get(admin_url(Message, "changelist"), {"q": "+33 6 12 34 56 78"})
    assert list(response.context["cl"].result_list) == [objects[Message]]
    response = admin_client.get(admin_url(Message, "changelist"), {"q": "+33699999999"})
    assert list(response.context["cl"].result_list) == []


# --- provider accounts: credentials ----------------------------------------------------------


def change_form_data(account: ProviderAccount, **credentials: str) -> dict[str, str]:
    """The change form as posted: the account's fields, and its kind's credential fields
    (`<slug>__<key>`) as given (a secret left out is sent empty: the stored one is kept)."""
    return {
        "name": account.name,
        "slug": account.slug,
        "base_url": account.base_url,
        "enabled": "on",
        "priority": str(account.priority),
        "max_per_second": "",
        "_save": "Save",
        **{f"{account.slug}__{key}": value for key, value in credentials.items()},
    }


@pytest.mark.django_db
def test_secret_is_masked_on_change_page_and_changelist(admin_client, objects):
    account = objects[ProviderAccount]
    change = admin_client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    changelist = admin_client.get(admin_url(ProviderAccount, "changelist")).content.decode()
    for page in (change, changelist):
        assert SECRET not in page
    assert MASKED in change
    assert "acme-user" in change  # not a secret


@pytest.mark.django_db
def test_view_only_staff_sees_the_masked_secret_only(client, objects):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client.force_login(user)
    account = objects[ProviderAccount]
    page = client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    assert SECRET not in page
    assert MASKED in page


@pytest.mark.django_db
def test_view_only_staff_sees_the_webhook_urls_with_their_token_masked(client, objects):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client.force_login(user)
    account = objects[ProviderAccount]
    token = account.webhook_token
    page = client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    assert token not in page
    assert token[4:12] not in page
    for kind in ("dlr", "inbound"):
        masked = account.webhook_url(kind).replace(f"/{token}/", f"/{token[:4]}…/")
        assert f"<code>{masked}</code>" in page
    assert "token hidden" in page


@pytest.mark.django_db
def test_a_secret_left_empty_keeps_the_stored_one_and_other_keys_stay(admin_client, objects):
    account = objects[ProviderAccount]
    data = change_form_data(account, api_key="")
    data["priority"] = "5"
    response = admin_client.post(admin_url(ProviderAccount, "change", account.pk), data)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.priority == 5
    # "username" is not a simulator credential: kept as it was.
    assert account.credentials == {"api_key": SECRET, "username": "acme-user"}
    history = admin_client.get(admin_url(ProviderAccount, "history", account.pk)).content.decode()
    assert SECRET not in history
    assert not LogEntry.objects.filter(change_message__contains=SECRET).exists()


@pytest.mark.django_db
def test_a_typed_secret_replaces_the_stored_one_and_is_never_logged(admin_client, objects):
    account = objects[ProviderAccount]
    data = change_form_data(account, api_key="a-brand-new-key-987654")
    response = admin_client.post(admin_url(ProviderAccount, "change", account.pk), data)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"api_key": "a-brand-new-key-987654", "username": "acme-user"}
    assert not LogEntry.objects.filter(change_message__contains="987654").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credentials", "error"),
    [
        ({"api_key": "••••••••9999"}, "This is a masked value: type the full value."),
        (
            {"api_key": "", "api_key__clear": "on"},
            "This field is required: type a new value rather than clearing it.",
        ),
    ],
)
def test_bad_credentials_are_a_form_error(admin_client, objects, credentials, error):
    account = objects[ProviderAccount]
    response = admin_client.post(
        admin_url(ProviderAccount, "change", account.pk),
        change_form_data(account, **credentials),
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert SECRET not in response.content.decode()
    account.refresh_from_db()
    assert account.credentials["api_key"] == SECRET


@pytest.mark.django_db
def test_add_form(admin_client):
    page = admin_client.get(admin_url(ProviderAccount, "add")).content.decode()
    assert 'name="credentials"' not in page  # no JSON: each kind's labelled fields
    assert 'type="password" name="simulator__api_key"' in page
    assert "The key the simulator was started with (--api-key)." in page
    data = change_form_data(ProviderAccount(name="New", slug="simulator"), api_key="")
    data["base_url"] = CLOSED_PORT_URL
    response = admin_client.post(admin_url(ProviderAccount, "add"), data)
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    data["simulator__api_key"] = SECRET
    response = admin_client.post(admin_url(ProviderAccount, "add"), data)
    assert response.status_code == 302
    assert ProviderAccount.objects.get(name="New").credentials == {"api_key": SECRET}
    assert SECRET not in admin_client.get(response.url).content.decode()


@pytest.mark.django_db
def test_webhook_urls_on_change_page(admin_client, objects):
    account = objects[ProviderAccount]
    page = admin_client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    assert account.webhook_url("dlr") in page
    assert account.webhook_url("inbound") in page
    assert "Paste into the provider's console" in page
    assert 'name="webhook_token"' not in page


# --- provider accounts: actions ----------------------------------------------------------------


def run_action(client, action: str, *objs):
    return client.post(
        admin_url(ProviderAccount, "changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objs]},
        follow=True,
    )


@pytest.mark.django_db
def test_test_connection_reports_an_unreachable_provider(admin_client, objects):
    account = objects[ProviderAccount]
    response = run_action(admin_client, "test_connection", account)
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "could not reach 127.0.0.1:9" in message.message
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
def test_test_connection_reports_success(admin_client, objects, simulator):
    provider_account = objects[ProviderAccount]
    provider_account.base_url = simulator.url
    provider_account.credentials = {"api_key": "simulator-key"}
    provider_account.save()
    response = run_action(admin_client, "test_connection", provider_account)
    [message] = response.context["messages"]
    assert message.level_tag == "success"
    assert message.message == "Sim: the simulator answers and accepts the API key"


@pytest.mark.django_db
def test_test_connection_never_lets_an_exception_escape(admin_client, objects, monkeypatch):
    from providers.simulator.adapter import SimulatorProvider

    def boom(self):
        raise RuntimeError(f"leaky {SECRET}")

    monkeypatch.setattr(SimulatorProvider, "check", boom)
    response = run_action(admin_client, "test_connection", objects[ProviderAccount])
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "RuntimeError" in message.message
    assert SECRET not in message.message


@pytest.mark.django_db
def test_rotate_webhook_token(admin_client, objects):
    account = objects[ProviderAccount]
    other = make_provider_account(name="Other")
    old_tokens = {account.webhook_token, other.webhook_token}
    old_url = account.webhook_url("dlr")
    response = run_action(admin_client, "rotate_webhook_token", account, other)
    [message] = response.context["messages"]
    assert "webhook URLs changed" in message.message
    account.refresh_from_db()
    other.refresh_from_db()
    assert {account.webhook_token, other.webhook_token}.isdisjoint(old_tokens)
    assert account.webhook_token != other.webhook_token
    assert account.webhook_url("dlr") != old_url


# --- sender names ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approve_sender_names(admin_client, objects):
    pending = objects[SenderName]
    approved = SenderName.objects.create(
        account=pending.account, name="ACME2", status=SenderName.Status.APPROVED
    )
    response = admin_client.post(
        admin_url(SenderName, "changelist"),
        {"action": "approve", "_selected_action": [pending.pk, approved.pk]},
        follow=True,
    )
    [message] = response.context["messages"]
    assert message.message == "1 sender name approved. 1 already was."
    pending.refresh_from_db()
    assert pending.status == SenderName.Status.APPROVED


@pytest.mark.django_db
def test_reject_sender_names(admin_client, objects):
    sender = objects[SenderName]
    response = admin_client.post(
        admin_url(SenderName, "changelist"),
        {"action": "reject", "_selected_action": [sender.pk]},
        follow=True,
    )
    [message] = response.context["messages"]
    assert message.message == "1 sender name rejected."
    sender.refresh_from_db()
    assert sender.status == SenderName.Status.REJECTED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "lookup", ["credentials__api_key__startswith", "credentials__icontains", "webhook_token"]
)
def test_changelist_cannot_be_filtered_on_secrets(admin_client, objects, lookup):
    response = admin_client.get(admin_url(ProviderAccount, "changelist"), {lookup: "s"})
    assert response.status_code == 400


@pytest.mark.django_db
def test_add_campaign_records_who_created_it(admin_client, admin_user, objects):
    account = objects[Account]
    response = admin_client.post(
        admin_url(Campaign, "add"),
        {"account": account.pk, "name": "Autumn", "sender": "ACME", "text": "Hi", "_save": "Save"},
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Autumn")
    assert (campaign.created_by, campaign.status) == (admin_user, Campaign.Status.DRAFT)


def test_an_account_route_per_category_is_set_in_admin(admin_client, objects):
    """The account's page lists its routes; a category's route only offers its own categories."""
    account, provider = objects[Account], objects[ProviderAccount]
    foreign = Category.objects.create(
        account=Account.objects.create(name="Other"), name="Theirs", tag="theirs"
    )
    url = reverse("admin:campaigns_account_change", args=[account.pk])
    page = admin_client.get(url).content.decode()
    assert "Appointments" in page and "Theirs" not in page

    form = {
        "name": account.name,
        "timezone": account.timezone,
        "reply_window_hours": account.reply_window_hours,
        "route_entries-TOTAL_FORMS": "2",
        "route_entries-INITIAL_FORMS": "1",
        "route_entries-0-id": objects[RouteEntry].pk,
        "route_entries-0-account": account.pk,
        "route_entries-0-position": "0",
        "route_entries-0-provider_account": provider.pk,
        "route_entries-0-category": "",
        "route_entries-1-account": account.pk,
        "route_entries-1-position": "0",
        "route_entries-1-provider_account": provider.pk,
        "route_entries-1-category": objects[Category].pk,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert account.route(objects[Category].pk) == [provider]
    assert RouteEntry.objects.filter(account=account, category=objects[Category]).count() == 1

    form["route_entries-1-category"] = foreign.pk
    response = admin_client.post(url, form)
    assert response.status_code == 200  # refused: not one of this account's categories
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"year": "9999"},
        {"year": "9999", "month": "12"},
        {"year": "9999", "month": "12", "day": "31"},
        {"year": "99999"},
        {"year": "0"},
    ],
    ids=lambda q: "-".join(q.values()),
)
def test_a_date_drill_down_beyond_the_calendar_is_a_bad_lookup_not_a_500(admin_client, query):
    """Every change list with a date drill-down: the step past the date asked overflows."""
    for model, model_admin in admin.site._registry.items():
        if not model_admin.date_hierarchy:
            continue
        field = model_admin.date_hierarchy
        params = {f"{field}__{part}": value for part, value in query.items()}
        response = admin_client.get(admin_url(model, "changelist"), params)
        assert response.status_code == 302, model
        assert response["Location"].endswith("?e=1")
