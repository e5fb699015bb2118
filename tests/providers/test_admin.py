"""Provider accounts in admin: a provider's options as labelled choices, with their warnings."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from providers.models import ProviderAccount

pytestmark = pytest.mark.django_db

TOKEN = "smsadvert-token-0123456789"
NO_REPORT = "get no delivery report"


def smsadvert(**credentials) -> ProviderAccount:
    return ProviderAccount.objects.create(
        name="SMSAdvert",
        slug="smsadvert",
        base_url="https://www.smsadvert.io",
        credentials={"token": TOKEN, **credentials},
    )


def change_url(account: ProviderAccount) -> str:
    return reverse("admin:providers_provideraccount_change", args=[account.pk])


def form_data(account: ProviderAccount, credentials: dict, **options: str) -> dict:
    data = {
        "name": account.name,
        "slug": account.slug,
        "base_url": account.base_url,
        "credentials": json.dumps(credentials),
        "enabled": "on",
        "priority": "100",
        "max_per_second": "",
        "max_in_flight": "",
    }
    data.update({f"option__{key}": value for key, value in options.items()})
    return data


def shown_json(page: str) -> dict:
    start = page.index('name="credentials"')
    text = page[page.index(">", start) + 1 : page.index("</textarea>", start)]
    return json.loads(text.replace("&quot;", '"'))


def test_smsadverts_options_are_labelled_choices_not_json_keys(admin_client):
    account = smsadvert(send_as_short=False)
    page = admin_client.get(change_url(account)).content.decode()
    assert shown_json(page) == {"token": "••••••••6789"}  # the options are not in the JSON
    assert TOKEN not in page
    assert "Sent through (send_as_short)" in page
    assert "Your own devices (sendAsShort absent: the doc&#x27;s default)" in page
    assert "SMSAdvert&#x27;s network (sendAsShort: true)" in page
    assert 'name="option__send_as_short" value="0"' in page
    assert "One number per call: every message gets its delivery report" in page
    assert "Warning:" not in page  # one number per call: nothing to warn about


def test_an_account_sending_many_numbers_per_call_is_warned_about(admin_client):
    page = admin_client.get(change_url(smsadvert(multi_recipient="true"))).content.decode()
    assert "<strong>Warning:</strong>" in page
    assert NO_REPORT in page


def test_choosing_options_writes_the_credentials_and_warns(admin_client):
    account = smsadvert()
    shown = {"token": "••••••••6789"}
    response = admin_client.post(
        change_url(account),
        form_data(account, shown, send_as_short="1", failover="1", multi_recipient="1"),
        follow=True,
    )
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.credentials == {
        "token": TOKEN,  # the masked value sent back keeps the secret
        "send_as_short": True,
        "failover": "short",
        "multi_recipient": True,
    }
    assert NO_REPORT in response.content.decode()  # the message after saving

    admin_client.post(
        change_url(account),
        form_data(account, shown, send_as_short="0", failover="0", multi_recipient="0"),
    )
    account.refresh_from_db()
    assert account.credentials == {"token": TOKEN}  # the defaults are the keys absent


def test_an_option_typed_in_the_json_as_well_is_a_form_error(admin_client):
    account = smsadvert()
    data = form_data(
        account,
        {"token": "••••••••6789", "multi_recipient": True},
        send_as_short="0",
        failover="0",
        multi_recipient="0",
    )
    response = admin_client.post(change_url(account), data)
    assert response.status_code == 200
    assert "is set with its choice below the credentials" in response.content.decode()
    account.refresh_from_db()
    assert account.credentials == {"token": TOKEN}


def test_a_stored_value_no_choice_means_must_be_chosen_again(admin_client):
    account = smsadvert(send_as_short="maybe", failover="<b>long</b>")
    page = admin_client.get(change_url(account)).content.decode()
    assert "The stored value &#x27;maybe&#x27; of “send_as_short” is not understood" in page
    assert "&#x27;&lt;b&gt;long&lt;/b&gt;&#x27; of “failover” is not understood" in page
    data = form_data(account, {"token": "••••••••6789"}, multi_recipient="0")
    assert admin_client.post(change_url(account), data).status_code == 200  # asked again
    account.refresh_from_db()
    assert account.credentials["send_as_short"] == "maybe"

    data.update(option__send_as_short="0", option__failover="0")
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"token": TOKEN}


def test_view_only_staff_see_the_options_by_their_labels(client):
    account = smsadvert(multi_recipient=True, send_as_short=True)
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client.force_login(user)
    page = client.get(change_url(account)).content.decode()
    assert "SMSAdvert&#x27;s network (sendAsShort: true)" in page
    assert "Up to 1000 numbers per call for the same text" in page
    assert NO_REPORT in page
    assert 'name="option__' not in page
    assert TOKEN not in page


def test_providers_without_options_keep_the_json_only(admin_client):
    account = ProviderAccount.objects.create(
        name="Vortext",
        slug="vortext",
        base_url="https://messages.cloud.cegedim.com",
        credentials={"username": "hub", "password": "secret-password"},
    )
    page = admin_client.get(change_url(account)).content.decode()
    assert 'name="option__' not in page
    assert "<h2>Options</h2>" not in page


def test_an_account_added_with_many_numbers_per_call_is_warned_about(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provideraccount_add"),
        {
            "name": "SMSAdvert bulk",
            "slug": "smsadvert",
            "base_url": "https://www.smsadvert.io",
            "credentials": json.dumps({"token": TOKEN, "multi_recipient": True}),
            "enabled": "on",
            "priority": "100",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert ProviderAccount.objects.get(name="SMSAdvert bulk").credentials["multi_recipient"]
    assert NO_REPORT in response.content.decode()
