"""The gates' signed checkpoints (audit_checkpoints), and the database refusing DELETE (and on PostgreSQL TRUNCATE)
of every audit table, not only UPDATE (audit/triggers.py)."""

from django.db import migrations, models

from audit import triggers

# The tables guarded before this migration: they gain the removal guard here; audit_checkpoints gets all of it.
EARLIER = tuple(table for table in triggers.TABLES if table != "audit_checkpoints")


def guard(apps, schema_editor):
    triggers.create(schema_editor.execute, schema_editor.connection.vendor, tables=triggers.TABLES)


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    triggers.drop(schema_editor.execute, vendor, tables=("audit_checkpoints",))
    triggers.drop_removal_guard(schema_editor.execute, vendor, tables=EARLIER)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_mcp_calls"),
    ]

    operations = [
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("chain", models.CharField(max_length=160)),
                ("seq", models.BigIntegerField()),
                ("payload", models.TextField()),
                ("ingested_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "db_table": "audit_checkpoints",
                "constraints": [models.UniqueConstraint(fields=("chain", "seq"), name="audit_checkpoint_once")],
            },
        ),
        migrations.RunPython(guard, unguard),
    ]
