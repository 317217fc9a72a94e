"""How a stored decision is shown: one shape for the REST list, the live feed and the admin list."""

from typing import Any

from audit.records import DecisionRecord


def decision_summary(record: DecisionRecord) -> dict[str, Any]:
    return {
        "decision_id": record.decision_id,
        "ts": record.ts.isoformat().replace("+00:00", "Z"),
        "gate_id": record.gate_id,
        "strategy_id": record.strategy_id,
        "strategy_key": record.strategy_key,
        "symbol": record.symbol,
        "action": record.action,
        "signal_id": record.signal_id,
        "decision": record.decision,
        "reason_codes": list(record.reason_codes),
        "policy_version": record.policy_version,
        "trace_id": record.trace_id,
        "latency_us": record.latency_us,
        "trading_state": record.trading_state,
        # Decided by a shadow gate: audited, never promoted, nobody answered (docs/audit.md, "Shadow decisions").
        "shadow": record.shadow,
    }


def decision_detail(record: DecisionRecord) -> dict[str, Any]:
    """Everything a reviewer needs to re-judge the decision: the event as the gate published it (intent, every
    reason with observed and limit, policy version and checksum, trading state, snapshot time, trace) and its
    place in the gate's hash chain."""
    return {
        **decision_summary(record),
        "policy_checksum": record.policy_checksum,
        "snapshot_ts": record.snapshot_ts.isoformat().replace("+00:00", "Z") if record.snapshot_ts else None,
        "span_id": record.span_id,
        "intake_subject": record.subject,
        "audit_subject": record.audit_subject,
        "chain": {"id": record.chain, "seq": record.seq, "prev_hash": record.prev_hash, "hash": record.hash},
        "event": record.event_dict(),
    }
