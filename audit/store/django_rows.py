"""The Django backend's rows: what `insert_decisions` writes into `audit_logs` and `audit_log_reasons` for a
record. Without Django, so that the benchmark's preload (bench/audit_store) writes exactly these rows, also from
a second process; the database's own datetime conversion is passed in (`adapt`)."""

from collections.abc import Callable
from datetime import datetime

from audit.records import DecisionRecord

DECISION_COLUMNS = (
    "decision_id", "ts", "gate_id", "subject", "strategy_id", "strategy_key", "symbol", "action", "intent_id",
    "signal_id", "decision", "reason_codes", "policy_version", "policy_checksum", "trace_id", "span_id", "latency_us",
    "trading_state", "snapshot_ts", "audit_subject", "payload", "chain", "seq", "prev_hash", "hash", "ingested_at",
)  # fmt: skip


def insert_decision_sql(placeholder: str) -> str:
    """ON CONFLICT DO NOTHING: another ingest process may commit the same decision between our read and this write
    (SQLite and PostgreSQL both speak it). Built from the constant column names above only."""
    values = ", ".join([placeholder] * len(DECISION_COLUMNS))
    return (
        f"INSERT INTO audit_logs ({', '.join(DECISION_COLUMNS)}) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT (decision_id) DO NOTHING"
    )


def insert_reason_sql(placeholder: str) -> str:
    values = ", ".join([placeholder] * 3)
    return (
        f"INSERT INTO audit_log_reasons (decision_id, code, ts) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT (decision_id, code) DO NOTHING"
    )


def row_values(r: DecisionRecord, ingested_at: object, adapt: Callable[[datetime], object]) -> tuple[object, ...]:
    """The `audit_logs` row for a record, in `DECISION_COLUMNS` order, with datetimes as `adapt` makes them."""
    return (
        r.decision_id, adapt(r.ts), r.gate_id, r.subject, r.strategy_id, r.strategy_key, r.symbol, r.action,
        r.intent_id, r.signal_id, r.decision, " ".join(r.reason_codes), r.policy_version, r.policy_checksum,
        r.trace_id, r.span_id, r.latency_us, r.trading_state, adapt(r.snapshot_ts) if r.snapshot_ts else None,
        r.audit_subject, r.payload.decode(), r.chain, r.seq, r.prev_hash, r.hash, ingested_at,
    )  # fmt: skip


def reason_rows(r: DecisionRecord, row: tuple[object, ...]) -> list[tuple[object, object, object]]:
    """The `audit_log_reasons` rows of a record whose `audit_logs` row is `row` (they share its stored `ts`)."""
    return [(r.decision_id, code, row[1]) for code in r.reason_codes]
