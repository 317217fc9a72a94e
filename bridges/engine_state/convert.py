"""From the trade engine's `GET /state?symbol=` answers to one `PortfolioSnapshot` (pure: no I/O, no clock).

What the engine computes (public repo PetroSa2/petrosa-tradeengine: `dispatcher.get_cio_state`,
`position_manager.get_cio_portfolio_summary`), with V = its `total_portfolio_value` (the exchange's available
balance, or the total wallet balance when that is missing):

- `portfolio.gross_exposure` = Σ |quantity × avg_price| over open positions ÷ V, and `portfolio.same_asset_pct` the
  same for the queried symbol only; both 0 (and `open_positions_count` 0) whenever V ≤ 0, open positions or not;
- `env_stats.global_drawdown_pct` = max(−daily_pnl, 0) ÷ max(V, 1), where daily_pnl is the engine's realised PnL
  accumulator (never reset by the engine itself: no caller of `reset_daily_pnl`);
- `env_stats.available_capital_usd` = V.

So the bridge can state exactly: equity (V), each polled symbol's entry notional (same_asset_pct × V), and the
engine's realised loss (global_drawdown_pct × max(V, 1)). It cannot state a position's side or size in base units,
per-strategy PnL, or a daily PnL with a known window; those stay unknown (see `to_snapshot`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position

# Whole-number counts only: `true` or `"3"` is a malformed answer, not a count (strict mode below).
Count = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0)]

# The engine's two exposure figures come from one pass over its positions, so per-symbol shares add up to the
# gross share exactly up to float rounding; anything further apart is an engine (or transport) fault.
_SHARE_SLACK = 1e-9


class EnginePortfolio(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)

    gross_exposure: Fraction
    same_asset_pct: Fraction
    open_positions_count: Count


class EngineEnvStats(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)

    global_drawdown_pct: Fraction
    open_orders_global: Count
    open_orders_symbol: Count
    # Negative is possible on the exchange's side (a margin deficit); refused in `to_snapshot`, not here, so the
    # alert can say what the engine reported.
    available_capital_usd: float


class EngineState(BaseModel):
    """One `/state?symbol=` answer, as `dispatcher.get_cio_state` builds it. `risk_limits` is the engine's own
    configuration and says nothing about the book, so it is not read."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)

    portfolio: EnginePortfolio
    env_stats: EngineEnvStats


class Unconvertible(Exception):
    """The answers cannot be turned into a snapshot without inventing something: publish nothing.

    `kind` names the condition (an alert key): `malformed`, `no_capital`, `inconsistent`, `unpolled_exposure`.
    """

    def __init__(self, kind: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail or {}


def parse_state(raw: bytes) -> EngineState:
    """The engine's JSON answer, validated; `Unconvertible("malformed")` for anything else."""
    try:
        return EngineState.model_validate_json(raw)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in error["loc"]) or "(body)" for error in exc.errors()})
        raise Unconvertible("malformed", f"the engine's state answer is malformed: {', '.join(fields)[:300]}") from None


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far the engine's gross exposure may exceed what the polled symbols account for before the round is
    refused: `usd` plus `fraction` of equity (answers of one round are read milliseconds apart, and a fill in
    between moves one figure and not the other)."""

    usd: float = 1.0
    fraction: float = 0.001

    def of(self, equity_usd: float) -> float:
        return self.usd + self.fraction * equity_usd


def to_snapshot(
    answers: Mapping[str, EngineState], ts: datetime, tolerance: Tolerance = Tolerance()
) -> PortfolioSnapshot:
    """One snapshot from one round of answers (symbol → answer, symbols canonical), or `Unconvertible`.

    - `equity_usd`: the engine's V. The largest V of the round: engine-sized orders are judged as a share of
      equity, and the larger figure never under-counts them.
    - `positions`: each polled symbol with a non-zero share, `notional_usd` = same_asset_pct × that answer's V
      (the engine's |quantity × avg_price|, exact whatever V is), `quantity` 0: the state API gives neither side
      nor size, so no intent is proven to reduce these positions (only `close` counts as reducing).
    - `drawdown_pct`: the engine's realised loss ÷ V (what the engine itself calls its drawdown; capped at 1).
    - no `pnl_since`, `daily_pnl_usd`, `day_start_equity_usd`, `strategies`: the engine's PnL accumulator has no
      trading-day window and no per-strategy split, so a daily loss limit answers `DAILY_PNL_UNKNOWN`.

    Refused: no answers, V ≤ 0 in any answer (the engine then reports zero exposure whatever it holds), a
    symbol's share above the gross share, or a gross exposure the polled symbols do not account for (positions in
    symbols nobody polls would be missing from the exposure limits).
    """
    if not answers:
        raise Unconvertible("malformed", "no symbols were polled")
    for symbol, answer in answers.items():
        capital = answer.env_stats.available_capital_usd
        if capital <= 0:
            raise Unconvertible(
                "no_capital",
                f"the engine reports available capital {capital:,.2f} USD for {symbol}: with none it reports zero "
                "exposure whatever it holds, so exposure is unknown",
                {"symbol": symbol, "available_capital_usd": capital},
            )
        share = answer.portfolio
        if share.same_asset_pct > share.gross_exposure + _SHARE_SLACK:
            raise Unconvertible(
                "inconsistent",
                f"the engine reports {symbol} at {share.same_asset_pct:.6f} of capital, above its gross exposure "
                f"{share.gross_exposure:.6f}",
                {"symbol": symbol, "same_asset_pct": share.same_asset_pct, "gross_exposure": share.gross_exposure},
            )
    equity = max(answer.env_stats.available_capital_usd for answer in answers.values())
    positions: dict[str, Position] = {}
    for symbol, answer in answers.items():
        notional = answer.portfolio.same_asset_pct * answer.env_stats.available_capital_usd
        if notional > 0:
            positions[symbol] = Position(quantity=0.0, notional_usd=notional)
    attributed = sum(position.notional_usd for position in positions.values())
    gross = max(a.portfolio.gross_exposure * a.env_stats.available_capital_usd for a in answers.values())
    if gross - attributed > tolerance.of(equity):
        raise Unconvertible(
            "unpolled_exposure",
            f"the engine holds {gross:,.2f} USD gross but the polled symbols account for {attributed:,.2f} USD: "
            "positions in symbols the bridge does not poll (add them to CIO_SNAPSHOT_SYMBOLS)",
            {"gross_usd": round(gross, 2), "attributed_usd": round(attributed, 2), "polled": sorted(answers)},
        )
    # The engine divides by max(V, 1): undo that, then express the loss as a share of that answer's V (the
    # largest share of the round: the figures of one round differ only by what happened between the reads).
    losses = [
        (a.env_stats.global_drawdown_pct * max(a.env_stats.available_capital_usd, 1.0), a.env_stats)
        for a in answers.values()
    ]
    realised_loss = max(loss for loss, _ in losses)
    drawdown = max(loss / stats.available_capital_usd for loss, stats in losses)
    return PortfolioSnapshot(
        ts=ts,
        equity_usd=equity,
        drawdown_pct=min(drawdown, 1.0),
        positions=positions,
        # Extra fields (the contract allows them): where the figures came from, for people and the Strategist.
        source="tradeengine-state-api",
        engine_realised_loss_usd=round(realised_loss, 2),
        engine_open_positions=max(a.portfolio.open_positions_count for a in answers.values()),
    )
