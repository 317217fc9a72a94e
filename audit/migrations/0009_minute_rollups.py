"""Per-minute rollups of the serving gates' decisions (audit/store/rollups.py), so the Strategist's statistics
cost the same whatever the window holds. Counted from the decisions already stored, in the migration's
transaction (`audit_rollups_rebuild` does the same for any range later). No immutability guard: counts change."""

from django.db import migrations, models

from audit.store.django_rows import rebuild_all


def count_stored(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        rebuild_all(cursor, connection.vendor, connection.ops.adapt_datetimefield_value, "%s")


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_strategy_key")]

    operations = [
        migrations.CreateModel(
            name="DecisionMinute",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("minute", models.DateTimeField()),
                ("kind", models.CharField(max_length=8)),
                ("key", models.CharField(max_length=200)),
                ("decision", models.CharField(max_length=16)),
                ("n", models.BigIntegerField()),
            ],
            options={
                "db_table": "audit_decision_minutes",
                "constraints": [
                    models.UniqueConstraint(fields=("minute", "kind", "key", "decision"), name="audit_minute_once")
                ],
            },
        ),
        migrations.RunPython(count_stored, migrations.RunPython.noop),
    ]
