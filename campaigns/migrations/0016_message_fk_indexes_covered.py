"""A message's account, campaign and provider account have no index of their own: an index of
Meta leads with each (message_account_idx, message_campaign_status_idx,
message_provider_claimed_idx), and every status move rewrites every index of the row.

Only the indexes are dropped: Django's own AlterField would also drop and add the foreign keys
again, which on PostgreSQL checks every row of the table while writes wait."""

import django.db.models.deletion
from django.db import migrations, models

# (index Django named when it created the field's index, column)
COVERED = [
    ("campaigns_message_account_id_6c4fa801", "account_id"),
    ("campaigns_message_campaign_id_de4b21fa", "campaign_id"),
    ("campaigns_message_provider_account_id_7bc973b3", "provider_account_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0015_user_language"),
        ("providers", "0006_provider_health"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "campaigns_message" ("{column}")',
                )
                for index, column in COVERED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="campaigns.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="campaigns.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="provider_account",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="providers.provideraccount",
                    ),
                ),
            ],
        )
    ]
