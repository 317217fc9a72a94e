"""The decisions' indexes in ascending order. Descending ones took every new decision at their left-hand end, where
SQLite splits a full page in half and leaves the older half half-empty for good: each of them cost about twice its
entries' size (bench/audit_store, step `storage`). Ascending, new entries go to the right-hand end, where a full
page is left full. Every database walks an ascending index backwards for the newest-first lists, so the queries'
plans are unchanged."""

from django.db import migrations, models

_TS = ["ts", "decision_id"]
_DECISION_INDEXES = {
    "audit_ts": [],
    "audit_strategy_key_ts": ["strategy_key"],
    "audit_strategy_key_symbol_ts": ["strategy_key", "symbol"],
    "audit_symbol_ts": ["symbol"],
    "audit_decision_ts": ["decision"],
    "audit_version_ts": ["policy_version"],
    "audit_gate_ts": ["gate_id"],
}


def _rebuilt(model_name: str, name: str, fields: list[str]) -> list[migrations.operations.base.Operation]:
    return [
        migrations.RemoveIndex(model_name=model_name, name=name),
        migrations.AddIndex(model_name=model_name, index=models.Index(fields=fields, name=name)),
    ]


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_minute_rollups")]

    operations = [
        *[op for name, head in _DECISION_INDEXES.items() for op in _rebuilt("decision", name, [*head, *_TS])],
        *_rebuilt("decisionreason", "audit_reason_ts", ["code", *_TS]),
    ]
