"""The rule brain's documented rules, case by case, and its properties over random policies and conditions:
it settles (the same conditions twice propose nothing new), it only tightens from the officers' baseline, it
never releases a trading state, and it returns to the baseline when the conditions ease."""

from hypothesis import given
from hypothesis import strategies as st

from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.tightening import loosenings
from strategist.brains.rules import RuleBrain, significant
from strategist.changes import apply_changes, patch_check
from tests.factories import make_spec
from tests.property.strategies import PROPERTY_SETTINGS, SYMBOLS, policy_dicts, spec_of
from tests.strategist.contexts import context_for

BASE = make_spec(min_confidence=0.5, max_order_notional_usd=20_000, max_drawdown_pct=0.2)


def think(active: PolicySpec, baseline: PolicySpec | None = None, **conditions):
    context = context_for(active, baseline or active, **conditions)
    thinking = RuleBrain().think(context, patch_check(active))
    return thinking, apply_changes(active, thinking.changes)


def test_volatile_halves_and_extreme_quarters_a_symbols_notional():
    _, volatile = think(BASE, volatility={"BTCUSDT": 0.05})
    assert volatile.symbols["BTCUSDT"].max_order_notional_usd == 10_000
    assert volatile.symbols["BTCUSDT"].trading_state is None
    _, extreme = think(BASE, volatility={"BTCUSDT": 0.10})
    assert extreme.symbols["BTCUSDT"].max_order_notional_usd == 5_000
    assert extreme.symbols["BTCUSDT"].trading_state == "reducing"


def test_calm_and_normal_change_nothing_from_the_baseline():
    thinking, spec = think(BASE, volatility={"BTCUSDT": 0.0199, "ETHUSDT": 0.0499})
    assert thinking.changes == [] and spec == BASE
    assert thinking.rationale.startswith("No change")


def test_a_symbols_own_tighter_limit_is_the_one_scaled():
    own = make_spec(max_order_notional_usd=20_000, symbols={"SOLUSDT": {"max_order_notional_usd": 3_000}})
    _, spec = think(own, volatility={"SOLUSDT": 0.06})
    assert spec.symbols["SOLUSDT"].max_order_notional_usd == 1_500


def test_without_a_notional_limit_there_is_nothing_to_scale_and_it_says_so():
    bare = make_spec(min_confidence=0.5)
    thinking, _ = think(bare, volatility={"BTCUSDT": 0.07})
    assert thinking.changes == []
    assert "sets no order notional limit to scale" in thinking.rationale


def test_concentration_halves_the_symbol():
    _, spec = think(BASE, exposure={"BTCUSDT": 60_000, "ETHUSDT": 40_000})
    assert spec.symbols["BTCUSDT"].max_order_notional_usd == 10_000
    assert "ETHUSDT" not in spec.symbols


def test_drawdown_at_half_the_limit_raises_confidence_and_cuts_notional():
    _, below = think(BASE, drawdown=0.099)
    assert below == BASE
    thinking, spec = think(BASE, drawdown=0.10)
    assert spec.global_rules.min_confidence == 0.6 and spec.global_rules.max_order_notional_usd == 15_000
    assert "drawdown 10.0% is at least half of 20%" in thinking.rationale


def test_eased_conditions_return_to_the_baseline_but_never_release_a_state():
    _, stressed = think(BASE, volatility={"BTCUSDT": 0.2}, drawdown=0.15)
    _, eased = think(stressed, BASE, volatility={"BTCUSDT": 0.01}, drawdown=0.0)
    assert eased.global_rules == BASE.global_rules
    assert eased.symbols["BTCUSDT"].max_order_notional_usd is None
    assert eased.symbols["BTCUSDT"].trading_state == "reducing"  # only a person releases it
    assert loosenings(stressed, eased)  # a loosening: it goes to an officer, never auto-approved


def test_significant_rounds_down():
    assert significant(12_345.0) == 12_300.0
    assert significant(0.37549) == 0.375
    assert significant(15_000.0) == 15_000.0
    assert significant(7.0) == 7.0


CONDITIONS = st.fixed_dictionaries(
    {
        "volatility": st.dictionaries(st.sampled_from(SYMBOLS), st.sampled_from([0.0, 0.03, 0.06, 0.12, 0.5])),
        "drawdown": st.one_of(st.none(), st.sampled_from([0.0, 0.04, 0.1, 0.3])),
        "exposure": st.dictionaries(st.sampled_from(SYMBOLS), st.sampled_from([0.0, 1_000.0, 90_000.0])),
    }
)


@PROPERTY_SETTINGS
@given(policy=policy_dicts(), conditions=CONDITIONS)
def test_from_the_baseline_it_only_tightens_and_then_settles(policy, conditions):
    baseline = spec_of(policy)
    first, proposed = think(baseline, **conditions)
    assert not loosenings(baseline, proposed), first.rationale
    again, settled = think(proposed, baseline, **conditions)
    assert again.changes == [] and settled == proposed


@PROPERTY_SETTINGS
@given(policy=policy_dicts(), before=CONDITIONS, after=CONDITIONS)
def test_it_never_releases_a_trading_state(policy, before, after):
    baseline = spec_of(policy)
    _, stressed = think(baseline, **before)
    thinking, _ = think(stressed, baseline, **after)
    for change in thinking.changes:
        if change.field == "trading_state":
            assert change.value == "reducing"
            assert change.scope == "symbol"
            current = stressed.symbols.get(change.key)
            assert current is None or current.trading_state in (None, "active")
