"""The SPEC §4 envelope that wraps every gate reply (and, later, every REST response)."""

from typing import Any, Literal

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
