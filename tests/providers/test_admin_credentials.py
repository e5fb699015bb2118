"""Provider accounts in admin: every kind's credentials as labelled fields, secrets never shown
back, and the account's health in words. Through Django's test client against the real admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from providers import circuit, registry
from providers.exceptions import ProviderAccountError, ProviderRejected, ProviderTemporaryError
from providers.models import ProviderAccount

pytestmark = pytest.mark.django_db

ADD = "admin:providers_provideraccount_add"

# For each kind: what a complete account holds (secrets long enough to be masked to 4 chars).
COMPLETE = {
    "simulator": {"api_key": "sim-secret-key-0001"},
    "vortext": {"username": "hub-user", "password": "vortext-secret-0002"},
    "primotexto": {"api_key": "primo-secret-key-0003"},
    "smsadvert": {"token": "smsadvert-secret-0004"},
    "expertflow": {"channel": "smpp", "username": "ef-user", "password": "ef-secret-pw-0005"},
    "ogangi": {"instance_id": 8, "public_key": "pub-8", "private_key": "ogangi-private-0006"},
    "twilio": {},
}
# The labels each kind's page shows, key → label.
LABELS = {
    "simulator": {"api_key": "API key"},
    "vortext": {"username": "User name", "password": "Password"},
    "primotexto": {"api_key": "API key"},
    "smsadvert": {"token": "API token"},
    "expertflow": {"channel": "Channel", "username": "User name", "password": "Password"},
    "ogangi": {
        "instance_id": "Instance id",
        "public_key": "Public key",
        "private_key": "Private key",
        "carrier": "Carrier",
        "signature_segments": "Signature: text signed",
        "signature_encoding": "Signature: digest written as",
    },
    "twilio": {},
}
BASE_URLS = {"simulator": "http://127.0.0.1:8025", "twilio": "https://gateway.example.com"}
SECRETS = [
    (kind, key, value)
    for kind, values in COMPLETE.items()
    for key, value in values.items()
    if key in registry.adapters()[kind].secret_credentials
]


def change_url(account: ProviderAccount) -> str:
    return reverse("admin:providers_provideraccount_change", args=[account.pk])


def page_data(response) -> dict:
    """What the browser sends back from an admin form page, as it was shown (secrets empty)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool) or field.widget.input_type == "checkbox":
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
        elif field.widget.input_type != "radio":
            data[name] = ""  # an empty input is sent empty; no radio button chosen, not at all
    return data


def add_data(admin_client, kind: str, **fields) -> dict:
    data = page_data(admin_client.get(reverse(ADD)))
    data.update(name=f"My {kind}", slug=kind, base_url=BASE_URLS.get(kind, ""))
    data.update({f"{kind}__{key}": str(value) for key, value in COMPLETE[kind].items()})
    data.update(fields)
    return data


def account_of(kind: str, **credentials) -> ProviderAccount:
    return ProviderAccount.objects.create(
        name=f"Stored {kind}",
        slug=kind,
        base_url=BASE_URLS.get(kind) or registry.adapters()[kind].default_base_url,
        credentials={**COMPLETE[kind], **credentials},
    )


def field_errors(response) -> dict[str, list[str]]:
    return {
        name: list(errors) for name, errors in response.context["adminform"].form.errors.items()
    }


# --- the declarations -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(COMPLETE))
def test_each_kinds_declaration_matches_what_its_adapter_needs(kind):
    cls = registry.adapters()[kind]
    fields = cls.credential_fields
    assert tuple(f.key for f in fields if f.required) == cls.required_credentials
    assert {f.key for f in fields if f.secret} == cls.secret_credentials
    assert not cls.missing_credentials(COMPLETE[kind])


# --- fields shown ---------------------------------------------------------------------------------
def test_the_add_page_has_every_kinds_labelled_fields_and_no_json(admin_client):
    page = admin_client.get(reverse(ADD)).content.decode()
    assert "<textarea" not in page
    assert "providers/provider_form.js" in page  # shows only the chosen kind's fields
    for kind, labels in LABELS.items():
        assert f'class="module aligned provider-kind provider-kind-{kind}"' in page
        for key, label in labels.items():
            assert f'name="{kind}__{key}"' in page
            assert re.search(rf">{re.escape(label)}:</(label|legend)>", page), label
    for kind, key, _value in SECRETS:
        assert re.search(rf'<input type="password" name="{kind}__{key}"', page)
    # Help texts and choices in words.
    assert "Your Ogangi workspace (instance) number" in page
    assert "Lower-case hexadecimal (default)" in page
    assert "One number per call: every message gets its delivery report" in page
    assert "Used when the provider is Twilio-style gateway (callbacks only). It needs no" in page


@pytest.mark.parametrize("kind", list(COMPLETE))
def test_each_kind_is_saved_from_its_fields(admin_client, kind):
    response = admin_client.post(reverse(ADD), add_data(admin_client, kind))
    assert response.status_code == 302, field_errors(response)
    account = ProviderAccount.objects.get(name=f"My {kind}")
    expected = {k: (v if k != "instance_id" else 8) for k, v in COMPLETE[kind].items()}
    assert account.credentials == expected
    cls = registry.adapters()[kind]
    assert account.base_url == (BASE_URLS.get(kind) or cls.default_base_url)


@pytest.mark.parametrize(
    ("kind", "key"),
    [(kind, key) for kind, cls in registry.adapters().items() for key in cls.required_credentials],
)
def test_a_required_credential_left_empty_is_refused_with_a_message(admin_client, kind, key):
    data = add_data(admin_client, kind, **{f"{kind}__{key}": ""})
    response = admin_client.post(reverse(ADD), data)
    assert response.status_code == 200
    assert field_errors(response)[f"{kind}__{key}"] == ["This field is required."]
    assert "This field is required." in response.content.decode()
    assert not ProviderAccount.objects.filter(name=f"My {kind}").exists()


def test_other_kinds_fields_are_neither_required_nor_read(admin_client):
    data = add_data(admin_client, "vortext", primotexto__api_key="not-read-0000000")
    assert admin_client.post(reverse(ADD), data).status_code == 302
    assert ProviderAccount.objects.get(name="My vortext").credentials == COMPLETE["vortext"]


@pytest.mark.parametrize(
    ("kind", "fields", "name", "message"),
    [
        (
            "ogangi",
            {"ogangi__instance_id": "eight"},
            "ogangi__instance_id",
            "Enter a whole number.",
        ),
        (
            "ogangi",
            {"ogangi__instance_id": "0"},
            "ogangi__instance_id",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            "ogangi",
            {"ogangi__signature_encoding": "rot13"},
            "ogangi__signature_encoding",
            "Select a valid choice. rot13 is not one of the available choices.",
        ),
        (
            "primotexto",
            {"primotexto__api_key": "two words"},
            "primotexto__api_key",
            "An API key is printable ASCII characters without spaces.",
        ),
        (
            "expertflow",
            {"expertflow__password": ""},
            "expertflow__password",
            "Needed with User name.",
        ),
        ("vortext", {"base_url": "not a url"}, "base_url", "Enter a valid URL."),
        (
            "simulator",
            {"base_url": ""},
            "base_url",
            "Enter the base URL: Simulator has no default address.",
        ),
        (
            "vortext",
            {"webhook__webhook_password": "hook-password-123"},
            "webhook__webhook_username",
            "Needed with Webhook password.",
        ),
        (
            "smsadvert",
            {"smsadvert__multi_recipient": "9"},
            "smsadvert__multi_recipient",
            "Select a valid choice. 9 is not one of the available choices.",
        ),
        ("smsadvert", {"slug": "nokia"}, "slug", "Select a valid choice."),
    ],
)
def test_bad_values_are_refused_with_a_message_never_a_500(
    admin_client, kind, fields, name, message
):
    response = admin_client.post(reverse(ADD), add_data(admin_client, kind, **fields))
    assert response.status_code == 200
    assert any(e.startswith(message) for e in field_errors(response)[name]), field_errors(response)
    assert not ProviderAccount.objects.exists()


def test_a_kinds_default_base_url_is_used_when_left_empty(admin_client):
    data = add_data(admin_client, "vortext", base_url="")
    assert admin_client.post(reverse(ADD), data).status_code == 302
    assert ProviderAccount.objects.get().base_url == "https://messages.cloud.cegedim.com"


def test_options_are_written_as_the_adapter_reads_them_and_warned_about(admin_client):
    data = add_data(
        admin_client,
        "smsadvert",
        smsadvert__send_as_short="1",
        smsadvert__failover="1",
        smsadvert__multi_recipient="1",
    )
    response = admin_client.post(reverse(ADD), data, follow=True)
    account = ProviderAccount.objects.get()
    assert account.credentials == {
        **COMPLETE["smsadvert"],
        "send_as_short": True,
        "failover": "short",
        "multi_recipient": True,
    }
    assert "get no delivery report" in response.content.decode()


# --- secrets --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "key", "secret"), SECRETS)
def test_a_secret_is_never_in_the_page_and_kept_when_left_blank(admin_client, kind, key, secret):
    account = account_of(kind, webhook_username="hub", webhook_password="hook-secret-9999")
    response = admin_client.get(change_url(account))
    page = response.content.decode()
    assert secret not in page and "hook-secret-9999" not in page
    assert f"A value is stored (••••••••{secret[-4:]})" in page
    data = page_data(response)
    assert data[f"{kind}__{key}"] == ""  # never rendered back
    data["priority"] = "7"
    response = admin_client.post(change_url(account), data)
    assert response.status_code == 302, field_errors(response)
    account.refresh_from_db()
    assert account.priority == 7
    assert account.credentials[key] == secret
    assert account.credentials["webhook_password"] == "hook-secret-9999"
    history = admin_client.get(
        reverse("admin:providers_provideraccount_history", args=[account.pk])
    ).content.decode()
    assert secret not in history


def test_a_typed_secret_replaces_the_stored_one_and_is_not_logged(admin_client):
    account = account_of("vortext")
    data = page_data(admin_client.get(change_url(account)))
    data["vortext__password"] = "a-brand-new-password-4242"
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"username": "hub-user", "password": "a-brand-new-password-4242"}
    assert not LogEntry.objects.filter(change_message__contains="4242").exists()
    assert LogEntry.objects.filter(change_message__contains="Password").exists()


def test_a_typed_secret_is_not_shown_back_when_the_form_has_errors(admin_client):
    data = add_data(admin_client, "vortext", name="", vortext__password="typed-secret-7777")
    response = admin_client.post(reverse(ADD), data)
    assert response.status_code == 200
    assert "typed-secret-7777" not in response.content.decode()


def test_clearing_a_secret_is_explicit(admin_client):
    account = account_of("expertflow", webhook_username="hub", webhook_password="hook-secret-9999")
    data = page_data(admin_client.get(change_url(account)))
    # Clearing the connector's password alone breaks its both-or-neither rule.
    data["expertflow__password__clear"] = "on"
    response = admin_client.post(change_url(account), data)
    assert field_errors(response)["expertflow__password"] == ["Needed with User name."]
    data["expertflow__username"] = ""
    data["webhook__webhook_password__clear"] = "on"
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"channel": "smpp", "webhook_username": "hub"}


def test_clearing_a_required_secret_or_typing_and_clearing_is_refused(admin_client):
    account = account_of("simulator")
    data = page_data(admin_client.get(change_url(account)))
    data["simulator__api_key__clear"] = "on"
    response = admin_client.post(change_url(account), data)
    assert field_errors(response)["simulator__api_key"] == [
        "This field is required: type a new value rather than clearing it."
    ]
    data["simulator__api_key"] = "another-key-123456"
    response = admin_client.post(change_url(account), data)
    assert field_errors(response)["simulator__api_key"] == [
        "Type a new value or tick “clear”, not both."
    ]
    data["simulator__api_key"] = "••••••••0001"
    del data["simulator__api_key__clear"]
    response = admin_client.post(change_url(account), data)
    assert field_errors(response)["simulator__api_key"] == [
        "This is a masked value: type the full value."
    ]
    account.refresh_from_db()
    assert account.credentials == COMPLETE["simulator"]


# --- stored JSON read, unknown keys kept ----------------------------------------------------------
def test_stored_values_fill_the_fields_and_unknown_keys_are_kept(admin_client):
    account = account_of(
        "ogangi", instance_id="8", carrier="Movistar", region="eu", api_secret="legacy-secret-1234"
    )
    response = admin_client.get(change_url(account))
    page = response.content.decode()
    data = page_data(response)
    assert data["ogangi__instance_id"] == "8"
    assert data["ogangi__carrier"] == "Movistar"
    assert data["ogangi__signature_segments"] == "encoded"  # the default, not stored
    assert "Other stored settings" in page
    assert "<dt>region</dt><dd><code>eu</code></dd>" in page
    assert "legacy-secret-1234" not in page and "••••••••1234" in page
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    # Nothing changed: the same values, of the same types, and nothing added.
    assert account.credentials == {
        **COMPLETE["ogangi"],
        "instance_id": "8",
        "carrier": "Movistar",
        "region": "eu",
        "api_secret": "legacy-secret-1234",
    }
    data["drop_other_credentials"] = "on"
    data["ogangi__signature_encoding"] = "base64"
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert set(account.credentials) == {
        "instance_id",
        "public_key",
        "private_key",
        "carrier",
        "signature_encoding",
    }
    assert account.credentials["signature_encoding"] == "base64"


def test_a_stored_choice_no_field_means_is_said_and_asked_again(admin_client):
    account = account_of("ogangi", signature_segments="<b>sideways</b>")
    response = admin_client.get(change_url(account))
    page = response.content.decode()
    assert "The stored value &#x27;&lt;b&gt;sideways&lt;/b&gt;&#x27; is not understood" in page
    data = page_data(response)
    assert "ogangi__signature_segments" not in data
    response = admin_client.post(change_url(account), data)
    assert field_errors(response)["ogangi__signature_segments"] == ["This field is required."]


def test_changing_the_kind_drops_the_old_kinds_keys_and_keeps_the_others(admin_client):
    account = account_of("simulator", region="eu", webhook_username="hub")
    data = page_data(admin_client.get(change_url(account)))
    data.update(slug="vortext", base_url="", vortext__username="hub-user")
    response = admin_client.post(change_url(account), data)
    assert field_errors(response) == {"vortext__password": ["This field is required."]}
    data["vortext__password"] = "vortext-secret-0002"
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert account.slug == "vortext"
    assert account.credentials == {**COMPLETE["vortext"], "region": "eu", "webhook_username": "hub"}


def test_view_only_staff_see_the_credentials_by_label_secrets_masked(client, django_user_model):
    from django.contrib.auth.models import Permission

    account = account_of("vortext", multi="x")
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client.force_login(user)
    page = client.get(change_url(account)).content.decode()
    assert "<dt>User name</dt><dd>hub-user</dd>" in page
    assert "<dt>Password</dt><dd>••••••••0002</dd>" in page
    assert "vortext-secret-0002" not in page
    assert 'name="vortext__' not in page


# --- health ---------------------------------------------------------------------------------------
@pytest.fixture
def no_circuits():
    cache.clear()
    yield
    cache.clear()


def test_health_in_words_on_the_page_and_in_the_list(admin_client, no_circuits):
    account = account_of("simulator")
    page = admin_client.get(change_url(account)).content.decode()
    assert "None recorded yet." in page
    assert "Closed: messages are sent through it normally." in page

    earlier = timezone.now() - timedelta(minutes=3)
    account.note_answers([None, ProviderRejected("bad number", code="invalid_number")], earlier)
    account.note_answers(
        [ProviderTemporaryError("could not reach sim: ConnectionError", code="network")]
    )
    account.refresh_from_db()
    assert account.last_success_at == earlier
    assert account.last_error_code == "network"  # a refused message is not the account's error
    page = admin_client.get(change_url(account)).content.decode()
    assert "3\xa0minutes ago (" in page
    assert "the provider accepted a message or passed a connection test" in page
    assert "The provider could not be reached (network error); tried again later." in page
    assert "could not reach sim: ConnectionError" in page
    listing = admin_client.get(reverse("admin:providers_provideraccount_changelist"))
    listing = listing.content.decode()
    assert "3\xa0minutes ago" in listing
    assert "The provider could not be reached (network error)" in listing
    assert ">sending (circuit closed)<" in listing


def test_an_account_error_shows_masked_and_the_hold_in_words(admin_client, no_circuits):
    account = account_of("simulator")
    account.note_answers(
        [ProviderAccountError("refused key sim-secret-key-0001 (HTTP 401)", code="401")]
    )
    account.held_since = timezone.now()
    account.hold_reason = "credentials refused by Simulator (HTTP 401)"
    account.save()
    page = admin_client.get(change_url(account)).content.decode()
    assert "sim-secret-key-0001" not in page
    assert "refused key ••••••••0001 (HTTP 401)" in page
    assert "The provider refused the credentials (HTTP 401): check them in admin." in page
    assert "On hold since" in page
    assert "credentials refused by Simulator (HTTP 401)" in page


def test_the_circuit_shows_open_until_when_then_half_open(admin_client, settings, no_circuits):
    settings.SMSHUB_CIRCUIT_FAILURES = 2
    settings.SMSHUB_CIRCUIT_OPEN_SECONDS = 120
    account = account_of("simulator")
    circuit.record_batch(account.pk, [False, False])
    page = admin_client.get(change_url(account)).content.decode()
    # English's TIME_FORMAT: "11:05 p.m.", "11 p.m." on the hour, "midnight", "noon".
    assert re.search(r"Open until (\d\d?(:\d\d)? [ap]\.m\.|midnight|noon) ", page)
    assert "(in 1\xa0minute)" in page or "(in 2\xa0minutes)" in page
    listing = admin_client.get(reverse("admin:providers_provideraccount_changelist"))
    assert "circuit open until" in listing.content.decode()
    settings.SMSHUB_CIRCUIT_OPEN_SECONDS = -1  # the opening passed: one probe now
    circuit.record_batch(account.pk, [False, False])
    page = admin_client.get(change_url(account)).content.decode()
    assert "Half-open: the next message is a probe" in page


def test_a_connection_test_is_recorded_in_the_health(admin_client, simulator, no_circuits):
    account = account_of("simulator")
    account.base_url = simulator.url
    account.credentials = {"api_key": "simulator-key"}
    account.save()
    admin_client.post(
        reverse("admin:providers_provideraccount_changelist"),
        {"action": "test_connection", "_selected_action": [account.pk]},
    )
    account.refresh_from_db()
    assert account.last_success_at is not None
    assert account.last_error_at is None


def test_new_credentials_release_the_hold_and_the_same_ones_do_not(admin_client):
    account = account_of("simulator")
    account.held_since = timezone.now()
    account.hold_reason = "credentials refused by Simulator (HTTP 401)"
    account.save()
    data = page_data(admin_client.get(change_url(account)))
    admin_client.post(change_url(account), {**data, "priority": "3"})
    account.refresh_from_db()
    assert account.on_hold  # nothing the provider cares about changed
    response = admin_client.post(
        change_url(account), {**data, "simulator__api_key": "simulator-key"}, follow=True
    )
    assert "hold released, the new settings are used from now on" in response.content.decode()
    account.refresh_from_db()
    assert not account.on_hold
    assert account.credentials == {"api_key": "simulator-key"}


def test_an_option_stored_as_a_value_no_choice_means_must_be_chosen_again(admin_client):
    account = account_of("smsadvert", send_as_short="maybe", multi_recipient="true")
    response = admin_client.get(change_url(account))
    page = response.content.decode()
    assert "The stored value &#x27;maybe&#x27; of “send_as_short” is not understood" in page
    assert "<strong>Warning:</strong>" in page and "get no delivery report" in page
    data = page_data(response)
    response = admin_client.post(change_url(account), data)
    assert field_errors(response) == {"smsadvert__send_as_short": ["This field is required."]}
    data["smsadvert__send_as_short"] = "0"
    data["smsadvert__multi_recipient"] = "0"
    assert admin_client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert account.credentials == COMPLETE["smsadvert"]
