"""The promoted Signal: the validated intent with exactly the changes today's trade engine needs."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class CioStamp(BaseModel):
    decision_id: str
    policy_version: int
    approved_at: datetime
    original_source: str


def cio_stamp_json(
    decision_id: str, policy_version: int, approved_at: datetime, original_source: str
) -> dict[str, Any]:
    """`CioStamp(...).model_dump(mode="json")`, built directly on the hot path (tests check the two agree)."""
    return {
        "decision_id": decision_id,
        "policy_version": policy_version,
        "approved_at": approved_at.isoformat().replace("+00:00", "Z"),
        "original_source": original_source,
    }


def build_signal_payload(body: dict[str, Any], stamp: dict[str, Any], source: str, traceparent: str) -> dict[str, Any]:
    """Turn `body` (the validated intent, dumped with `exclude_none`) into the signal the trade engine reads.

    Null fields are omitted so the trade engine applies its own defaults (it rejects an explicit null for
    `strength`, `time_in_force`, `order_type`, ...). `timestamp` is already ISO 8601 with the producer's time.
    Nothing about the order is rewritten. `body` is modified in place and returned.

    `decision_id` goes at the top level too: the trade engine reads it there (its `Signal.decision_id`, "assigned
    by petrosa-cio") and carries it to its orders and fill events; a producer's own `decision_id` is replaced,
    so an order can only ever point at the decision that let it through.
    """
    body["source"] = source
    body["decision_id"] = stamp["decision_id"]
    meta = dict(body.get("meta") or {})
    meta["cio"] = stamp  # `CioStamp` as JSON
    body["meta"] = meta
    trace_context = dict(body.get("_otel_trace_context") or {})
    trace_context["traceparent"] = traceparent
    body["_otel_trace_context"] = trace_context
    return body


class PromotedSignal(BaseModel):
    """Typed view of a promoted signal, used by consumers and tests to read what the gate sent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy_id: str
    symbol: str
    action: str
    source: str
    timestamp: datetime | None = None
    meta: dict[str, Any]
