"""Trace and signal ids are indexed through a 64-bit key (`audit.store.django_rows.lookup_key`) instead of the
id itself. Both ids are random, so every new decision writes a page of each of their indexes; 8-byte keys make
those indexes a third of the size (bench/audit_store). Stored decisions get their keys here (the guard is lifted
for that one update, inside the migration's transaction, as in 0008)."""

from django.db import migrations, models

from audit import triggers
from audit.store.django_rows import lookup_key

_CHUNK = 2000


def backfill(apps, schema_editor):
    """Raw SQL, so neither a model's manager (which refuses updates) nor a historical model is involved; in chunks
    of rows by id, so a large store is never read into memory at once."""
    connection = schema_editor.connection
    with triggers.lifted(schema_editor.execute, connection.vendor, tables=("audit_logs",)), connection.cursor() as c:
        last = 0
        while True:
            c.execute(
                "SELECT id, trace_id, signal_id FROM audit_logs WHERE id > %s AND trace_key IS NULL ORDER BY id "
                "LIMIT %s",
                [last, _CHUNK],
            )
            rows = c.fetchall()
            if not rows:
                return
            c.executemany(
                "UPDATE audit_logs SET trace_key = %s, signal_key = %s WHERE id = %s",
                [(lookup_key(trace), lookup_key(signal), pk) for pk, trace, signal in rows],
            )
            last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("audit", "0010_ascending_indexes")]

    operations = [
        migrations.AddField(model_name="decision", name="trace_key", field=models.BigIntegerField(null=True)),
        migrations.AddField(model_name="decision", name="signal_key", field=models.BigIntegerField(null=True)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="decision", name="audit_trace"),
        migrations.RemoveIndex(model_name="decision", name="audit_signal"),
        migrations.AddIndex(model_name="decision", index=models.Index(fields=["trace_key"], name="audit_trace_key")),
        migrations.AddIndex(model_name="decision", index=models.Index(fields=["signal_key"], name="audit_signal_key")),
    ]
