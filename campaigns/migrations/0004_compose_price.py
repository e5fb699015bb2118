from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_route_per_category"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="price_per_segment",
            field=models.DecimalField(
                blank=True,
                decimal_places=4,
                help_text="What one SMS segment costs this account, for the estimate shown before "
                "sending. Empty: no estimate (segments only).",
                max_digits=8,
                null=True,
                verbose_name="price per SMS segment",
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="price_currency",
            field=models.CharField(
                blank=True,
                default="EUR",
                help_text="e.g. EUR, RON, USD.",
                max_length=3,
                verbose_name="currency",
            ),
        ),
    ]
