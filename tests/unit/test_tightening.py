"""The tightening check, beyond one field at a time (each declared direction: test_policy_fields.py): several
fields at once, scopes removed and added, strategies named."""

from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.tightening import loosenings, only_tightens
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent


def _spec(**parts) -> PolicySpec:
    return PolicySpec.parse({"global": {}, **parts})


def test_each_direction():
    base = _spec(
        **{
            "global": {
                "max_order_notional_usd": 1000.0,
                "min_confidence": 0.5,
                "denied_symbols": ["DOGEUSDT"],
                "trading_state": "reducing",
                "engine_sized_notional_usd": 100.0,
            }
        }
    )
    cases = {
        "max_order_notional_usd": 2000.0,  # a higher ceiling
        "min_confidence": 0.4,  # a lower floor
        "denied_symbols": [],  # fewer denied
        "trading_state": "active",  # less severe
        "engine_sized_notional_usd": 50.0,  # engine-sized orders assumed smaller
    }
    for field, looser in cases.items():
        spec = base.model_dump(mode="json", by_alias=True)
        spec["global"][field] = looser
        assert [(x.scope, x.field) for x in loosenings(base, PolicySpec.parse(spec))] == [("global", field)]
    stricter = base.model_dump(mode="json", by_alias=True)
    stricter["global"].update(max_order_notional_usd=500.0, min_confidence=0.6, trading_state="halted")
    assert only_tightens(base, PolicySpec.parse(stricter))


def test_removing_a_constraint_or_a_scope_loosens_and_adding_one_does_not():
    old = _spec(strategies={"alpha": {"max_leverage": 3}}, symbols={"BTCUSDT": {"max_order_quantity": 1.0}})
    assert [str(x) for x in loosenings(old, _spec(symbols={"BTCUSDT": {"max_order_quantity": 1.0}}))] == [
        "strategy:alpha.max_leverage: 3 → None is looser"
    ]
    assert only_tightens(old, _spec(
        strategies={"alpha": {"max_leverage": 2}, "beta": {"max_leverage": 1}},
        symbols={"BTCUSDT": {"max_order_quantity": 1.0}, "ETHUSDT": {"max_order_quantity": 0.5}},
    ))  # fmt: skip


def test_naming_a_strategy_loosens_a_policy_that_admits_only_the_strategies_it_names():
    listed = {"only_listed_strategies": True}
    old = _spec(**{"global": listed, "strategies": {"alpha": {}}})
    new = _spec(**{"global": listed, "strategies": {"alpha": {}, "beta": {}}})
    assert [str(x) for x in loosenings(old, new)] == ["strategy:beta.listed: False → True is looser"]
    assert only_tightens(new, old)  # dropping a strategy refuses it again
    open_door = _spec(**{"global": {"only_listed_strategies": False}, "strategies": {"alpha": {}}})
    assert [x.field for x in loosenings(old, open_door)] == ["only_listed_strategies"]
    own = _spec(**{"global": listed, "strategies": {"alpha": {"own_identity": True}}})
    assert only_tightens(old, own)
    assert [x.field for x in loosenings(own, old)] == ["own_identity"]


def test_pricing_engine_sized_orders_where_they_could_not_be_priced_loosens():
    old = _spec(**{"global": {"max_order_notional_usd": 1000.0}})
    new = _spec(**{"global": {"max_order_notional_usd": 1000.0, "engine_sized_notional_usd": 100.0}})
    assert [x.field for x in loosenings(old, new)] == ["engine_sized_notional_usd"]
    assert only_tightens(new, old)  # taking the assumption away refuses those orders again


def test_a_field_without_an_order_counts_as_a_loosening_when_it_changes():
    old = _spec(**{"global": {"trading_day_start_utc": "00:00"}})
    assert [x.field for x in loosenings(old, _spec(**{"global": {"trading_day_start_utc": "08:00"}}))] == [
        "trading_day_start_utc"
    ]
    assert only_tightens(old, old)


def test_an_assumption_in_a_new_scope_where_the_old_policy_made_none_loosens():
    """Most restrictive wins everywhere else, so a scope added only tightens; but an assumed notional set in a new
    scope prices engine-sized orders the old policy refused as unpriceable."""
    old = _spec(**{"global": {"max_order_notional_usd": 1000.0}})
    added = {"engine_sized_notional_usd": 100.0}
    for scopes, scope in (
        ({"symbols": {"BTCUSDT": added}}, "symbol:BTCUSDT"),
        ({"strategies": {"alpha": added}}, "strategy:alpha"),
    ):
        new = _spec(**{"global": {"max_order_notional_usd": 1000.0}}, **scopes)
        assert [str(x) for x in loosenings(old, new)] == [f"{scope}.engine_sized_notional_usd: None → 100.0 is looser"]
        intent = make_intent(strategy_id="alpha", symbol="BTCUSDT", quantity=0.0, position_size_pct=None)
        assert not evaluate(intent, compile_spec(old), GateState(), NOW).promote
        assert evaluate(intent, compile_spec(new), GateState(), NOW).promote
    # Under a global assumption the highest wins: a new scope's can only raise it.
    assumed = _spec(**{"global": {"max_order_notional_usd": 1000.0, "engine_sized_notional_usd": 500.0}})
    assert only_tightens(
        assumed,
        _spec(
            **{"global": {"max_order_notional_usd": 1000.0, "engine_sized_notional_usd": 500.0}},
            symbols={"BTCUSDT": added},
        ),
    )
