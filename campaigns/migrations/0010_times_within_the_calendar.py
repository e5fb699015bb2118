"""Times stored before the hub checked their range (`campaigns.timerange`) are brought within
years 2000 to 3000: near year 1 or 9999 a time cannot be shown in a time zone, and every page
showing it failed. Nothing changes for the hub: such a message was never going to be sent."""

from datetime import UTC, datetime

from django.db import migrations

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
FIELDS = {
    "Message": [
        "scheduled_at",
        "window_start",
        "window_end",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "delivered_at",
        "created_at",
    ],
    "Reply": ["received_at"],
    "PendingDeliveryReport": ["occurred_at", "received_at"],
    "MessageEvent": ["at"],
}


def within(apps, schema_editor):
    for name, fields in FIELDS.items():
        model = apps.get_model("campaigns", name)
        for field in fields:
            model.objects.filter(**{f"{field}__gt": LATEST}).update(**{field: LATEST})
            model.objects.filter(**{f"{field}__lt": EARLIEST}).update(**{field: EARLIEST})


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0009_provider_ids_not_unique")]

    operations = [migrations.RunPython(within, migrations.RunPython.noop)]
