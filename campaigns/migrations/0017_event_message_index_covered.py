"""A message event's message has no index of its own: event_message_idx (message, at) leads
with it, and a message gets an event at every status move. As in 0016, only the index is
dropped; the foreign key stays as it is."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "campaigns_messageevent_message_id_961b367d"  # the one Django made with the field


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0016_message_fk_indexes_covered")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "campaigns_messageevent" ("message_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="messageevent",
                    name="message",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="campaigns.message",
                    ),
                )
            ],
        )
    ]
