"""On PostgreSQL, `audit_logs` becomes a table partitioned by day on `ts` (audit/store/partitions.py); SQLite keeps
its table. A partitioned table's unique keys must include the partition key, so the primary key is (id, ts) and
`decision_id` is unique with `ts` (the ingest refuses a duplicate whose `ts` differs itself: audit/store/django_db).
The model state does not change: Django reads by `id` and `decision_id` exactly as before.

The rows are copied into the new table inside the migration's transaction, with the old table locked; ids carry on
from the old sequence. Not reversible: going back would need every decision copied again into one table."""

from datetime import UTC, timedelta

from django.db import migrations

from audit import triggers
from audit.store import partitions


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    with connection.cursor() as c:
        c.execute("LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE")
        c.execute("SELECT pg_get_serial_sequence('audit_logs', 'id'), min(ts), max(ts) FROM audit_logs")
        old_sequence, low, high = c.fetchone()
        execute("ALTER TABLE audit_logs RENAME TO audit_logs_old")
        execute("CREATE SEQUENCE audit_logs_new_id_seq")
        # LIKE copies the columns in order, their types and NOT NULLs; not the identity, indexes or constraints.
        execute("CREATE TABLE audit_logs (LIKE audit_logs_old) PARTITION BY RANGE (ts)")
        execute("ALTER TABLE audit_logs ALTER COLUMN id SET DEFAULT nextval('audit_logs_new_id_seq')")
        execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF audit_logs DEFAULT")
        # The days the stored rows cover get their partitions (none of them lands in DEFAULT), then today and ahead.
        if low is not None:
            day, last_day = low.astimezone(UTC).date(), high.astimezone(UTC).date()
            while day <= last_day:
                partitions.create_day(c, day)
                day += timedelta(days=1)
        partitions.ensure_partitions(c)
        c.execute("INSERT INTO audit_logs SELECT * FROM audit_logs_old")
        c.execute(f"SELECT last_value, is_called FROM {old_sequence}")  # noqa: S608 (from the catalog): ids carry on
        c.execute("SELECT setval('audit_logs_new_id_seq', %s, %s)", list(c.fetchone()))
    execute("DROP TABLE audit_logs_old")  # with its identity sequence, indexes and triggers
    execute("ALTER SEQUENCE audit_logs_new_id_seq RENAME TO audit_logs_id_seq")
    execute("ALTER SEQUENCE audit_logs_id_seq OWNED BY audit_logs.id")
    execute("ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (id, ts)")
    execute("ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_decision_once UNIQUE (decision_id, ts)")
    # The model's secondary indexes, on the parent: PostgreSQL gives each partition, present and future, its own.
    model = apps.get_model("audit", "Decision")
    for index in model._meta.indexes:
        schema_editor.add_index(model, index)
    triggers.create(execute, connection.vendor, tables=("audit_logs",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_trace_and_signal_keys")]

    operations = [migrations.RunPython(partition)]  # irreversible: see above
