"""The database itself refuses to change an audit record (audit/triggers.py)."""

from django.db import migrations

from audit import triggers


def create(apps, schema_editor):
    triggers.create(schema_editor.execute, schema_editor.connection.vendor)


def drop(apps, schema_editor):
    triggers.drop(schema_editor.execute, schema_editor.connection.vendor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
