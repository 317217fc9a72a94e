"""What each pre-trade refusal tells a risk officer: its code, message and `observed`/`limit` (shown in the admin
and kept in the audit trail), and that independent refusals add up rather than replace one another. These pin the
behaviour mutation testing found unasserted (`make mutation`, docs/architecture.md)."""

import pytest

from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent, make_snapshot, make_spec


def reasons(intent, state: GateState | None = None, now: float = NOW, **rules) -> list[tuple]:
    verdict = evaluate(intent, compile_spec(make_spec(**rules)), GateState() if state is None else state, now)
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
        allowed_order_types=["stop", "market"],
    )
    assert found == [
        (C.ACTION_NOT_ALLOWED, "action 'buy' is not allowed", "buy", "close,sell"),
        (
            C.STRATEGY_MODE_NOT_ALLOWED,
            "strategy mode 'llm_reasoning' is not allowed",
            "llm_reasoning",
            "deterministic,ml_light",
        ),
        (C.ORDER_TYPE_NOT_ALLOWED, "order type 'limit' is not allowed", "limit", "market,stop"),
    ]


@pytest.mark.parametrize(
    ("rule", "code", "asked"),
    [
        ("allowed_actions", C.ACTION_NOT_ALLOWED, "buy"),
        ("allowed_strategy_modes", C.STRATEGY_MODE_NOT_ALLOWED, "deterministic"),
        ("allowed_order_types", C.ORDER_TYPE_NOT_ALLOWED, "market"),
    ],
)
def test_an_empty_allow_list_says_none_is_allowed(rule, code, asked):
    [(found, _, observed, limit)] = reasons(make_intent(order_type="market"), **{rule: []})
    assert (found, observed, limit) == (code, asked, "none")


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


def test_an_engine_sized_order_without_a_reference_price_gets_that_reason_alone():
    """Without a price nothing can be valued: the missing price is the reason, not the unknown size."""
    intent = make_intent(quantity=0.0, position_size_pct=None, current_price=0.0, stop_loss=None)
    assert [code for code, *_ in reasons(intent, max_order_notional_usd=1_000.0)] == [C.NO_REFERENCE_PRICE]


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


# -- the book: exposure, snapshot, daily PnL ----------
def test_exposure_counts_what_is_held_what_is_in_flight_and_this_order_on_both_limits():
    """Promotions the snapshot does not show yet are in flight: they add to the book, for the symbol and in total,
    and only the symbol's own position and in-flight orders count towards its limit."""
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.1, 5_000.004), "ETHUSDT": (1.0, 3_000.0)}))
    rules = {"max_total_exposure_usd": 9_000.0, "symbols": {"BTCUSDT": {"max_symbol_exposure_usd": 6_000.0}}}
    first = make_intent(signal_id="a", quantity=0.01)  # 500 USD
    state.record_promotion(first, (), 500.0, NOW)
    # 5,000.004 held: `observed` is in cents, like the message.
    assert reasons(make_intent(signal_id="c", quantity=0.011), state, **rules) == [
        (
            C.SYMBOL_EXPOSURE_EXCEEDED,
            "projected BTCUSDT exposure 6,050.00 USD exceeds the limit 6,000.00 USD",
            6_050.0,
            6_000.0,
        ),
        (
            C.TOTAL_EXPOSURE_EXCEEDED,
            "projected gross exposure 9,050.00 USD exceeds the limit 9,000.00 USD",
            9_050.0,
            9_000.0,
        ),
    ]


def test_a_symbol_nobody_holds_starts_from_nothing():
    state = GateState()
    state.apply_snapshot(make_snapshot({"ETHUSDT": (1.0, 3_000.0)}))
    at_limit = {"symbols": {"BTCUSDT": {"max_symbol_exposure_usd": 500.0}}}
    assert reasons(make_intent(quantity=0.01), state, **at_limit) == []


def test_exposure_beyond_its_limit_by_less_than_the_tolerance_is_within_it():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.1, 5_000.000001)}))
    rules = {"max_total_exposure_usd": 5_500.0, "symbols": {"BTCUSDT": {"max_symbol_exposure_usd": 5_500.0}}}
    assert reasons(make_intent(quantity=0.01), state, **rules) == []


def test_what_the_snapshot_reasons_say():
    missing = reasons(make_intent(), max_drawdown_pct=0.2)
    assert missing == [
        (C.SNAPSHOT_MISSING, "no portfolio snapshot has been received; exposure cannot be checked", None, None)
    ]
    state = GateState()
    state.apply_snapshot(make_snapshot({}, ts=NOW - 30.0))
    assert reasons(make_intent(), state, NOW + 12.43, max_drawdown_pct=0.2, max_intent_age_s=None) == [
        (C.SNAPSHOT_STALE, "the portfolio snapshot is 42.4 s old; the maximum is 30.0 s", 42.4, 30.0)
    ]
    # A snapshot older than its maximum by less than a microsecond is as old as the maximum.
    assert reasons(make_intent(), state, NOW + 0.0000005, max_drawdown_pct=0.2) == []


def test_an_intent_is_too_old_or_from_the_future_by_what_it_says():
    assert reasons(make_intent(timestamp=...)) == [
        (C.TIMESTAMP_MISSING, "the intent carries no timestamp and the policy requires one", None, None)
    ]
    assert reasons(make_intent(), now=NOW + 37.5004) == [
        (C.INTENT_STALE, "intent is 37.500 s old; the maximum age is 30.000 s", 37.5, 30.0)
    ]
    assert reasons(make_intent(), now=NOW - 2.7504) == [
        (
            C.INTENT_FROM_FUTURE,
            "intent timestamp is 2.750 s in the future; the allowed clock skew is 2.000 s",
            2.75,
            2.0,
        )
    ]
    # Timestamps carry whole microseconds: half a microsecond past either bound is at it.
    assert reasons(make_intent(), now=NOW + 30.0000005) == []
    assert reasons(make_intent(), now=NOW - 2.0000005) == []


def test_what_the_duplicate_reasons_say():
    state = GateState()
    state.record_promotion(make_intent(signal_id="sig-1"), (), 500.0, NOW - 2.5004)
    assert reasons(make_intent(signal_id="sig-1"), state, dedupe_window_s=5.0) == [
        (C.DUPLICATE_INTENT, "intent 'sig-1' was already promoted", "sig-1", None),
        (C.DUPLICATE_WINDOW, "momentum_1 promoted buy BTCUSDT 2.500 s ago; the dedupe window is 5.000 s", 2.5, 5.0),
    ]
    # The window is a minimum interval, up to a microsecond: a repeat half a microsecond short of it is outside.
    assert reasons(make_intent(signal_id="sig-2"), state, NOW + 2.4995995, dedupe_window_s=5.0) == []


def test_a_dedupe_window_of_any_length_counts_and_none_is_none():
    state = GateState()
    state.record_promotion(make_intent(signal_id="a"), (), 500.0, NOW - 0.25)
    assert [r[0] for r in reasons(make_intent(signal_id="b"), state, dedupe_window_s=0.5)] == [C.DUPLICATE_WINDOW]
    # Without a window a repeat passes, even after a promotion a peer stamped ahead of this gate's clock.
    state.record_promotion(make_intent(signal_id="c"), (), 500.0, NOW + 1.0)
    assert reasons(make_intent(signal_id="d"), state) == []


@pytest.mark.parametrize(
    ("rule", "unit", "gap"),
    [("max_intents_per_second", "second", 0.25), ("max_intents_per_minute", "minute", 15.0)],
)
def test_what_the_rate_reason_says(rule, unit, gap):
    state = GateState()
    spec_rules = {"max_intent_age_s": None, "strategies": {"momentum_1": {rule: 2}}}
    for i in range(2):
        intent = make_intent(signal_id=f"s{i}")
        verdict = evaluate(intent, compile_spec(make_spec(**spec_rules)), state, NOW + i * gap)
        state.record_promotion(intent, verdict.limits.rate_rules, verdict.notional_usd, NOW + i * gap)
    found = reasons(make_intent(signal_id="s2"), state, NOW + 2 * gap, **spec_rules)
    assert found == [
        (
            C.RATE_LIMITED,
            f"strategy 'momentum_1' already promoted 2 intents in the last {unit}; the limit is 2/{unit}",
            2,
            2,
        )
    ]


MIDNIGHT = NOW // 86_400 * 86_400  # the trading day's start, at the default 00:00 UTC
NO_DAILY_PNL = "a daily loss limit applies but the snapshot has no daily_pnl_usd"


def _daily_pnl_reasons(snapshot, **rules) -> list[tuple]:
    state = GateState()
    state.apply_snapshot(snapshot)
    return reasons(make_intent(), state, **rules)


def test_a_snapshot_without_todays_pnl_window_says_which_window_it_has():
    window = "is not the current trading day (starting 00:00 UTC)"
    missing = f"a daily loss limit applies but the snapshot's PnL window (pnl_since missing) {window}"
    assert _daily_pnl_reasons(make_snapshot({}), max_daily_loss_usd=1_000.0) == [
        (C.DAILY_PNL_UNKNOWN, missing, None, None)
    ]
    yesterday = make_snapshot({}, daily_pnl=-10.0, pnl_since=MIDNIGHT - 86_400)
    assert _daily_pnl_reasons(yesterday, max_daily_loss_pct=0.05) == [
        (
            C.DAILY_PNL_UNKNOWN,
            f"a daily loss limit applies but the snapshot's PnL window (pnl_since 2027-01-14T00:00:00+00:00) {window}",
            None,
            None,
        )
    ]


@pytest.mark.parametrize("rule", [{"max_daily_loss_usd": 1_000.0}, {"max_daily_loss_pct": 0.05}])
def test_either_global_daily_loss_limit_needs_the_days_pnl(rule):
    assert _daily_pnl_reasons(make_snapshot({}, pnl_since=MIDNIGHT), **rule) == [
        (C.DAILY_PNL_UNKNOWN, NO_DAILY_PNL, None, None)
    ]


def test_missing_daily_figures_add_up_to_one_reason_each():
    strategy_limit = {"strategies": {"momentum_1": {"max_daily_loss_usd": 100.0}}}
    without_pnl = make_snapshot({}, pnl_since=MIDNIGHT)
    no_strategy = (C.DAILY_PNL_UNKNOWN, "momentum_1 has a daily loss limit but the snapshot reports no PnL for it")
    assert _daily_pnl_reasons(without_pnl, max_daily_loss_usd=1_000.0, **strategy_limit) == [
        (C.DAILY_PNL_UNKNOWN, NO_DAILY_PNL, None, None),
        (*no_strategy, "momentum_1", None),
    ]
    # Without today's PnL the share of the day's starting equity is moot: one reason, not two.
    assert _daily_pnl_reasons(without_pnl, max_daily_loss_pct=0.05, max_daily_loss_usd=1_000.0) == [
        (C.DAILY_PNL_UNKNOWN, NO_DAILY_PNL, None, None)
    ]
    with_pnl = make_snapshot({}, daily_pnl=-10.0)
    assert _daily_pnl_reasons(with_pnl, max_daily_loss_pct=0.05, **strategy_limit) == [
        (C.DAILY_PNL_UNKNOWN, "max_daily_loss_pct applies but the snapshot has no day_start_equity_usd", None, None),
        (*no_strategy, "momentum_1", None),
    ]
    # A strategy's own limit needs only its own PnL.
    assert _daily_pnl_reasons(without_pnl, **strategy_limit) == [(*no_strategy, "momentum_1", None)]
    assert _daily_pnl_reasons(make_snapshot({}, strategy_pnl={"momentum_1": -5.0}), **strategy_limit) == []


def test_what_the_collar_reason_says():
    intent = make_intent(order_type="limit", price=55_001.23, stop_loss=54_000.0)
    message = "price 55001.2 is 1000.2 bps from current_price 50000; the collar is 50.0 bps"
    assert reasons(intent, price_collar_bps=50) == [(C.PRICE_COLLAR_BREACHED, message, 1000.25, 50)]
    # A coin priced under 1 USD has a collar too.
    cheap = make_intent(symbol="DOGEUSDT", order_type="limit", price=0.6, current_price=0.5, stop_loss=0.55)
    assert [r[0] for r in reasons(cheap, price_collar_bps=50)] == [C.PRICE_COLLAR_BREACHED]
    # Less than the tolerance beyond the collar is at it (50.00000002 bps here).
    at_collar = make_intent(order_type="limit", price=50_250.0000001, stop_loss=49_500.0)
    assert reasons(at_collar, price_collar_bps=50) == []


@pytest.mark.parametrize(
    ("price", "current_price", "code"),
    [(0.0, 50_000.0, C.ORDER_PRICE_MISSING), (50_000.0, 0.0, C.NO_REFERENCE_PRICE)],
)
def test_a_collar_needs_both_prices_and_leaves_a_missing_one_to_its_own_reason(price, current_price, code):
    intent = make_intent(order_type="limit", price=price, current_price=current_price, stop_loss=None)
    assert [found[0] for found in reasons(intent, price_collar_bps=50)] == [code]


def test_every_rate_limit_that_is_reached_is_a_reason_of_its_own():
    state = GateState()
    rules = {
        "max_intent_age_s": None,
        "strategies": {"momentum_1": {"max_intents_per_second": 1, "max_intents_per_minute": 1}},
        "symbols": {"BTCUSDT": {"max_intents_per_minute": 1}},
    }
    first = make_intent(signal_id="s0")
    verdict = evaluate(first, compile_spec(make_spec(**rules)), state, NOW)
    state.record_promotion(first, verdict.limits.rate_rules, verdict.notional_usd, NOW)
    found = reasons(make_intent(signal_id="s1"), state, NOW + 0.5, **rules)
    assert [(code, observed, limit) for code, _, observed, limit in found] == [(C.RATE_LIMITED, 1, 1)] * 3
    assert {message.split(" already")[0] for _, message, *_ in found} == {"strategy 'momentum_1'", "symbol 'BTCUSDT'"}


def test_what_shrinks_risk_is_never_held_to_the_books_limits():
    """A close, or a sell that only reduces a long while the policy is reducing, passes exposure limits an opening
    order would break and a daily loss limit without today's PnL, and its exits are not checked; a close passes with
    a snapshot too old for them."""
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.5, 25_000.0)}, daily_pnl=-10.0, pnl_since=MIDNIGHT - 86_400))
    rules = {
        "max_total_exposure_usd": 1_000.0,
        "max_daily_loss_usd": 1_000.0,
        "symbols": {"BTCUSDT": {"max_symbol_exposure_usd": 1_000.0}},
    }
    close = make_intent(action="close", stop_loss=None)
    assert reasons(close, state, **rules) == []
    sell = make_intent(action="sell", quantity=0.1, stop_loss=None, take_profit=60_000.0)  # the wrong side for a sell
    assert reasons(sell, state, **rules, trading_state="reducing") == []
    assert reasons(close, state, NOW + 45.0, **rules, max_intent_age_s=None) == []


def test_an_order_notional_is_observed_in_cents():
    found = reasons(make_intent(quantity=2.00000008), max_order_notional_usd=25_000.0)
    message = "order notional 100,000.00 USD exceeds the maximum 25,000.00 USD"
    assert found == [(C.ORDER_NOTIONAL_EXCEEDED, message, 100_000.0, 25_000.0)]


def test_what_the_stop_distance_reason_says():
    """`observed` is the distance to six decimals; a stop also on the wrong side gets both reasons."""
    found = reasons(make_intent(stop_loss=51_000.0, stop_loss_pct=0.0300004), max_stop_distance_pct=0.02)
    assert found == [
        (C.STOP_LOSS_INVALID, "stop_loss 51000 must be below the entry price 50000 for a buy", 51_000.0, 50_000.0),
        (C.STOP_LOSS_TOO_WIDE, "stop distance 3.0000% exceeds the maximum 2.0000%", 0.03, 0.02),
    ]


def test_what_the_take_profit_reasons_say():
    found = reasons(make_intent(take_profit_pct=0.0, take_profit=45_000.0))
    assert found == [
        (C.TAKE_PROFIT_INVALID, "take_profit_pct must be above 0", 0.0, None),
        (C.TAKE_PROFIT_INVALID, "take_profit 45000 must be above the entry price 50000 for a buy", 45_000.0, 50_000.0),
    ]
    # A coin priced under 1 USD is checked like any other; without a reference price there is no side to be on.
    cheap = make_intent(symbol="DOGEUSDT", price=0.5, current_price=0.5, stop_loss=0.45, take_profit=0.4)
    assert reasons(cheap) == [
        (C.TAKE_PROFIT_INVALID, "take_profit 0.4 must be above the entry price 0.5 for a buy", 0.4, 0.5)
    ]
    unpriced = make_intent(action="sell", current_price=0.0, stop_loss=None, take_profit=45_000.0)
    assert [code for code, *_ in reasons(unpriced)] == [C.NO_REFERENCE_PRICE]
