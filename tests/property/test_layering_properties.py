"""Layering global ← strategy ← symbol: every limit resolves to the most restrictive value any scope sets."""

import hashlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cio_kernel.policy.document import legacy_checksum, policy_checksum
from cio_kernel.policy.fields import FIELDS, Layering
from cio_kernel.policy.spec import LimitSet, PolicySpec
from gate.policy.resolve import resolve_limits
from tests.property.strategies import _LIMIT_VALUES, policy_dicts, spec_of

_SEVERITY = {"active": 0, "reducing": 1, "halted": 2}


def _expected(layering: Layering, values: list[Any]) -> Any:
    """What the declared layering makes of the values the scopes set, computed here without the resolver."""
    present = [v for v in values if v is not None]
    if layering is Layering.ANY:
        return any(present)
    if not present:
        return None
    if layering is Layering.LOWEST:
        return min(present)
    if layering is Layering.HIGHEST:
        return max(present)
    assert layering is Layering.INTERSECTION, layering
    return frozenset.intersection(*(frozenset(v) for v in present))


# Every limit a scope may set: the trading state and the rate limits have rules of their own below.
_COMBINED = [
    name for name in LimitSet.model_fields if FIELDS[name].layering not in (Layering.MOST_SEVERE, Layering.PER_SCOPE)
]

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

    for name in _COMBINED:
        expected = _expected(FIELDS[name].layering, [s.get(name) for s in scopes])
        assert getattr(limits, name) == expected, name
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


def _reference_checksum(spec: PolicySpec, exclude_defaults: bool = True) -> str:
    """The checksum as defined: canonical JSON (every field at its default left out; with `exclude_defaults=False`
    every field, as checksums were first defined) with every set sorted by a Python walk, keys sorted."""

    def canonical(value: object) -> object:
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [canonical(v) for v in value]
            return sorted(items) if all(isinstance(v, str) for v in items) else items
        return value

    dumped = spec.model_dump(mode="json", by_alias=True, exclude_defaults=exclude_defaults)
    if not exclude_defaults:  # the fields added since checksums covered defaults did not exist then
        dumped["global"].pop("only_listed_strategies")
        for rules in dumped["strategies"].values():
            rules.pop("own_identity")
    dumped = orjson.dumps(canonical(dumped), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(dumped).hexdigest()


@settings(max_examples=200, deadline=None)
@given(policy=policy_dicts())
def test_the_fast_checksum_is_the_checksum(policy):
    spec = spec_of(policy)
    assert policy_checksum(spec) == _reference_checksum(spec)
    assert legacy_checksum(spec) == _reference_checksum(spec, exclude_defaults=False)
