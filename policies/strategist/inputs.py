"""What the Strategist knows of the market and the book: the latest regime per symbol and the latest portfolio
summary, kept in Redis by the listener (`manage.py strategist_listen`) and read by every cycle.

Only allow-listed fields are ever kept: numbers, enums and labels copied field by field from the wire models,
never a producer's extra fields or free text. Whatever a producer attaches (an API key in an extra field, a
note) is dropped here, before anything is stored, so it cannot reach a prompt or a thought."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cio_kernel.contracts.identity import SymbolKey, is_canonical_symbol
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.contracts.regime import RegimeUpdate

REGIME_KEY = "strategist:regime"  # hash: symbol -> RegimeEntry JSON
PORTFOLIO_KEY = "strategist:portfolio"  # PortfolioSummary JSON
MAX_SYMBOLS = 200  # a context names at most this many symbols (the most exposed / most volatile first)


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RegimeEntry(_Input):
    ts: datetime
    volatility: float
    trend: float | None = None
    label: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = None
    window: str = "1h"

    @classmethod
    def of(cls, update: RegimeUpdate) -> "RegimeEntry":
        return cls(
            ts=update.ts, volatility=update.volatility, trend=update.trend, label=update.regime, window=update.window
        )


class PortfolioSummary(_Input):
    ts: datetime
    equity_usd: float
    drawdown_pct: float
    daily_pnl_usd: float | None = None
    gross_exposure_usd: float
    exposure_usd: dict[SymbolKey, float] = Field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: PortfolioSnapshot) -> "PortfolioSummary":
        exposure = {
            symbol: round(position.notional_usd, 2)
            for symbol, position in sorted(snapshot.positions.items(), key=lambda kv: -kv[1].notional_usd)
            if is_canonical_symbol(symbol)
        }
        return cls(
            ts=snapshot.ts,
            equity_usd=round(snapshot.equity_usd, 2),
            drawdown_pct=round(snapshot.drawdown_pct, 6),
            daily_pnl_usd=round(snapshot.daily_pnl_usd, 2) if snapshot.daily_pnl_usd is not None else None,
            gross_exposure_usd=round(snapshot.gross_exposure_usd, 2),
            exposure_usd=dict(list(exposure.items())[:MAX_SYMBOLS]),
        )

    def concentration(self) -> dict[str, float]:
        """Each symbol's share of gross exposure."""
        gross = self.gross_exposure_usd
        return {s: round(v / gross, 4) for s, v in self.exposure_usd.items()} if gross > 0 else {}


def store_regime(client: Any, update: RegimeUpdate) -> RegimeEntry:
    entry = RegimeEntry.of(update)
    client.hset(REGIME_KEY, update.symbol, entry.model_dump_json())
    return entry


def store_portfolio(client: Any, snapshot: PortfolioSnapshot) -> PortfolioSummary:
    summary = PortfolioSummary.of(snapshot)
    client.set(PORTFOLIO_KEY, summary.model_dump_json())
    return summary


def read_regimes(client: Any, max_age_s: float, now: datetime) -> dict[str, RegimeEntry]:
    """Fresh entries only: a symbol nobody has reported on for `max_age_s` is not in the context."""
    found = {}
    for raw_symbol, raw in (client.hgetall(REGIME_KEY) or {}).items():
        symbol = raw_symbol.decode(errors="replace") if isinstance(raw_symbol, bytes) else raw_symbol
        if not is_canonical_symbol(symbol):  # the listener stores canonical symbols only; anything else is not ours
            continue
        entry = RegimeEntry.model_validate_json(raw)
        if (now - _utc(entry.ts)).total_seconds() <= max_age_s:
            found[symbol] = entry
    ranked = sorted(found.items(), key=lambda kv: -kv[1].volatility)[:MAX_SYMBOLS]
    return dict(sorted(ranked))


def read_portfolio(client: Any, max_age_s: float, now: datetime) -> PortfolioSummary | None:
    raw = client.get(PORTFOLIO_KEY)
    if raw is None:
        return None
    summary = PortfolioSummary.model_validate_json(raw)
    return summary if (now - _utc(summary.ts)).total_seconds() <= max_age_s else None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
