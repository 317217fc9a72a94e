"""The decision envelope (docs/contracts.md) that wraps every gate reply (and, later, every REST response)."""

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

DecisionKind = Literal["APPROVED", "REJECTED", "RETRY_SAFE"]


class Reason(BaseModel):
    """Why an intent was not promoted. `observed`/`limit` are filled when a numeric limit was breached."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    observed: float | str | None = None
    limit: float | str | None = None


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    type: str


class DecisionData(BaseModel):
    decision: DecisionKind
    decision_id: str
    intent_id: str | None
    policy_version: int | None
    reasons: list[Reason]
    signal_subject: str | None
    field_errors: list[FieldError] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str


class Envelope(BaseModel):
    success: bool
    data: Any
    trace_id: str
    error: ErrorBody | None


class DecisionEnvelope(Envelope):
    data: DecisionData


# The gate answers thousands of intents a second: the hot path writes these shapes directly instead of building
# and dumping the models above (a tenth of the cost). The models stay the contract: tests check that what the
# encoders write validates into them and equals the models' own dump (tests/unit/test_wire_encoders.py).


def reason_json(reason: Reason) -> dict[str, Any]:
    return {"code": reason.code, "message": reason.message, "observed": reason.observed, "limit": reason.limit}


def field_errors_json(errors: Sequence[FieldError] | None) -> list[dict[str, str]] | None:
    if errors is None:
        return None
    return [{"field": e.field, "message": e.message, "type": e.type} for e in errors]


def encode_decision_envelope(
    *,
    decision: DecisionKind,
    decision_id: str,
    intent_id: str | None,
    policy_version: int | None,
    reasons: Sequence[Reason],
    signal_subject: str | None,
    field_errors: Sequence[FieldError] | None,
    trace_id: str,
) -> bytes:
    """`DecisionEnvelope(...).model_dump_json()` for a decision: `error` is the first reason's code and every
    reason's message, unless the intent was approved."""
    approved = decision == "APPROVED"
    error = None if approved else {"code": reasons[0].code, "message": "; ".join(r.message for r in reasons)}
    return orjson.dumps(
        {
            "success": approved,
            "data": {
                "decision": decision,
                "decision_id": decision_id,
                "intent_id": intent_id,
                "policy_version": policy_version,
                "reasons": [reason_json(r) for r in reasons],
                "signal_subject": signal_subject,
                "field_errors": field_errors_json(field_errors),
            },
            "trace_id": trace_id,
            "error": error,
        }
    )
