"""`cio.portfolio.snapshot`: what the trade engine (or the simulator) reports about the book."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gate.contracts.intent import _finite


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    quantity: Annotated[float, AfterValidator(_finite)] = Field(description="Signed base units: > 0 long, < 0 short")
    notional_usd: Annotated[float, Field(ge=0)] = Field(description="Absolute exposure in USD")


class PortfolioSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="allow")

    ts: datetime
    equity_usd: Annotated[float, Field(ge=0)]
    drawdown_pct: Annotated[float, Field(ge=0, le=1)] = 0.0
    positions: dict[str, Position] = Field(default_factory=dict)

    @property
    def gross_exposure_usd(self) -> float:
        return sum(p.notional_usd for p in self.positions.values())
