"""The audit event the gate publishes to JetStream stream `CIO_AUDIT`, one per decision (docs/contracts.md)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from cio_kernel.contracts.envelope import DecisionKind, FieldError, Reason, field_errors_json, reason_json


class AuditEvent(BaseModel):
    decision_id: str
    ts: datetime
    gate_id: str
    subject: str
    strategy_id: str | None  # as the strategy spelled it
    # What every control compared (`strategy_key` of the id); None when the id is no strategy id (a VAL_ERR).
    strategy_key: str | None = None
    symbol: str | None
    action: str | None
    intent_id: str | None
    decision: DecisionKind
    reasons: list[Reason]
    field_errors: list[FieldError] | None = None
    policy_version: int | None
    policy_checksum: str | None
    trace_id: str
    span_id: str
    traceparent: str
    latency_us: int
    signal_subject: str | None
    # The intent as validated; for a VAL_ERR, `raw_intent` holds what arrived (truncated) instead.
    intent: dict[str, Any] | None
    raw_intent: str | None = None
    state: dict[str, Any] | None = None
    # Decided by a gate in shadow mode (docs/deploy.md, "Shadow mode"): audited, never promoted, nobody answered.
    # Written only when true, so every record of a serving gate stays exactly what it was before the field existed.
    shadow: bool = Field(False, exclude_if=lambda shadow: not shadow)


def encode_audit_event(
    *,
    decision_id: str,
    ts: datetime,
    gate_id: str,
    subject: str,
    strategy_id: str | None,
    strategy_key: str | None,
    symbol: str | None,
    action: str | None,
    intent_id: str | None,
    decision: DecisionKind,
    reasons: Sequence[Reason],
    field_errors: Sequence[FieldError] | None,
    policy_version: int | None,
    policy_checksum: str | None,
    trace_id: str,
    span_id: str,
    traceparent: str,
    latency_us: int,
    signal_subject: str | None,
    intent: dict[str, Any] | None,
    raw_intent: str | None,
    state: dict[str, Any] | None,
    shadow: bool = False,
) -> bytes:
    """`AuditEvent(...).model_dump_json()`, written directly on the hot path (see `cio_kernel.contracts.envelope`)."""
    event: dict[str, Any] = {
        "decision_id": decision_id,
        "ts": ts,
        "gate_id": gate_id,
        "subject": subject,
        "strategy_id": strategy_id,
        "strategy_key": strategy_key,
        "symbol": symbol,
        "action": action,
        "intent_id": intent_id,
        "decision": decision,
        "reasons": [reason_json(r) for r in reasons],
        "field_errors": field_errors_json(field_errors),
        "policy_version": policy_version,
        "policy_checksum": policy_checksum,
        "trace_id": trace_id,
        "span_id": span_id,
        "traceparent": traceparent,
        "latency_us": latency_us,
        "signal_subject": signal_subject,
        "intent": intent,
        "raw_intent": raw_intent,
        "state": state,
    }
    if shadow:
        event["shadow"] = True
    return orjson.dumps(event, option=orjson.OPT_UTC_Z)
