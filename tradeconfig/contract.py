"""The trade engine's configuration contract (public repo `PetroSa2/petrosa-tradeengine`, `tradeengine/defaults.py`
and `api_config_routes.py`), as Pydantic models: what the control plane validates before a change is proposed,
and what it reads back. Every parameter is optional (a change names only what it changes); an unknown one is
refused, as the trade engine refuses it."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cio_kernel.contracts.identity import SymbolKey

Side = Literal["LONG", "SHORT"]


def _range(low: float, high: float) -> Any:
    return Field(default=None, ge=low, le=high)


class TradingParameters(BaseModel):
    """The parameters the trade engine's schema defines, with its ranges (`PARAMETER_SCHEMA`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    leverage: Annotated[int, Field(ge=1, le=125)] | None = None
    margin_type: Literal["isolated", "cross"] | None = None
    default_order_type: Literal["market", "limit", "stop", "stop_limit", "take_profit", "take_profit_limit"] | None = (
        None
    )
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] | None = None
    position_mode: Literal["hedge", "one-way"] | None = None
    position_size_pct: float | None = _range(0.001, 1.0)
    max_position_size_usd: float | None = _range(1.0, 1_000_000.0)
    min_position_size_usd: float | None = _range(1.0, 10_000.0)
    quantity_multiplier: float | None = _range(0.1, 10.0)
    use_exchange_minimums: bool | None = None
    override_min_notional: float | None = _range(1.0, 1000.0)
    override_min_qty: float | None = _range(0.000001, 1000.0)
    override_step_size: float | None = _range(0.000001, 1.0)
    stop_loss_pct: float | None = _range(0.1, 50.0)  # percent: 2.0 is 2 %
    take_profit_pct: float | None = _range(0.1, 100.0)
    max_daily_loss_pct: float | None = _range(0.001, 0.5)  # a fraction: 0.05 is 5 %
    max_portfolio_exposure_pct: float | None = _range(0.1, 1.0)
    max_daily_trades: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_concurrent_positions: Annotated[int, Field(ge=1, le=100)] | None = None
    risk_management_enabled: bool | None = None
    signal_conflict_resolution: (
        Literal["strongest_wins", "first_come_first_served", "weighted_average", "manual_review"] | None
    ) = None
    timeframe_conflict_resolution: (
        Literal["higher_timeframe_wins", "lower_timeframe_wins", "weighted_average"] | None
    ) = None
    max_signal_age_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    min_confidence_threshold: float | None = _range(0.0, 1.0)
    position_mode_aware_conflicts: bool | None = None
    same_direction_conflict_resolution: Literal["accumulate", "strongest_wins", "reject_duplicates"] | None = None
    strategy_weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    timeframe_weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    enabled: bool | None = None
    enable_shorts: bool | None = None
    enable_longs: bool | None = None
    slippage_tolerance_pct: float | None = _range(0.0, 10.0)
    max_retries: Annotated[int, Field(ge=0, le=10)] | None = None

    def changed(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class ConfigScope(BaseModel):
    """Global (no symbol), one symbol, or one symbol and side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: SymbolKey | None = None
    side: Side | None = None

    @model_validator(mode="after")
    def _side_needs_symbol(self) -> "ConfigScope":
        if self.side is not None and self.symbol is None:
            raise ValueError("a side needs a symbol")
        return self

    @property
    def label(self) -> str:
        return "global" if self.symbol is None else self.symbol + (f" {self.side}" if self.side else "")

    def path(self) -> str:
        """The upstream route below `/api/v1/config`."""
        parts = ["trading", *([self.symbol] if self.symbol else []), *([self.side] if self.side else [])]
        return "/".join(parts)


class UpstreamConfig(BaseModel):
    """What the trade engine answers for one scope (its `ConfigResponse`)."""

    model_config = ConfigDict(extra="allow")

    symbol: str | None = None
    side: Side | None = None
    parameters: dict[str, Any]
    version: int
    source: str
    created_at: str | None = None
    updated_at: str | None = None
