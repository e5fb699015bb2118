from django.db import migrations, models


class Migration(migrations.Migration):
    """Delivery reports matched by number (providers whose send gives no id, such as
    Expertflow): the index that finds the oldest message to a number awaiting its report, and
    the number an unmatched report names."""

    dependencies = [
        ("campaigns", "0011_reply_from_unknown_number"),
    ]

    operations = [
        migrations.AddField(
            model_name="pendingdeliveryreport",
            name="recipient",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AlterField(
            model_name="pendingdeliveryreport",
            name="provider_message_id",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(
                    ("provider_message_id", ""),
                    models.Q(("status", "sent"), ("status", "unknown"), _connector="OR"),
                ),
                fields=["provider_account", "recipient", "claimed_at"],
                name="message_awaiting_number_idx",
            ),
        ),
    ]
