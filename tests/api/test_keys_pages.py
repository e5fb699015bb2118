"""API keys in the staff UI (account admins only) and in Django admin: shown once, stored
hashed, revoked at once; another account's key is a 404; operators and viewers get 403."""

import pytest
from django.urls import reverse

from campaigns.api import keys
from campaigns.api.models import ApiKey
from campaigns.models import Membership
from tests.factories import ApiKeyFactory, MembershipFactory

from .conftest import ApiClient

LIST = reverse("api_keys:list")
CREATE = reverse("api_keys:create")


@pytest.fixture
def account_admin(client, account):
    user = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    client.force_login(user)
    return user


def test_admin_creates_a_key_shown_once_that_works(client, account, account_admin):
    response = client.post(CREATE, {"name": "Booking site"})
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    assert (api_key.account, api_key.name, api_key.created_by) == (
        account,
        "Booking site",
        account_admin,
    )
    page = response.content.decode()
    secret = response.context["secret"]
    assert secret in page and "will not be shown again" in page
    assert "no-store" in response["Cache-Control"]
    assert api_key.key_hash == keys.digest(secret) and secret not in str(
        ApiKey.objects.values().get()
    )

    listing = client.get(LIST).content.decode()
    assert secret not in listing and f"{api_key.prefix}…" in listing and "Booking site" in listing
    assert ApiClient(client, secret).get("/messages").status_code == 200


def test_htmx_create_answers_the_fragment(client, account_admin):
    response = client.post(CREATE, {"name": "CRM"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="api-keys"' in page and "<html" not in page
    assert response.context["secret"] in page


def test_a_key_needs_a_name(client, account_admin):
    response = client.post(CREATE, {"name": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_refuses_the_key_at_once(client, account, account_admin):
    api_key = ApiKeyFactory(account=account)
    response = client.post(reverse("api_keys:revoke", args=[api_key.pk]))
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert ApiClient(client, api_key.secret).get("/messages").status_code == 401
    assert "Revoked" in client.get(LIST).content.decode()


def test_another_accounts_key_is_404(client, account_admin, other_account):
    theirs = ApiKeyFactory(account=other_account, name="Their key")
    response = client.post(reverse("api_keys:revoke", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "Their key" not in client.get(LIST).content.decode()


@pytest.mark.parametrize("role", [Membership.Role.OPERATOR, Membership.Role.VIEWER])
def test_operators_and_viewers_get_403(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    api_key = ApiKeyFactory(account=account)
    assert client.get(LIST).status_code == 403
    assert client.post(CREATE, {"name": "Mine"}).status_code == 403
    assert client.post(reverse("api_keys:revoke", args=[api_key.pk])).status_code == 403
    assert ApiKey.objects.count() == 1
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(LIST)
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- Django admin ---------------------------------------------------------------------------


def test_admin_add_shows_the_key_once(admin_client, account):
    response = admin_client.post(
        reverse("admin:api_apikey_add"), {"account": account.pk, "name": "ERP"}
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    secret = response.context["secret"]
    assert secret in response.content.decode() and api_key.key_hash == keys.digest(secret)
    assert "no-store" in response["Cache-Control"]
    assert api_key.created_by.is_superuser

    change = admin_client.get(reverse("admin:api_apikey_change", args=[api_key.pk]))
    changelist = admin_client.get(reverse("admin:api_apikey_changelist"))
    for page in (change, changelist):
        assert page.status_code == 200
        assert secret not in page.content.decode()
        assert f"{api_key.prefix}…" in page.content.decode()


def test_admin_revoke_action(admin_client, account):
    active, other = ApiKeyFactory(account=account), ApiKeyFactory(account=account)
    response = admin_client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [active.pk]},
        follow=True,
    )
    assert "1 API key revoked." in response.content.decode()
    active.refresh_from_db()
    other.refresh_from_db()
    assert active.revoked_at is not None and other.revoked_at is None


def test_a_new_key_has_a_copy_button_and_the_site_an_icon(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.ADMIN).user)
    page = client.post("/api-keys/new/", {"name": "Shop"}, follow=True).content.decode()
    assert 'data-copy="#new-key-value"' in page
    assert 'rel="icon"' in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith(".svg")
