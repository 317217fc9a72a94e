"""The audit event the gate publishes to JetStream stream `CIO_AUDIT`, one per decision (SPEC §5)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from gate.contracts.envelope import DecisionKind, FieldError, Reason


class AuditEvent(BaseModel):
    decision_id: str
    ts: datetime
    gate_id: str
    subject: str
    strategy_id: str | None
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
