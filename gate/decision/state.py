"""The gate's in-process trading state: what the stateful controls read, and what a promotion records.

`evaluate` only reads it (through `StateView`); the I/O shell calls `record_promotion` after promoting.
State is per gate process: see docs/policy.md, "Stateful controls with several gates".
"""

from bisect import bisect_right
from collections import OrderedDict, deque
from typing import Protocol

from cio_kernel.contracts.intent import OPENING_ACTIONS, Intent
from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.spec import TradingState
from gate.decision.book import Book
from gate.decision.latches import LatchBook
from gate.policy.resolve import RateRule

MINUTE = 60.0


class StateView(Protocol):
    @property
    def portfolio(self) -> PortfolioSnapshot | None: ...

    @property
    def book(self) -> Book | None: ...

    def pending_exposure_usd(self, symbol: str) -> float: ...

    @property
    def pending_total_usd(self) -> float: ...

    def was_promoted(self, strategy_key: str, intent_id: str, now: float) -> bool: ...

    def last_promoted_at(self, strategy_key: str, symbol: str, action: str) -> float | None: ...

    def promoted_count(self, scope: str, key: str, window_s: float, now: float) -> int: ...

    def latch(self, latch_id: str) -> LatchRecord | None: ...

    @property
    def holds_latches(self) -> bool: ...

    def state_override(self, strategy_key: str, symbol: str) -> tuple[TradingState, str] | None: ...


class GateState:
    """Concrete `StateView` plus the mutations the shell applies after each promotion."""

    def __init__(self, dedupe_id_ttl_s: float = 86_400.0, max_dedupe_ids: int = 1_000_000) -> None:
        self._dedupe_ttl = dedupe_id_ttl_s
        self._max_dedupe_ids = max_dedupe_ids
        self._promoted_ids: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._last_promoted: dict[tuple[str, str, str], float] = {}
        self._rate_windows: dict[tuple[str, str], deque[float]] = {}
        self._pending_exposure: dict[str, float] = {}
        self._pending_total = 0.0
        self._book: Book | None = None
        self.latches = LatchBook()
        # Trading states the control plane tightened by NATS notice while Redis was away: (scope, key) ->
        # (state, the policy version that will carry it). Dropped once that version is adopted.
        self.overrides: dict[tuple[str, str], tuple[TradingState, int]] = {}

    # -- reads (StateView) -------------------------------------------------------------------------------
    @property
    def portfolio(self) -> PortfolioSnapshot | None:
        return self._book.snapshot if self._book is not None else None

    @property
    def book(self) -> Book | None:
        return self._book

    def pending_exposure_usd(self, symbol: str) -> float:
        return self._pending_exposure.get(symbol, 0.0)

    @property
    def pending_total_usd(self) -> float:
        return self._pending_total

    def was_promoted(self, strategy_key: str, intent_id: str, now: float) -> bool:
        expires = self._promoted_ids.get((strategy_key, intent_id))
        return expires is not None and expires > now

    def last_promoted_at(self, strategy_key: str, symbol: str, action: str) -> float | None:
        return self._last_promoted.get((strategy_key, symbol, action))

    def promoted_count(self, scope: str, key: str, window_s: float, now: float) -> int:
        window = self._rate_windows.get((scope, key))
        if not window:
            return 0
        # `record` keeps each window sorted, so the promotions inside it are those after the first entry past the
        # cutoff: found by bisection, not by walking a busy scope's whole last second (hundreds of entries).
        return len(window) - bisect_right(window, now - window_s)

    def latch(self, latch_id: str) -> LatchRecord | None:
        return self.latches.get(latch_id)

    @property
    def holds_latches(self) -> bool:
        """Whether any latch record is held (active or released): when none is, no id needs looking up."""
        return self.latches.holds_any()

    def state_override(self, strategy_key: str, symbol: str) -> tuple[TradingState, str] | None:
        """The most severe override that applies to this strategy and symbol (by keys), with its scope."""
        if not self.overrides:
            return None
        found: tuple[TradingState, str] | None = None
        for scope, key in (("global", ""), ("strategy", strategy_key), ("symbol", symbol)):
            held = self.overrides.get((scope, key))
            if held is not None and (found is None or held[0].severity > found[0].severity):
                found = (held[0], scope)
        return found

    def override_state(self, scope: str, key: str, state: TradingState, version: int) -> bool:
        """Adopt a tightened state for a scope, by key (never a looser one); True when it changed anything. The same
        state for a later version holds it longer (until a policy of that version), so it replaces the one held."""
        held = self.overrides.get((scope, key))
        if held is not None and (held[0].severity, held[1]) >= (state.severity, version):
            return False
        self.overrides[(scope, key)] = (state, version)
        return True

    def drop_overrides(self, up_to_version: int) -> None:
        """The policy now carries these states itself."""
        self.overrides = {k: v for k, v in self.overrides.items() if v[1] > up_to_version}

    # -- writes --------------------------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: PortfolioSnapshot) -> bool:
        """Adopt a newer snapshot; promotions counted as pending are now part of it."""
        if self._book is not None and snapshot.ts <= self._book.snapshot.ts:
            return False
        self._book = Book.of(snapshot)
        self._pending_exposure.clear()
        self._pending_total = 0.0
        return True

    def record_promotion(
        self, intent: Intent, rate_rules: tuple[RateRule, ...], notional_usd: float | None, now: float
    ) -> None:
        self.record(intent.strategy_key, intent.symbol, intent.action, intent.intent_id, rate_rules, notional_usd, now)

    def record(
        self,
        strategy_key: str,
        symbol: str,
        action: str,
        intent_id: str | None,
        rate_rules: tuple[RateRule, ...],
        notional_usd: float | None,
        now: float,
    ) -> None:
        """Count one promotion, this gate's or a peer's (`cio.gate.promotion`), by keys: respelling an id does
        not reset its counters."""
        if intent_id is not None:
            self._promoted_ids[(strategy_key, intent_id)] = now + self._dedupe_ttl
            self._promoted_ids.move_to_end((strategy_key, intent_id))
            self._expire_ids(now)
        last = self._last_promoted.get((strategy_key, symbol, action))
        self._last_promoted[(strategy_key, symbol, action)] = now if last is None else max(last, now)
        for rule in rate_rules:
            window = self._rate_windows.get((rule.scope, rule.key))
            if window is None:
                window = self._rate_windows[(rule.scope, rule.key)] = deque()
            # Keep the window sorted: a peer's slightly older timestamp is counted as now (errs towards limiting).
            window.append(max(now, window[-1]) if window else now)
            while window and window[0] <= now - MINUTE:
                window.popleft()
        if notional_usd and action in OPENING_ACTIONS:
            self._pending_exposure[symbol] = self._pending_exposure.get(symbol, 0.0) + notional_usd
            self._pending_total += notional_usd

    def _expire_ids(self, now: float) -> None:
        ids = self._promoted_ids
        while ids:
            expires = next(iter(ids.values()))
            if expires > now and len(ids) <= self._max_dedupe_ids:
                break
            ids.popitem(last=False)
