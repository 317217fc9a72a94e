"""Does a new policy only tighten an old one? The exact check behind "auto-approve proposals that only tighten".

Every field of every scope is classified by the direction in which it restricts (a table, so a new field
cannot slip through unclassified: a test holds the table to the models). A new policy only tightens when, in
every scope the old one constrains, each field is at least as strict; scopes it adds can only tighten (layering
is most-restrictive-wins). Any field that cannot be ordered (the trading day's start) counts as a loosening
when it changes: the check answers "provably no looser", never "probably"."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cio_kernel.policy.spec import LimitSet, PolicySpec, TradingState

# How each field restricts. `None` on a limit means "this scope does not constrain it".
UPPER = "upper"  # a ceiling: lower is stricter (max_*, collars, ages)
LOWER = "lower"  # a floor: higher is stricter (min_confidence, the assumed notional of engine-sized orders)
SUBSET = "subset"  # an allow-list: fewer is stricter
SUPERSET = "superset"  # a deny-list: more is stricter
REQUIRE = "require"  # a requirement: on is stricter
STATE = "state"  # a trading state: more severe is stricter
FIXED = "fixed"  # not ordered: any change is a loosening
IGNORED = "ignored"  # does not affect decisions
# The notional assumed for engine-sized orders: unset is the strictest (such orders cannot be priced, so a limit
# that needs a notional refuses them); once set, a higher assumption is stricter.
ASSUMED = "assumed"

FIELD_DIRECTIONS: dict[str, str] = {
    "trading_state": STATE,
    "allowed_actions": SUBSET,
    "allowed_strategy_modes": SUBSET,
    "allowed_order_types": SUBSET,
    "min_confidence": LOWER,
    "max_order_quantity": UPPER,
    "max_order_notional_usd": UPPER,
    "max_position_size_pct": UPPER,
    "require_stop_loss": REQUIRE,
    "max_stop_distance_pct": UPPER,
    "price_collar_bps": UPPER,
    "max_symbol_exposure_usd": UPPER,
    "max_leverage": UPPER,
    "engine_sized_notional_usd": ASSUMED,
    "max_intents_per_second": UPPER,
    "max_intents_per_minute": UPPER,
    "allowed_symbols": SUBSET,
    "denied_symbols": SUPERSET,
    "max_daily_loss_usd": UPPER,
    "require_timestamp": REQUIRE,
    "require_identity_subject": REQUIRE,
    "only_listed_strategies": REQUIRE,
    "own_identity": REQUIRE,
    "max_intent_age_s": UPPER,
    "max_clock_skew_s": UPPER,
    "dedupe_window_s": LOWER,  # a longer window refuses more repeats
    "max_total_exposure_usd": UPPER,
    "max_drawdown_pct": UPPER,
    "max_snapshot_age_s": UPPER,
    "max_daily_loss_pct": UPPER,
    "trading_day_start_utc": FIXED,
}


@dataclass(frozen=True, slots=True)
class Loosening:
    scope: str  # "global", "strategy:<id>", "symbol:<SYM>"
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.scope}.{self.field}: {self.old!r} → {self.new!r} is looser"


def _looser(direction: str, old: Any, new: Any) -> bool:
    if direction == ASSUMED:
        return new is not None and (old is None or new < old)
    if direction == IGNORED or old is None:
        return False  # an unconstrained field cannot be loosened
    if direction == FIXED:
        return bool(new != old)
    if direction == REQUIRE:
        return bool(old) and not new  # "not required" and "unset" are the same
    if direction == SUPERSET:
        return not set(new or ()) >= set(old)  # a deny-list that is unset denies nothing
    if new is None:
        return True  # the constraint was removed
    checks: dict[str, Callable[[Any, Any], bool]] = {
        UPPER: lambda o, n: n > o,
        LOWER: lambda o, n: n < o,
        SUBSET: lambda o, n: not set(n) <= set(o),
        STATE: lambda o, n: TradingState(n).severity < TradingState(o).severity,
    }
    return checks[direction](old, new)


def _scope(name: str, old: LimitSet | None, new: LimitSet | None) -> list[Loosening]:
    if old is None:
        return []  # a scope the old policy did not have: whatever the new one says only adds restrictions
    if new is None:
        new = type(old)()  # the scope is gone: it constrains what an empty scope does (nothing, defaults)
    found = []
    for field in type(old).model_fields:
        old_value, new_value = getattr(old, field), getattr(new, field)
        if _looser(FIELD_DIRECTIONS.get(field, FIXED), old_value, new_value):
            found.append(Loosening(name, field, old_value, new_value))
    return found


def loosenings(old: PolicySpec, new: PolicySpec) -> list[Loosening]:
    """Every way `new` is looser than `old`; empty when `new` only tightens (or equals) `old`."""
    found = _scope("global", old.global_rules, new.global_rules)
    for key, rules in old.strategies.items():
        found += _scope(f"strategy:{key}", rules, new.strategy_rules(key))
    if old.global_rules.only_listed_strategies and new.global_rules.only_listed_strategies:
        # Naming a strategy admits it when the policy refuses the ones it does not name.
        found += [Loosening(f"strategy:{key}", "listed", False, True) for key in new.strategies.keys() - old.strategies]
    for key, rules in old.symbols.items():
        found += _scope(f"symbol:{key}", rules, new.symbols.get(key))
    return found


def only_tightens(old: PolicySpec, new: PolicySpec) -> bool:
    return not loosenings(old, new)
