"""Decisions carry the key every gate control compared (`cio_kernel.contracts.identity.strategy_key`): filters and
statistics group a strategy's decisions by it, whatever spelling each intent used. Records stored before gates
stamped the key get it derived from their `strategy_id` (the guard is lifted for that one update, inside the
migration's transaction), so `audit_verify` finds them as they were."""

from django.db import migrations, models

from audit import triggers
from cio_kernel.contracts.identity import IdentityError, strategy_key


def backfill(apps, schema_editor):
    """Raw SQL, so neither a model's manager (which refuses updates) nor a historical model is involved."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT strategy_id FROM audit_logs WHERE strategy_key IS NULL AND strategy_id IS NOT NULL"
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return
    with triggers.lifted(schema_editor.execute, schema_editor.connection.vendor, tables=("audit_logs",)):
        for strategy_id in ids:
            try:
                key = strategy_key(strategy_id)
            except IdentityError:
                continue  # not a strategy id: the gate would not have stamped a key either
            schema_editor.execute(
                "UPDATE audit_logs SET strategy_key = %s WHERE strategy_id = %s AND strategy_key IS NULL",
                (key, strategy_id),
            )


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_checkpoints_and_removal_guard")]

    operations = [
        migrations.RemoveIndex(model_name="decision", name="audit_strategy_ts"),
        migrations.RemoveIndex(model_name="decision", name="audit_strategy_symbol_ts"),
        migrations.AddField(
            model_name="decision", name="strategy_key", field=models.CharField(max_length=200, null=True)
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(fields=["strategy_key", "-ts", "-decision_id"], name="audit_strategy_key_ts"),
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                fields=["strategy_key", "symbol", "-ts", "-decision_id"], name="audit_strategy_key_symbol_ts"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
