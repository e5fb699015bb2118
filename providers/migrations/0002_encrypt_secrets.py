"""Secrets at rest, step 1: encrypted copies of the credentials and the webhook token, and the
token's digest for lookups, written for every existing row (0003 drops the plaintext columns)."""

from django.db import migrations, models

import smshub.crypto


def encrypt_rows(apps, schema_editor):
    ProviderAccount = apps.get_model("providers", "ProviderAccount")
    for account in ProviderAccount.objects.order_by("pk").iterator(chunk_size=500):
        ProviderAccount.objects.filter(pk=account.pk).update(
            credentials_encrypted=account.credentials or {},
            webhook_token_encrypted=account.webhook_token,
            webhook_token_digest=smshub.crypto.digest(account.webhook_token),
        )


def decrypt_rows(apps, schema_editor):
    ProviderAccount = apps.get_model("providers", "ProviderAccount")
    for account in ProviderAccount.objects.order_by("pk").iterator(chunk_size=500):
        ProviderAccount.objects.filter(pk=account.pk).update(
            credentials=account.credentials_encrypted or {},
            webhook_token=account.webhook_token_encrypted,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="provideraccount",
            name="credentials_encrypted",
            field=smshub.crypto.EncryptedJSONField(null=True),
        ),
        migrations.AddField(
            model_name="provideraccount",
            name="webhook_token_encrypted",
            field=smshub.crypto.EncryptedTextField(null=True),
        ),
        migrations.AddField(
            model_name="provideraccount",
            name="webhook_token_digest",
            field=models.CharField(max_length=64, null=True),
        ),
        # Not unique while both columns exist: going back re-adds the plaintext column empty.
        migrations.AlterField(
            model_name="provideraccount",
            name="webhook_token",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
