"""Resolve the effective limits for one (strategy, symbol) pair: the most restrictive value of every scope.

How each field combines is declared once, in `cio_kernel.policy.fields` (`Layering`): the lowest of the maxima, the
highest of the minima and of `engine_sized_notional_usd` (a larger assumed notional is the stricter one against
every notional and exposure limit), the intersection of allow lists, the union of deny lists, a requirement any
scope sets. Resolved apart, because the decision needs more than a value: the trading state (the most severe, and
the scope that set it), the symbol lists (which scope refuses the symbol) and the rate limits, which are not merged
at all: each scope keeps its own counter (see `RateRule`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cio_kernel.policy.fields import FIELDS, Layering
from cio_kernel.policy.spec import GlobalRules, LimitSet, PolicySpec, StrategyRules, SymbolRules, TradingState


@dataclass(frozen=True, slots=True)
class RateRule:
    scope: str  # "global", "strategy" or "symbol"
    key: str
    per_second: int | None
    per_minute: int | None


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    trading_state: TradingState
    state_scope: str
    symbol_denied_by: str | None
    symbol_not_allowed_by: str | None
    allowed_actions: frozenset[str] | None
    allowed_strategy_modes: frozenset[str] | None
    allowed_order_types: frozenset[str] | None
    min_confidence: float | None
    max_order_quantity: float | None
    max_order_notional_usd: float | None
    max_position_size_pct: float | None
    require_stop_loss: bool
    max_stop_distance_pct: float | None
    price_collar_bps: float | None
    max_symbol_exposure_usd: float | None
    max_leverage: int | None
    engine_sized_notional_usd: float | None
    strategy_max_daily_loss_usd: float | None
    strategy_listed: bool  # the policy names the strategy under `strategies`
    strategy_own_identity: bool  # it publishes with an identity of its own (only on its own subject)
    rate_rules: tuple[RateRule, ...] = field(default=())


def _lowest(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _highest(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _intersection(values: list[frozenset[str] | None]) -> frozenset[str] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    result = present[0]
    for other in present[1:]:
        result = result & other
    return result


def _any(values: list[bool | None]) -> bool:
    return any(values)


_MERGES: dict[Layering, Callable[[list[Any]], Any]] = {
    Layering.LOWEST: _lowest,
    Layering.HIGHEST: _highest,
    Layering.INTERSECTION: _intersection,
    Layering.ANY: _any,
}
# Every limit any scope may set that the scopes combine into one value of `EffectiveLimits`, with its merge.
MERGED_FIELDS: tuple[tuple[str, Callable[[list[Any]], Any]], ...] = tuple(
    (name, _MERGES[FIELDS[name].layering]) for name in LimitSet.model_fields if FIELDS[name].layering in _MERGES
)


def _most_severe_state(scoped: list[tuple[str, TradingState | None]]) -> tuple[TradingState, str]:
    state, scope = TradingState.ACTIVE, "global"
    for name, candidate in scoped:
        if candidate is not None and candidate.severity > state.severity:
            state, scope = candidate, name
    return state, scope


def _symbol_access(
    symbol: str, global_rules: GlobalRules, strategy: StrategyRules | None
) -> tuple[str | None, str | None]:
    denied_by = None
    if symbol in global_rules.denied_symbols:
        denied_by = "global"
    elif strategy is not None and symbol in strategy.denied_symbols:
        denied_by = "strategy"
    not_allowed_by = None
    if global_rules.allowed_symbols is not None and symbol not in global_rules.allowed_symbols:
        not_allowed_by = "global"
    elif strategy is not None and strategy.allowed_symbols is not None and symbol not in strategy.allowed_symbols:
        not_allowed_by = "strategy"
    return denied_by, not_allowed_by


def _rate_rule(scope: str, key: str, rules: LimitSet | None) -> RateRule | None:
    if rules is None or (rules.max_intents_per_second is None and rules.max_intents_per_minute is None):
        return None
    return RateRule(scope, key, rules.max_intents_per_second, rules.max_intents_per_minute)


def resolve_limits(spec: PolicySpec, strategy_key: str, symbol: str) -> EffectiveLimits:
    """`strategy_key` and `symbol` are keys (cio_kernel/contracts/identity.py), exactly as the policy holds them."""
    global_rules = spec.global_rules
    strategy = spec.strategy_rules(strategy_key)
    symbol_rules: SymbolRules | None = spec.symbols.get(symbol)
    scopes: list[LimitSet] = [s for s in (global_rules, strategy, symbol_rules) if s is not None]

    state, state_scope = _most_severe_state(
        [
            ("global", global_rules.trading_state),
            ("strategy", strategy.trading_state if strategy else None),
            ("symbol", symbol_rules.trading_state if symbol_rules else None),
        ]
    )
    denied_by, not_allowed_by = _symbol_access(symbol, global_rules, strategy)
    rates = tuple(
        rule
        for rule in (
            _rate_rule("global", "*", global_rules),
            _rate_rule("strategy", strategy_key, strategy),
            _rate_rule("symbol", symbol, symbol_rules),
        )
        if rule is not None
    )
    merged = {name: merge([getattr(s, name) for s in scopes]) for name, merge in MERGED_FIELDS}
    return EffectiveLimits(
        trading_state=state,
        state_scope=state_scope,
        symbol_denied_by=denied_by,
        symbol_not_allowed_by=not_allowed_by,
        rate_rules=rates,
        strategy_max_daily_loss_usd=strategy.max_daily_loss_usd if strategy else None,
        strategy_listed=strategy is not None,
        strategy_own_identity=strategy is not None and strategy.own_identity,
        **merged,
    )
