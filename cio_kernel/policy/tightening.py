"""Does a new policy only tighten an old one? The exact check behind "auto-approve proposals that only tighten".

Every field of every scope is classified by the direction in which it restricts (`Tighten`, declared per field
in `cio_kernel.policy.fields`: a test holds the declaration to the models, so a new field cannot slip through). A
new policy only tightens when, in every scope the old one constrains, each field is at least as strict; scopes it
adds can only tighten (layering is most-restrictive-wins), except where they make an assumption the old policy
did not (see `_added`). Any field that cannot be ordered (the trading day's start) counts as a loosening when it
changes: the check answers "provably no looser", never "probably"."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cio_kernel.policy.fields import FIELDS, Tighten
from cio_kernel.policy.spec import GlobalRules, LimitSet, PolicySpec, TradingState


@dataclass(frozen=True, slots=True)
class Loosening:
    scope: str  # "global", "strategy:<id>", "symbol:<SYM>"
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.scope}.{self.field}: {self.old!r} → {self.new!r} is looser"


def _looser(direction: Tighten, old: Any, new: Any) -> bool:
    if direction is Tighten.ASSUMED:
        return new is not None and (old is None or new < old)
    if old is None:
        return False  # an unconstrained field cannot be loosened
    if direction is Tighten.FIXED:
        return bool(new != old)
    if direction is Tighten.REQUIRE:
        return bool(old) and not new  # "not required" and "unset" are the same
    if direction is Tighten.SUPERSET:
        return not set(new or ()) >= set(old)  # a deny-list that is unset denies nothing
    if new is None:
        return True  # the constraint was removed
    return _ORDERED[direction](old, new)


_ORDERED: dict[Tighten, Callable[[Any, Any], bool]] = {
    Tighten.UPPER: lambda o, n: n > o,
    Tighten.LOWER: lambda o, n: n < o,
    Tighten.SUBSET: lambda o, n: not set(n) <= set(o),
    Tighten.STATE: lambda o, n: TradingState(n).severity < TradingState(o).severity,
}


def _scope(name: str, old: LimitSet, new: LimitSet | None) -> list[Loosening]:
    if new is None:
        new = type(old)()  # the scope is gone: it constrains what an empty scope does (nothing, defaults)
    found = []
    for field in type(old).model_fields:
        old_value, new_value = getattr(old, field), getattr(new, field)
        if _looser(FIELDS[field].tighten, old_value, new_value):
            found.append(Loosening(name, field, old_value, new_value))
    return found


def _added(name: str, new: LimitSet, old_global: GlobalRules) -> list[Loosening]:
    """A scope the old policy did not have only adds restrictions (most restrictive wins), except an assumption:
    one set where the old global scope sets none prices orders that could not be priced before, for every pair
    the scope covers. (Under a global assumption the highest wins, so a new scope's cannot lower it.)"""
    return [
        Loosening(name, field, None, value)
        for field in type(new).model_fields
        if FIELDS[field].tighten is Tighten.ASSUMED
        and getattr(old_global, field) is None
        and (value := getattr(new, field)) is not None
    ]


def loosenings(old: PolicySpec, new: PolicySpec) -> list[Loosening]:
    """Every way `new` is looser than `old`; empty when `new` only tightens (or equals) `old`."""
    found = _scope("global", old.global_rules, new.global_rules)
    for key, rules in old.strategies.items():
        found += _scope(f"strategy:{key}", rules, new.strategy_rules(key))
    for key, rules in new.strategies.items():
        if old.strategy_rules(key) is None:
            found += _added(f"strategy:{key}", rules, old.global_rules)
    if old.global_rules.only_listed_strategies and new.global_rules.only_listed_strategies:
        # Naming a strategy admits it when the policy refuses the ones it does not name.
        found += [Loosening(f"strategy:{key}", "listed", False, True) for key in new.strategies.keys() - old.strategies]
    for key, rules in old.symbols.items():
        found += _scope(f"symbol:{key}", rules, new.symbols.get(key))
    for key, rules in new.symbols.items():
        if key not in old.symbols:
            found += _added(f"symbol:{key}", rules, old.global_rules)
    return found


def only_tightens(old: PolicySpec, new: PolicySpec) -> bool:
    return not loosenings(old, new)
