"""Each line of a policy diff is marked by the project's one tightening check (policies/diff.py): a line of each
kind of change, and the whole: some line loosens exactly when the check refuses to call the change a tightening."""

from hypothesis import given, settings

from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.tightening import loosenings
from policies.diff import count_directions, diff_specs, summarise
from tests.property.strategies import policy_dicts, spec_of

BASE = {
    "global": {
        "max_order_notional_usd": 1000.0,
        "min_confidence": 0.5,
        "denied_symbols": ["DOGEUSDT"],
        "allowed_actions": ["buy", "close", "sell"],
        "require_timestamp": True,
        "trading_state": "reducing",
    },
    "strategies": {"alpha": {"max_leverage": 3}},
    "symbols": {"BTCUSDT": {"max_order_quantity": 1.0}},
}


def _marks(**edits: dict) -> dict[str, str]:
    """{path: direction} of the diff from BASE to BASE with `edits` merged into its scopes."""
    new = {scope: dict(rules) for scope, rules in BASE.items()}
    for scope, rules in edits.items():
        new[scope] = {**new.get(scope, {}), **rules}
    return {c.path: c.direction for c in diff_specs(PolicySpec.parse(BASE), PolicySpec.parse(new))}


def test_a_lower_ceiling_tightens_and_a_higher_one_loosens():
    assert _marks(**{"global": {"max_order_notional_usd": 500.0}}) == {"global.max_order_notional_usd": "tightens"}
    assert _marks(**{"global": {"max_order_notional_usd": 2000.0}}) == {"global.max_order_notional_usd": "loosens"}


def test_a_higher_floor_tightens_and_a_lower_one_loosens():
    assert _marks(**{"global": {"min_confidence": 0.6}}) == {"global.min_confidence": "tightens"}
    assert _marks(**{"global": {"min_confidence": 0.4}}) == {"global.min_confidence": "loosens"}


def test_denying_a_symbol_tightens_and_allowing_it_again_loosens():
    assert _marks(**{"global": {"denied_symbols": ["DOGEUSDT", "XRPUSDT"]}}) == {"global.denied_symbols": "tightens"}
    assert _marks(**{"global": {"denied_symbols": []}}) == {"global.denied_symbols": "loosens"}


def test_an_allow_list_narrowed_tightens_widened_loosens_and_swapped_loosens():
    assert _marks(**{"global": {"allowed_actions": ["close"]}}) == {"global.allowed_actions": "tightens"}
    assert _marks(**{"global": {"allowed_actions": ["buy", "close", "hold", "sell"]}}) == {
        "global.allowed_actions": "loosens"
    }
    assert _marks(**{"global": {"allowed_actions": ["close", "hold"]}}) == {"global.allowed_actions": "loosens"}


def test_states_requirements_and_the_unordered_trading_day():
    assert _marks(**{"global": {"trading_state": "halted"}}) == {"global.trading_state": "tightens"}
    assert _marks(**{"global": {"trading_state": "active"}}) == {"global.trading_state": "loosens"}
    assert _marks(**{"global": {"require_timestamp": False}}) == {"global.require_timestamp": "loosens"}
    # Not ordered: any change counts as a loosening, whichever way the clock moves.
    assert _marks(**{"global": {"trading_day_start_utc": "01:00"}}) == {"global.trading_day_start_utc": "loosens"}


def test_setting_a_limit_tightens_and_removing_one_or_its_scope_loosens():
    assert _marks(symbols={"ETHUSDT": {"max_leverage": 2}}) == {"symbols.ETHUSDT.max_leverage": "tightens"}
    assert _marks(strategies={"alpha": {}}) == {"strategies.alpha.max_leverage": "loosens"}
    without_symbol = {c.path: c.direction for c in diff_specs(PolicySpec.parse(BASE), PolicySpec.parse(
        {**BASE, "symbols": {}}
    ))}  # fmt: skip
    assert without_symbol == {"symbols.BTCUSDT.max_order_quantity": "loosens"}


def test_naming_a_strategy_loosens_where_only_listed_strategies_trade():
    listed = PolicySpec.parse({"global": {"only_listed_strategies": True}})
    named = PolicySpec.parse({"global": {"only_listed_strategies": True}, "strategies": {"beta": {"max_leverage": 1}}})
    marks = {c.path: c.direction for c in diff_specs(listed, named)}
    assert "strategies.beta.max_leverage" in marks and set(marks.values()) == {"loosens"}  # naming it admits it
    bare = PolicySpec.parse({"global": {"only_listed_strategies": True}, "strategies": {"beta": {}}})
    assert {c.direction for c in diff_specs(bare, listed)} == {"tightens"}  # and dropping it refuses it again


def test_the_description_is_neutral_and_the_counts_say_how_many_of_each():
    changes = diff_specs(
        PolicySpec.parse(BASE),
        PolicySpec.parse({**BASE, "description": "calmer", "global": {**BASE["global"], "min_confidence": 0.7,
                          "max_order_notional_usd": 900.0, "trading_state": "halted", "require_timestamp": False}}),
    )  # fmt: skip
    assert {c.path: c.direction for c in changes}["description"] == "neutral"
    assert count_directions(changes) == {"tightens": 3, "loosens": 1, "neutral": 1}
    assert summarise(changes) == "3 tighten, 1 loosens, 1 neutral"
    assert str(changes[0]) == "~ description:  → calmer (neutral)"
    assert summarise([]) == "no changes"


def test_with_nothing_active_every_policy_line_loosens():
    marks = {c.path: c.direction for c in diff_specs(None, PolicySpec.parse(BASE))}
    assert marks.pop("schema_version") == marks.pop("description") == "neutral"
    assert set(marks.values()) == {"loosens"}


@settings(max_examples=60, deadline=None)
@given(old=policy_dicts(), new=policy_dicts())
def test_a_line_loosens_exactly_when_the_check_finds_a_loosening(old, new):
    before, after = spec_of(old), spec_of(new)
    changes = diff_specs(before, after)
    assert any(c.direction == "loosens" for c in changes) == bool(loosenings(before, after))
    if changes and not loosenings(before, after) and loosenings(after, before):
        assert any(c.direction == "tightens" for c in changes)
