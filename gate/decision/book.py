"""The book as the decision reads it: a portfolio snapshot plus the values every decision needs from it,
computed once when the gate adopts the snapshot (not once per control per intent)."""

from dataclasses import dataclass, field

from cio_kernel.contracts.identity import canonical_strategy
from cio_kernel.contracts.portfolio import PortfolioSnapshot, StrategyBook


@dataclass(frozen=True, slots=True)
class Book:
    snapshot: PortfolioSnapshot
    ts: float  # Unix seconds
    gross_exposure_usd: float
    pnl_since: float | None  # Unix seconds
    strategies: dict[str, StrategyBook] = field(default_factory=dict)  # by canonical strategy id

    @classmethod
    def of(cls, snapshot: PortfolioSnapshot) -> "Book":
        return cls(
            snapshot=snapshot,
            ts=snapshot.ts.timestamp(),
            gross_exposure_usd=sum(p.notional_usd for p in snapshot.positions.values()),
            pnl_since=snapshot.pnl_since.timestamp() if snapshot.pnl_since is not None else None,
            strategies={canonical_strategy(k): v for k, v in snapshot.strategies.items()},
        )

    def strategy(self, strategy_id: str) -> StrategyBook | None:
        return self.strategies.get(canonical_strategy(strategy_id))
