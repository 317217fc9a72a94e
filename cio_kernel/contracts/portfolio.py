"""`cio.portfolio.snapshot`: what the trade engine (or the simulator) reports about the book.

The daily-PnL fields are optional, so producers that only report equity, drawdown and positions stay valid;
a policy with a daily loss limit treats a snapshot without them as "PnL unknown" (docs/contracts.md).
"""

from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cio_kernel.contracts.identity import StrategyId, Symbol, strategy_key
from cio_kernel.contracts.intent import finite

FiniteFloat = Annotated[float, AfterValidator(finite)]


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    quantity: FiniteFloat = Field(description="Signed base units: > 0 long, < 0 short")
    notional_usd: Annotated[float, Field(ge=0)] = Field(description="Absolute exposure in USD")


class StrategyBook(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="allow")

    daily_pnl_usd: FiniteFloat = Field(description="Realised + unrealised PnL since `pnl_since`; < 0 is a loss")


class PortfolioSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="allow")

    ts: datetime
    equity_usd: Annotated[float, Field(ge=0)]
    drawdown_pct: Annotated[float, Field(ge=0, le=1)] = 0.0
    # By symbol key: a position under another spelling would be missed by the exposure limits, so it is refused.
    positions: dict[Symbol, Position] = Field(default_factory=dict)
    # Daily loss inputs: the PnL of the whole book and of each strategy since `pnl_since`, the start of the
    # trading day the producer counts from (the gate only uses figures whose window is its own trading day).
    pnl_since: datetime | None = None
    daily_pnl_usd: FiniteFloat | None = None
    day_start_equity_usd: Annotated[float, Field(ge=0)] | None = None
    # By strategy id, as the producer spells it; two spellings of one strategy (one key) are refused.
    strategies: dict[StrategyId, StrategyBook] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pnl_needs_its_window(self) -> Self:
        if self.pnl_since is None and (self.daily_pnl_usd is not None or self.strategies):
            raise ValueError("daily PnL figures need `pnl_since`, the start of the window they count from")
        keys: dict[str, str] = {}
        for strategy_id in self.strategies:
            key = strategy_key(strategy_id)
            if key in keys:
                raise ValueError(f"strategies {keys[key]!r} and {strategy_id!r} are one strategy ({key!r})")
            keys[key] = strategy_id
        return self

    def strategies_by_key(self) -> dict[str, StrategyBook]:
        return {strategy_key(strategy_id): book for strategy_id, book in self.strategies.items()}

    @property
    def gross_exposure_usd(self) -> float:
        return sum(p.notional_usd for p in self.positions.values())
