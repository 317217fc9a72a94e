"""The book as the decision reads it: a portfolio snapshot plus the values every decision needs from it,
computed once when the gate adopts the snapshot (not once per control per intent)."""

from dataclasses import dataclass, field

from cio_kernel.contracts.portfolio import PortfolioSnapshot, StrategyBook


@dataclass(frozen=True, slots=True)
class Book:
    snapshot: PortfolioSnapshot
    ts: float  # Unix seconds
    gross_exposure_usd: float
    pnl_since: float | None  # Unix seconds
    strategies: dict[str, StrategyBook] = field(default_factory=dict)  # by strategy key

    @classmethod
    def of(cls, snapshot: PortfolioSnapshot) -> "Book":
        return cls(
            snapshot=snapshot,
            ts=snapshot.ts.timestamp(),
            gross_exposure_usd=sum(p.notional_usd for p in snapshot.positions.values()),
            pnl_since=snapshot.pnl_since.timestamp() if snapshot.pnl_since is not None else None,
            strategies=snapshot.strategies_by_key(),
        )

    def strategy(self, key: str) -> StrategyBook | None:
        return self.strategies.get(key)
