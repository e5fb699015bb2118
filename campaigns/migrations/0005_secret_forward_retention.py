"""Secrets at rest: an account's forwarding signature key is stored encrypted (existing keys are
encrypted here). Retention: a campaign keeps the counts of its purged messages, and the tables
purged by age get an index on that age."""

from django.db import migrations, models

import campaigns.models
import smshub.crypto


def encrypt_rows(apps, schema_editor):
    Account = apps.get_model("campaigns", "Account")
    for account in Account.objects.order_by("pk").only("pk", "forward_secret").iterator(500):
        Account.objects.filter(pk=account.pk).update(
            forward_secret_encrypted=account.forward_secret
        )


def decrypt_rows(apps, schema_editor):
    Account = apps.get_model("campaigns", "Account")
    for account in (
        Account.objects.order_by("pk").only("pk", "forward_secret_encrypted").iterator(500)
    ):
        Account.objects.filter(pk=account.pk).update(
            forward_secret=account.forward_secret_encrypted
        )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_compose_price"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="forward_secret_encrypted",
            field=smshub.crypto.EncryptedTextField(null=True),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.RemoveField(model_name="account", name="forward_secret"),
        migrations.RenameField(
            model_name="account", old_name="forward_secret_encrypted", new_name="forward_secret"
        ),
        migrations.AlterField(
            model_name="account",
            name="forward_secret",
            field=smshub.crypto.EncryptedTextField(
                default=campaigns.models.new_secret,
                editable=False,
                help_text="Key of the HMAC-SHA256 signature in the X-SMSHub-Signature header.",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="archived_counts",
            field=models.JSONField(
                blank=True,
                default=dict,
                editable=False,
                help_text="Messages purged by retention, by status: campaign counts add them.",
            ),
        ),
        migrations.AddIndex(
            model_name="forward",
            index=models.Index(fields=["created_at"], name="forward_created_idx"),
        ),
        migrations.AddIndex(
            model_name="pendingdeliveryreport",
            index=models.Index(fields=["received_at"], name="pending_dlr_received_idx"),
        ),
        migrations.AddIndex(
            model_name="reply",
            index=models.Index(fields=["received_at"], name="reply_received_idx"),
        ),
    ]
