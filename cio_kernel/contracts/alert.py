"""`cio.alert.<severity>`: an alert any process raises (SPEC §7); alerting delivers it to every channel."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid")

    alert_id: Annotated[str, Field(min_length=1, max_length=64)]
    ts: datetime
    severity: Severity
    source: Annotated[str, Field(min_length=1, max_length=200)]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    detail: dict[str, Any] = Field(default_factory=dict)
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None


def alert_subject(severity: Severity) -> str:
    return f"cio.alert.{severity.value}"
