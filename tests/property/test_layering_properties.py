"""Layering global ← strategy ← symbol: every limit resolves to the most restrictive value any scope sets."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gate.policy.resolve import resolve_limits
from gate.policy.spec import PolicySpec
from tests.property.strategies import _LIMIT_VALUES

_SEVERITY = {"active": 0, "reducing": 1, "halted": 2}
_MAXIMA = [
    "max_order_quantity",
    "max_order_notional_usd",
    "max_position_size_pct",
    "max_stop_distance_pct",
    "price_collar_bps",
    "max_symbol_exposure_usd",
]
_ALLOW_SETS = ["allowed_actions", "allowed_strategy_modes", "allowed_order_types"]

scope_values = st.fixed_dictionaries({name: st.none() | values for name, values in _LIMIT_VALUES.items()})


@settings(max_examples=300, deadline=None)
@given(glob=scope_values, strategy=st.none() | scope_values, symbol=st.none() | scope_values)
def test_most_restrictive_value_wins(glob: dict[str, Any], strategy: Any, symbol: Any):
    glob = {**glob, "trading_state": glob["trading_state"] or "active"}
    spec = PolicySpec.parse(
        {
            "global": glob,
            "strategies": {"s": strategy} if strategy else {},
            "symbols": {"BTCUSDT": symbol} if symbol else {},
        }
    )
    limits = resolve_limits(spec, "s", "BTCUSDT")
    scopes = [s for s in (glob, strategy, symbol) if s]

    for name in _MAXIMA:
        present = [s[name] for s in scopes if s.get(name) is not None]
        assert getattr(limits, name) == (min(present) if present else None), name
    confidences = [s["min_confidence"] for s in scopes if s.get("min_confidence") is not None]
    assert limits.min_confidence == (max(confidences) if confidences else None)
    for name in _ALLOW_SETS:
        present = [set(s[name]) for s in scopes if s.get(name) is not None]
        expected = set.intersection(*present) if present else None
        assert (set(getattr(limits, name)) if getattr(limits, name) is not None else None) == expected, name
    assert limits.require_stop_loss == any(s.get("require_stop_loss") for s in scopes)
    states = [s["trading_state"] for s in scopes if s.get("trading_state")]
    assert _SEVERITY[limits.trading_state.value] == max(_SEVERITY[s] for s in states)
    # Rate limits are per scope, each with its own counter.
    expected_rates = {
        scope: (s.get("max_intents_per_second"), s.get("max_intents_per_minute"))
        for scope, s in (("global", glob), ("strategy", strategy), ("symbol", symbol))
        if s and (s.get("max_intents_per_second") or s.get("max_intents_per_minute"))
    }
    assert {r.scope: (r.per_second, r.per_minute) for r in limits.rate_rules} == expected_rates


@given(
    unrelated=st.dictionaries(st.sampled_from(["ETHUSDT", "SOLUSDT"]), scope_values, max_size=2),
    others=st.dictionaries(st.sampled_from(["x", "y"]), scope_values, max_size=2),
)
def test_scopes_of_other_strategies_and_symbols_do_not_apply(unrelated, others):
    base = resolve_limits(PolicySpec(), "s", "BTCUSDT")
    spec = PolicySpec.parse({"symbols": unrelated, "strategies": others})
    assert resolve_limits(spec, "s", "BTCUSDT") == base
