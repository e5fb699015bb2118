"""Secrets at rest: encrypted in the database, readable by the app, rotated key by key, masked
in the admin, and existing plaintext rows encrypted by the migration."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Account, WebhookRequest
from providers.models import ProviderAccount
from smshub import crypto

from ..factories import AccountFactory, ProviderAccountFactory

ROOT = Path(__file__).resolve().parent.parent.parent
API_KEY = "pk-live-very-secret-api-key-0123"
HOOK_PASSWORD = "hook-password-4567"
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw(table: str, column: str, pk: int) -> str:
    """A column as the database holds it, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM "  # noqa: S608 (names, not input)
            f"{connection.ops.quote_name(table)} WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()[0]


def raw_secrets(provider: ProviderAccount, account: Account) -> dict[str, str]:
    return {
        "credentials": raw("providers_provideraccount", "credentials", provider.pk),
        "webhook_token": raw("providers_provideraccount", "webhook_token", provider.pk),
        "forward_secret": raw("campaigns_account", "forward_secret", account.pk),
    }


@pytest.fixture
def secrets_saved(db, settings):
    settings.SMSHUB_ENCRYPTION_KEYS = [OLD_KEY]
    provider = ProviderAccountFactory(
        credentials={
            "api_key": API_KEY,
            "webhook_username": "hub",
            "webhook_password": HOOK_PASSWORD,
        }
    )
    account = AccountFactory()
    return provider, account


def test_secrets_read_back_as_written(secrets_saved):
    provider, account = secrets_saved
    token, forward_secret = provider.webhook_token, account.forward_secret
    provider = ProviderAccount.objects.get(pk=provider.pk)
    account = Account.objects.get(pk=account.pk)
    assert provider.credentials == {
        "api_key": API_KEY,
        "webhook_username": "hub",
        "webhook_password": HOOK_PASSWORD,
    }
    assert (provider.webhook_token, account.forward_secret) == (token, forward_secret)
    assert len(token) >= 40 and len(forward_secret) >= 40


def test_plaintext_is_never_stored(secrets_saved):
    provider, account = secrets_saved
    stored = raw_secrets(provider, account)
    for column, value in stored.items():
        assert value.startswith("gAAAA"), column  # a Fernet token
    assert API_KEY not in stored["credentials"] and HOOK_PASSWORD not in stored["credentials"]
    assert provider.webhook_token not in stored["webhook_token"]
    assert account.forward_secret not in stored["forward_secret"]
    # Each is the secret, encrypted with the configured key.
    fernet = Fernet(OLD_KEY)
    assert json.loads(fernet.decrypt(stored["credentials"].encode()))["api_key"] == API_KEY
    assert fernet.decrypt(stored["webhook_token"].encode()).decode() == provider.webhook_token
    # The lookup column holds a digest, not the token.
    digest = raw("providers_provideraccount", "webhook_token_digest", provider.pk)
    assert digest == hashlib.sha256(provider.webhook_token.encode()).hexdigest()


def test_a_changed_secret_is_stored_encrypted_too(secrets_saved):
    provider, _ = secrets_saved
    provider.credentials = {"api_key": "a-new-key-0000000000"}
    provider.save()
    ProviderAccount.objects.filter(pk=provider.pk).update(credentials={"api_key": "via-update-1"})
    assert "via-update-1" not in raw("providers_provideraccount", "credentials", provider.pk)
    assert ProviderAccount.objects.get(pk=provider.pk).credentials == {"api_key": "via-update-1"}


def test_webhook_lookup_uses_the_indexed_digest_and_checks_the_token(secrets_saved):
    provider, _ = secrets_saved
    with CaptureQueriesContext(connection) as queries:
        assert ProviderAccount.for_webhook("simulator", provider.webhook_token) == provider
    [query] = queries.captured_queries
    assert "webhook_token_digest" in query["sql"]
    assert provider.webhook_token not in query["sql"]
    assert ProviderAccount.for_webhook("simulator", "not-the-token") is None
    assert ProviderAccount.for_webhook("vortext", provider.webhook_token) is None


def test_webhooks_answer_on_the_token_and_only_on_it(client, secrets_saved):
    provider, _ = secrets_saved
    auth = "Basic " + base64.b64encode(f"hub:{HOOK_PASSWORD}".encode()).decode()
    body = json.dumps({"id": "sim-1", "status": "delivered"})

    def post(url: str, authorization: str = auth):
        return client.post(
            url, body, content_type="application/json", headers={"Authorization": authorization}
        )

    assert post(provider.webhook_url("dlr")).status_code == 200
    assert post(provider.webhook_url("dlr"), "Basic " + "x" * 20).status_code == 401
    wrong = provider.webhook_url("dlr").replace(provider.webhook_token, "x" * 43)
    assert post(wrong).status_code == 404
    assert WebhookRequest.objects.count() == 1


def test_rotation_moves_every_secret_to_the_new_key(secrets_saved, settings):
    provider, account = secrets_saved
    others = ProviderAccountFactory.create_batch(4, credentials={"api_key": "batch-key-000000"})
    before = raw_secrets(provider, account)
    token, forward_secret = provider.webhook_token, account.forward_secret

    settings.SMSHUB_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out = io.StringIO()
    with pytest.raises(CommandError, match="not under the first key"):
        call_command("rotate_encryption_key", "--check", stdout=out)
    assert "providers.ProviderAccount (credentials, webhook_token): 10 not under" in out.getvalue()
    out = io.StringIO()
    call_command("rotate_encryption_key", "--batch-size", "2", stdout=out)
    done = out.getvalue()
    assert "providers.ProviderAccount (credentials, webhook_token): 5 re-encrypted" in done
    assert "campaigns.Account (forward_secret): 1 re-encrypted" in done
    call_command("rotate_encryption_key", "--check", stdout=io.StringIO())

    after = raw_secrets(provider, account)
    for column in before:
        assert after[column] != before[column]
        Fernet(NEW_KEY).decrypt(after[column].encode())
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(after[column].encode())

    # The old key removed: the new one reads everything.
    settings.SMSHUB_ENCRYPTION_KEYS = [NEW_KEY]
    provider = ProviderAccount.objects.get(pk=provider.pk)
    assert provider.credentials["api_key"] == API_KEY
    assert provider.webhook_token == token
    assert Account.objects.get(pk=account.pk).forward_secret == forward_secret
    assert all(
        p.credentials == {"api_key": "batch-key-000000"}
        for p in ProviderAccount.objects.filter(pk__in=[o.pk for o in others])
    )
    assert ProviderAccount.for_webhook("simulator", token) == provider

    # The old key alone now reads nothing, and says why.
    settings.SMSHUB_ENCRYPTION_KEYS = [OLD_KEY]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        ProviderAccount.objects.get(pk=provider.pk)


def test_the_command_makes_keys(capsys):
    call_command("rotate_encryption_key", "--generate-key")
    key = capsys.readouterr().out.strip()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"ok")) == b"ok"


def test_a_malformed_key_is_a_clear_error(db, settings):
    settings.SMSHUB_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="key 1 is not a Fernet key"):
        crypto.encrypt("x")


def test_development_key_is_derived_from_the_secret_key(settings):
    settings.SMSHUB_ENCRYPTION_KEYS = []
    assert crypto.configured_keys() == [crypto.derived_key(settings.SECRET_KEY)]
    assert crypto.decrypt(crypto.encrypt("hello")) == "hello"


def manage_check(**env_overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smshub.settings", "DEBUG": "false"}
    env.update({"SECRET_KEY": "a-real-secret-key-for-this-test-only-0123456789abcdef"})
    env.update({"SMSHUB_ENCRYPTION_KEYS": "", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_requires_the_encryption_key():
    refused = manage_check()
    assert refused.returncode != 0
    assert "SMSHUB_ENCRYPTION_KEYS is not set" in refused.stderr
    assert manage_check(SMSHUB_ENCRYPTION_KEYS=f"{NEW_KEY},{OLD_KEY}").returncode == 0
    malformed = manage_check(SMSHUB_ENCRYPTION_KEYS=f"{NEW_KEY},change-me")
    assert malformed.returncode != 0
    assert "key 2 is not a Fernet key" in malformed.stderr


# --- admin -------------------------------------------------------------------------------------


def test_admin_shows_secrets_masked_only(admin_client, secrets_saved):
    provider, account = secrets_saved
    page = admin_client.get(
        reverse("admin:providers_provideraccount_change", args=[provider.pk])
    ).content.decode()
    assert API_KEY not in page and HOOK_PASSWORD not in page
    assert "••••••••0123" in page and "••••••••4567" in page
    assert provider.webhook_url("dlr") in page  # to paste into the provider's console
    page = admin_client.get(
        reverse("admin:campaigns_account_change", args=[account.pk])
    ).content.decode()
    assert account.forward_secret not in page
    assert "••••••••" + account.forward_secret[-4:] in page


def test_admin_replaces_a_secret_without_showing_it(admin_client, secrets_saved):
    provider, _ = secrets_saved
    url = reverse("admin:providers_provideraccount_change", args=[provider.pk])
    assert provider.slug == "simulator"
    data = {
        "name": provider.name,
        "slug": provider.slug,
        "base_url": provider.base_url,
        "simulator__api_key": "a-replacement-key-9999",
        "webhook__webhook_username": "hub",
        "webhook__webhook_password": "",  # left empty: kept
        "enabled": "on",
        "priority": "100",
        "max_per_second": "",
    }
    assert admin_client.post(url, data).status_code == 302
    provider.refresh_from_db()
    assert provider.credentials["api_key"] == "a-replacement-key-9999"
    assert provider.credentials["webhook_password"] == HOOK_PASSWORD
    stored = raw("providers_provideraccount", "credentials", provider.pk)
    assert "a-replacement-key-9999" not in stored and HOOK_PASSWORD not in stored
    assert "a-replacement-key-9999" not in admin_client.get(url).content.decode()


# --- the data migration ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_plaintext_rows(settings):
    settings.SMSHUB_ENCRYPTION_KEYS = [NEW_KEY]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    before = [("providers", "0001_initial"), ("campaigns", "0004_compose_price")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldProvider = old_apps.get_model("providers", "ProviderAccount")
    OldAccount = old_apps.get_model("campaigns", "Account")
    plain = OldProvider.objects.create(
        name="Legacy",
        slug="simulator",
        base_url="http://127.0.0.1:9",
        credentials={"api_key": API_KEY},
        webhook_token="legacy-token-0123456789-abcdefghij-klmnop",
    )
    OldAccount.objects.create(name="Legacy Ltd", forward_secret="legacy-forward-secret-0123456789")

    executor = MigrationExecutor(connection)
    executor.migrate(leaves)

    provider = ProviderAccount.objects.get(pk=plain.pk)
    assert provider.credentials == {"api_key": API_KEY}
    assert provider.webhook_token == "legacy-token-0123456789-abcdefghij-klmnop"
    assert ProviderAccount.for_webhook("simulator", provider.webhook_token) == provider
    account = Account.objects.get(name="Legacy Ltd")
    assert account.forward_secret == "legacy-forward-secret-0123456789"
    stored = raw_secrets(provider, account)
    assert API_KEY not in stored["credentials"]
    assert "legacy-token" not in stored["webhook_token"]
    assert "legacy-forward" not in stored["forward_secret"]
