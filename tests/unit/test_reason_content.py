"""What each pre-trade refusal tells a risk officer: its code, message and `observed`/`limit` (shown in the admin
and kept in the audit trail), and that independent refusals add up rather than replace one another. These pin the
behaviour mutation testing found unasserted (`make mutation`, docs/architecture.md)."""

import pytest

from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent, make_spec


def reasons(intent, **rules):
    verdict = evaluate(intent, compile_spec(make_spec(**rules)), GateState(), NOW)
    return [(r.code, r.message, r.observed, r.limit) for r in verdict.reasons]


def test_a_denied_symbol_off_a_strategy_allow_list_gets_both_reasons_with_what_was_asked():
    found = reasons(
        make_intent(symbol="LUNAUSDT"),
        denied_symbols=["LUNAUSDT"],
        strategies={"momentum_1": {"allowed_symbols": ["BTCUSDT"]}},
    )
    assert found == [
        (C.SYMBOL_DENIED, "LUNAUSDT is on the global deny list", "LUNAUSDT", None),
        (C.SYMBOL_NOT_ALLOWED, "LUNAUSDT is not on the strategy allow list", "LUNAUSDT", None),
    ]


def test_an_order_of_a_shape_nobody_allowed_gets_one_reason_per_rule_with_the_allowed_values():
    intent = make_intent(action="buy", strategy_mode="llm_reasoning", order_type="limit")
    found = reasons(
        intent,
        allowed_actions=["close", "sell"],
        allowed_strategy_modes=["deterministic", "ml_light"],
        allowed_order_types=["market"],
    )
    assert found == [
        (C.ACTION_NOT_ALLOWED, "action 'buy' is not allowed", "buy", "close,sell"),
        (
            C.STRATEGY_MODE_NOT_ALLOWED,
            "strategy mode 'llm_reasoning' is not allowed",
            "llm_reasoning",
            "deterministic,ml_light",
        ),
        (C.ORDER_TYPE_NOT_ALLOWED, "order type 'limit' is not allowed", "limit", "market"),
    ]


def test_an_empty_allow_list_says_none_is_allowed():
    [(code, _, observed, limit)] = reasons(make_intent(order_type="market"), allowed_order_types=[])
    assert (code, observed, limit) == (C.ORDER_TYPE_NOT_ALLOWED, "market", "none")


@pytest.mark.parametrize(
    ("action", "field", "code"),
    [
        ("buy", "stop_loss", C.STOP_LOSS_INVALID),
        ("sell", "stop_loss", C.STOP_LOSS_INVALID),
        ("buy", "take_profit", C.TAKE_PROFIT_INVALID),
        ("sell", "take_profit", C.TAKE_PROFIT_INVALID),
    ],
)
def test_a_stop_or_take_profit_exactly_at_the_entry_is_on_the_wrong_side(action, field, code):
    """At the entry price a stop or a take-profit would fire at once: it is refused, for either side, with the
    level and the entry as observed and limit."""
    entry = 50_000.0
    other = {"stop_loss": entry * (0.98 if action == "buy" else 1.02)} if field == "take_profit" else {}
    intent = make_intent(action=action, price=entry, current_price=entry, **{field: entry, **other})
    found = [r for r in reasons(intent) if r[0] == code]
    assert len(found) == 1
    _, message, observed, limit = found[0]
    assert (observed, limit) == (entry, entry)
    side = {"stop_loss": {"buy": "below", "sell": "above"}, "take_profit": {"buy": "above", "sell": "below"}}
    assert message == f"{field} 50000 must be {side[field][action]} the entry price 50000 for a {action}"


def test_a_priced_order_without_any_price_gets_both_price_reasons():
    found = reasons(make_intent(order_type="limit", price=0.0, current_price=0.0, stop_loss=None))
    assert (C.NO_REFERENCE_PRICE, "current_price must be positive to check the order", 0.0, None) in found
    assert (C.ORDER_PRICE_MISSING, "a limit order needs a positive price", 0.0, None) in found


def test_a_priced_close_without_a_price_is_not_refused_for_it():
    """A close unwinds at whatever the venue gives; refusing it for a missing limit price would trap a position."""
    found = reasons(make_intent(action="close", order_type="limit", price=0.0, stop_loss=None))
    assert all(code != C.ORDER_PRICE_MISSING for code, *_ in found), found


def test_an_order_too_big_in_both_ways_gets_both_size_reasons_with_their_figures():
    found = reasons(
        make_intent(quantity=2.0, price=50_000.0, current_price=50_000.0),
        max_order_quantity=1.5,
        max_order_notional_usd=25_000.0,
    )
    assert found == [
        (C.ORDER_QUANTITY_EXCEEDED, "quantity 2 exceeds the maximum 1.5", 2.0, 1.5),
        (
            C.ORDER_NOTIONAL_EXCEEDED,
            "order notional 100,000.00 USD exceeds the maximum 25,000.00 USD",
            100_000.0,
            25_000.0,
        ),
    ]


ENGINE_SIZED = (
    "quantity is 0, so the trade engine sizes the order, and no policy scope states what such an order is worth: "
    "set engine_sized_notional_usd (global, strategy or symbol) for the notional and exposure limits to use"
)


@pytest.mark.parametrize(
    ("rules", "price"),
    [
        ({"max_symbol_exposure_usd": 50_000.0}, 50_000.0),  # an exposure limit alone needs the notional too
        ({"max_total_exposure_usd": 100_000.0}, 50_000.0),
        ({"max_order_notional_usd": 1_000.0}, 0.4),  # a coin priced under 1 USD is no exception
    ],
)
def test_an_engine_sized_order_nobody_can_value_is_refused_wherever_a_limit_needs_its_size(rules, price):
    intent = make_intent(
        symbol="DOGEUSDT",
        quantity=0.0,
        position_size_pct=None,
        price=price,
        current_price=price,
        stop_loss=price * 0.98,
    )
    verdict = evaluate(intent, compile_spec(make_spec(**rules)), GateState(), NOW)
    unknown = [r for r in verdict.reasons if r.code == C.ORDER_SIZE_UNKNOWN]
    assert [r.message for r in unknown] == [ENGINE_SIZED]


def test_a_share_of_equity_without_a_snapshot_says_what_is_missing():
    intent = make_intent(quantity=0.0, position_size_pct=0.05)
    [(_, message, observed, limit)] = [
        r for r in reasons(intent, max_order_notional_usd=25_000.0) if r[0] == C.ORDER_SIZE_UNKNOWN
    ]
    assert (observed, limit) == (None, None)
    assert message == (
        "quantity is 0 and position_size_pct is 0.05, but no portfolio snapshot gives the equity it is a share of, "
        "so the notional and exposure limits cannot be checked"
    )


def test_an_order_too_big_every_way_gets_every_size_reason():
    intent = make_intent(quantity=2.0, position_size_pct=0.5)
    found = reasons(intent, max_order_quantity=1.0, max_order_notional_usd=50_000.0, max_position_size_pct=0.1)
    assert [code for code, *_ in found] == [
        C.ORDER_QUANTITY_EXCEEDED,
        C.ORDER_NOTIONAL_EXCEEDED,
        C.POSITION_SIZE_EXCEEDED,
    ]
    assert found[2] == (C.POSITION_SIZE_EXCEEDED, "position_size_pct 0.5 exceeds the maximum 0.1", 0.5, 0.1)


def test_what_the_stop_reasons_say():
    required = reasons(make_intent(stop_loss=None), require_stop_loss=True)
    assert required == [(C.STOP_LOSS_REQUIRED, "opening orders must carry stop_loss or stop_loss_pct", None, None)]
    # A zero percentage and a stop on the wrong side are two faults, reported together.
    both = reasons(make_intent(stop_loss_pct=0.0, stop_loss=51_000.0))
    assert both == [
        (C.STOP_LOSS_INVALID, "stop_loss_pct must be above 0", 0.0, None),
        (C.STOP_LOSS_INVALID, "stop_loss 51000 must be below the entry price 50000 for a buy", 51_000.0, 50_000.0),
    ]
    assert reasons(make_intent(stop_loss_pct=0.01, stop_loss=None)) == []  # a positive percentage is a stop
