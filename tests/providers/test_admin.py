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


def page_data(response) -> dict:
    """What the browser sends back from the change page as shown: secrets empty, a radio
    group with nothing chosen not at all."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.widget.input_type == "checkbox":
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
        elif field.widget.input_type != "radio":
            data[name] = ""
    return data


def options(**chosen: str) -> dict:
    return {f"smsadvert__{key}": value for key, value in chosen.items()}


def kind_fieldset(page: str, kind: str) -> str:
    """The part of the page with one provider kind's credential fields."""
    start = page.index(f"provider-kind-{kind}")
    return page[start : page.index('<fieldset class="module aligned', start)]


def test_smsadverts_options_are_labelled_choices_not_json_keys(admin_client):
    account = smsadvert(send_as_short=False)
    page = admin_client.get(change_url(account)).content.decode()
    assert "<textarea" not in page  # no JSON to edit
    assert TOKEN not in page
    assert "A value is stored (••••••••6789)" in page  # the token, masked, in its field's help
    assert "Other stored settings" not in page  # the options are not unknown keys
    assert "Sent through (send_as_short)" in page
    assert "Your own devices (sendAsShort absent: the doc&#x27;s default)" in page
    assert "SMSAdvert&#x27;s network (sendAsShort: true)" in page
    # The stored false is the "absent" choice, chosen.
    assert (
        '<input type="radio" name="smsadvert__send_as_short" value="0" '
        'id="id_smsadvert__send_as_short_0" checked>'
    ) in page
    assert "One number per call: every message gets its delivery report" in page
    assert "Warning:" not in page  # one number per call: nothing to warn about


def test_an_account_sending_many_numbers_per_call_is_warned_about(admin_client):
    page = admin_client.get(change_url(smsadvert(multi_recipient="true"))).content.decode()
    assert "<strong>Warning:</strong>" in page
    assert NO_REPORT in page


def test_choosing_options_writes_the_credentials_and_warns(admin_client):
    account = smsadvert()
    data = page_data(admin_client.get(change_url(account)))
    assert data["smsadvert__token"] == ""  # the secret is not sent back: left empty, kept
    response = admin_client.post(
        change_url(account),
        {**data, **options(send_as_short="1", failover="1", multi_recipient="1")},
        follow=True,
    )
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.credentials == {
        "token": TOKEN,
        "send_as_short": True,
        "failover": "short",
        "multi_recipient": True,
    }
    assert NO_REPORT in response.content.decode()  # the message after saving

    response = admin_client.post(
        change_url(account),
        {**data, **options(send_as_short="0", failover="0", multi_recipient="0")},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"token": TOKEN}  # the defaults are the keys absent


def test_an_option_is_set_by_its_choice_only_not_by_posted_json(admin_client):
    # The form before the labelled fields had a JSON "credentials" box: a page of it still open
    # in a browser, or a hand-made post, cannot set an option (or any key) past its choice.
    account = smsadvert()
    data = page_data(admin_client.get(change_url(account)))
    data["credentials"] = json.dumps({"token": "typed-token-0000", "multi_recipient": True})
    data.update(options(send_as_short="0", failover="0", multi_recipient="0"))
    response = admin_client.post(change_url(account), data, follow=True)
    assert response.status_code == 200
    assert NO_REPORT not in response.content.decode()
    account.refresh_from_db()
    assert account.credentials == {"token": TOKEN}


def test_a_stored_value_no_choice_means_must_be_chosen_again(admin_client):
    account = smsadvert(send_as_short="maybe", failover="<b>long</b>")
    response = admin_client.get(change_url(account))
    page = response.content.decode()
    assert "The stored value &#x27;maybe&#x27; of “send_as_short” is not understood" in page
    assert "&#x27;&lt;b&gt;long&lt;/b&gt;&#x27; of “failover” is not understood" in page
    data = page_data(response)
    assert "smsadvert__send_as_short" not in data and "smsadvert__failover" not in data
    response = admin_client.post(change_url(account), data)
    assert response.status_code == 200  # asked again
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"smsadvert__send_as_short", "smsadvert__failover"}
    account.refresh_from_db()
    assert account.credentials["send_as_short"] == "maybe"

    data.update(options(send_as_short="0", failover="0"))
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
    assert 'name="smsadvert__' not in page  # nothing to edit
    assert TOKEN not in page


def test_providers_without_options_have_no_choices_to_make(admin_client):
    account = ProviderAccount.objects.create(
        name="Vortext",
        slug="vortext",
        base_url="https://messages.cloud.cegedim.com",
        credentials={"username": "hub", "password": "secret-password"},
    )
    page = admin_client.get(change_url(account)).content.decode()
    vortext = kind_fieldset(page, "vortext")
    assert 'name="vortext__username"' in vortext and 'name="vortext__password"' in vortext
    assert 'type="radio"' not in vortext
    assert 'type="radio" name="smsadvert__multi_recipient"' in kind_fieldset(page, "smsadvert")
    assert "secret-password" not in page


# "An account added with many numbers per call is warned about" is
# tests/providers/test_admin_credentials.py::
# test_options_are_written_as_the_adapter_reads_them_and_warned_about (the add page, the
# options chosen, multi_recipient stored, the warning after saving).
