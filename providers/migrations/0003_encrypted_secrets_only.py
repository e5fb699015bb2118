"""Secrets at rest, step 2: the plaintext columns go; the encrypted ones take their names."""

from django.db import migrations, models

import providers.models
import smshub.crypto


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0002_encrypt_secrets"),
    ]

    operations = [
        migrations.RemoveField(model_name="provideraccount", name="credentials"),
        migrations.RemoveField(model_name="provideraccount", name="webhook_token"),
        migrations.RenameField(
            model_name="provideraccount", old_name="credentials_encrypted", new_name="credentials"
        ),
        migrations.RenameField(
            model_name="provideraccount",
            old_name="webhook_token_encrypted",
            new_name="webhook_token",
        ),
        migrations.AlterField(
            model_name="provideraccount",
            name="credentials",
            field=smshub.crypto.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="provideraccount",
            name="webhook_token",
            field=smshub.crypto.EncryptedTextField(
                default=providers.models.new_webhook_token, editable=False
            ),
        ),
        migrations.AlterField(
            model_name="provideraccount",
            name="webhook_token_digest",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
    ]
