"""The database itself refuses to change an audit record (audit/triggers.py)."""

from django.db import migrations

from audit import triggers

# The tables this migration guarded (later migrations guard the tables they add).
TABLES = ("audit_logs", "audit_log_reasons", "audit_quarantine", "thoughts", "incidents")


def create(apps, schema_editor):
    triggers.create(schema_editor.execute, schema_editor.connection.vendor, tables=TABLES)


def drop(apps, schema_editor):
    triggers.drop(schema_editor.execute, schema_editor.connection.vendor, tables=TABLES, drop_function=True)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
