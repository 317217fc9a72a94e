"""One section per pre-trade control: the passing case, the failing case and the edge between them."""

import pytest

from cio_kernel.policy.spec import PolicySpec
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.state import GateState
from gate.policy.resolve import RateRule
from tests.factories import NOW, compile_spec, make_intent, make_snapshot, make_spec


def decide(intent, spec: PolicySpec, state: GateState | None = None, now: float = NOW) -> Verdict:
    return evaluate(intent, compile_spec(spec), state or GateState(), now)


def codes(verdict: Verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


def test_default_policy_approves_a_plain_intent():
    verdict = decide(make_intent(), make_spec())
    assert verdict.promote
    assert verdict.reasons == ()
    assert verdict.notional_usd == pytest.approx(500.0)


# -- trading states ----------
@pytest.mark.parametrize("scope", ["global", "strategy", "symbol"])
def test_halted_at_any_scope_rejects_buy_and_short_circuits(scope):
    spec = {
        "global": make_spec(trading_state="halted"),
        "strategy": make_spec(strategies={"momentum_1": {"trading_state": "halted"}}),
        "symbol": make_spec(symbols={"BTCUSDT": {"trading_state": "halted"}}),
    }[scope]
    verdict = decide(make_intent(confidence=0.0, quantity=1e9), spec)
    assert not verdict.promote
    assert [r.code for r in verdict.reasons] == [C.TRADING_HALTED]
    assert scope in verdict.reasons[0].message


def test_halted_admits_close():
    verdict = decide(make_intent(action="close", stop_loss=None), make_spec(trading_state="halted"))
    assert verdict.promote


def test_halt_on_another_symbol_does_not_leak():
    spec = make_spec(symbols={"ETHUSDT": {"trading_state": "halted"}})
    assert decide(make_intent(), spec).promote


def test_reducing_rejects_opening_from_flat():
    state = GateState()
    state.apply_snapshot(make_snapshot({}))
    verdict = decide(make_intent(action="buy"), make_spec(trading_state="reducing"), state)
    assert codes(verdict) == {C.TRADING_REDUCING}


def test_reducing_admits_a_partial_sell_of_a_long():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.5, 25_000.0)}))
    verdict = decide(
        make_intent(action="sell", quantity=0.5, stop_loss=None), make_spec(trading_state="reducing"), state
    )
    assert verdict.promote


def test_reducing_rejects_a_flip_from_long_to_short():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.5, 25_000.0)}))
    verdict = decide(make_intent(action="sell", quantity=0.6), make_spec(trading_state="reducing"), state)
    assert C.TRADING_REDUCING in codes(verdict)


def test_reducing_admits_buy_that_covers_part_of_a_short():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (-2.0, 100_000.0)}))
    verdict = decide(make_intent(action="buy", quantity=1.0), make_spec(trading_state="reducing"), state)
    assert verdict.promote


def test_reducing_without_a_fresh_snapshot_only_admits_close():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.5, 25_000.0)}, ts=NOW - 3600))
    spec = make_spec(trading_state="reducing")
    assert C.TRADING_REDUCING in codes(decide(make_intent(action="sell", quantity=0.1), spec, state))
    assert decide(make_intent(action="close"), spec, state).promote


def test_most_severe_state_wins_across_scopes():
    spec = make_spec(trading_state="reducing", strategies={"momentum_1": {"trading_state": "active"}})
    verdict = decide(make_intent(), spec)
    assert C.TRADING_REDUCING in codes(verdict)


def test_hold_is_acknowledged_never_promoted():
    verdict = decide(make_intent(action="hold"), make_spec())
    assert not verdict.promote
    assert [r.code for r in verdict.reasons] == [C.HOLD_NOT_PROMOTED]


# -- drawdown ----------
def test_drawdown_at_the_limit_turns_the_gate_reducing():
    state = GateState()
    state.apply_snapshot(make_snapshot({}, drawdown=0.10))
    spec = make_spec(max_drawdown_pct=0.10)
    assert C.DRAWDOWN_REDUCING in codes(decide(make_intent(), spec, state))
    state2 = GateState()
    state2.apply_snapshot(make_snapshot({}, drawdown=0.0999))
    assert decide(make_intent(), spec, state2).promote


def test_drawdown_still_admits_reducing_intents():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (1.0, 50_000.0)}, drawdown=0.5))
    verdict = decide(make_intent(action="sell", quantity=1.0), make_spec(max_drawdown_pct=0.1), state)
    assert verdict.promote


def test_drawdown_limit_without_snapshot_fails_closed():
    verdict = decide(make_intent(), make_spec(max_drawdown_pct=0.1))
    assert codes(verdict) == {C.SNAPSHOT_MISSING}


def test_stale_snapshot_fails_closed():
    state = GateState()
    state.apply_snapshot(make_snapshot({}, ts=NOW - 31))
    verdict = decide(make_intent(), make_spec(max_drawdown_pct=0.1, max_snapshot_age_s=30), state)
    assert codes(verdict) == {C.SNAPSHOT_STALE}


# -- symbols and order shape ----------
def test_global_deny_list():
    verdict = decide(make_intent(), make_spec(denied_symbols=["BTCUSDT"]))
    assert codes(verdict) == {C.SYMBOL_DENIED}


def test_strategy_deny_list_only_affects_that_strategy():
    spec = make_spec(strategies={"other": {"denied_symbols": ["BTCUSDT"]}})
    assert decide(make_intent(), spec).promote
    assert C.SYMBOL_DENIED in codes(decide(make_intent(strategy_id="other"), spec))


def test_allow_lists_intersect():
    spec = make_spec(
        allowed_symbols=["BTCUSDT", "ETHUSDT"], strategies={"momentum_1": {"allowed_symbols": ["ETHUSDT"]}}
    )
    assert C.SYMBOL_NOT_ALLOWED in codes(decide(make_intent(), spec))
    assert decide(make_intent(symbol="ETHUSDT", price=3000, current_price=3000, stop_loss=2900), spec).promote
    assert C.SYMBOL_NOT_ALLOWED in codes(decide(make_intent(symbol="SOLUSDT", strategy_id="x"), spec))


def test_reducing_intent_on_a_symbol_off_the_allow_list_passes():
    state = GateState()
    state.apply_snapshot(make_snapshot({"DOGEUSDT": (100.0, 10.0)}))
    spec = make_spec(allowed_symbols=["BTCUSDT"])
    intent = make_intent(symbol="DOGEUSDT", action="sell", quantity=100.0, price=0.1, current_price=0.1, stop_loss=None)
    assert decide(intent, spec, state).promote


def test_allowed_actions_modes_and_order_types():
    spec = make_spec(
        allowed_actions=["buy", "close"], allowed_strategy_modes=["deterministic"], allowed_order_types=["market"]
    )
    verdict = decide(
        make_intent(action="sell", strategy_mode="llm_reasoning", order_type="limit", stop_loss=51_000), spec
    )
    assert codes(verdict) == {C.ACTION_NOT_ALLOWED, C.STRATEGY_MODE_NOT_ALLOWED, C.ORDER_TYPE_NOT_ALLOWED}


def test_missing_mode_and_order_type_mean_the_contract_defaults():
    spec = make_spec(allowed_strategy_modes=["ml_light"], allowed_order_types=["limit"])
    assert codes(decide(make_intent(), spec)) == {C.STRATEGY_MODE_NOT_ALLOWED, C.ORDER_TYPE_NOT_ALLOWED}


def test_min_confidence_edge():
    spec = make_spec(min_confidence=0.6)
    assert decide(make_intent(confidence=0.6), spec).promote
    verdict = decide(make_intent(confidence=0.59), spec)
    assert codes(verdict) == {C.CONFIDENCE_TOO_LOW}
    assert verdict.reasons[0].observed == 0.59
    assert verdict.reasons[0].limit == 0.6


# -- sizes and prices ----------
def test_max_order_quantity_and_symbol_override_is_tighter():
    spec = make_spec(max_order_quantity=1.0, symbols={"BTCUSDT": {"max_order_quantity": 0.1}})
    assert decide(make_intent(quantity=0.1), spec).promote
    assert codes(decide(make_intent(quantity=0.11), spec)) == {C.ORDER_QUANTITY_EXCEEDED}
    eth = make_intent(symbol="ETHUSDT", quantity=0.5, price=3000, current_price=3000, stop_loss=2900)
    assert decide(eth, spec).promote


def test_max_order_notional_uses_limit_price_for_limit_orders():
    spec = make_spec(max_order_notional_usd=1_000.0)
    market = make_intent(quantity=0.021, price=1.0, current_price=50_000.0)  # market: current_price counts
    verdict = decide(market, spec)
    assert codes(verdict) == {C.ORDER_NOTIONAL_EXCEEDED}
    assert verdict.reasons[0].observed == pytest.approx(1_050.0)
    # 0.02004 x 49,900 = 999.996 passes; at current_price it would be 1,002 and fail.
    limit = make_intent(order_type="limit", quantity=0.02004, price=49_900.0, current_price=50_000.0, stop_loss=49_000)
    verdict = decide(limit, spec)
    assert verdict.promote
    assert verdict.notional_usd == pytest.approx(999.996)


def test_notional_exactly_at_the_limit_passes():
    spec = make_spec(max_order_notional_usd=500.0)
    assert decide(make_intent(quantity=0.01), spec).promote


def test_engine_sized_order_passes_when_no_limit_needs_its_notional():
    # The TA bot's shape: quantity 0.0, no position_size_pct; nothing in this policy needs a notional.
    verdict = decide(make_intent(quantity=0.0, position_size_pct=None), make_spec(max_order_quantity=1.0))
    assert verdict.promote
    assert verdict.notional_usd is None


def test_engine_sized_order_without_a_stated_notional_is_refused_where_a_limit_needs_one():
    verdict = decide(make_intent(quantity=0.0), make_spec(max_order_notional_usd=5_000.0))
    assert codes(verdict) == {C.ORDER_SIZE_UNKNOWN}
    assert "engine_sized_notional_usd" in verdict.reasons[0].message  # names the setting that fixes it


def test_engine_sized_notional_is_checked_against_the_notional_limit():
    spec = make_spec(max_order_notional_usd=5_000.0, engine_sized_notional_usd=1_000.0)
    verdict = decide(make_intent(quantity=0.0), spec)
    assert verdict.promote
    assert verdict.notional_usd == pytest.approx(1_000.0)
    tight = make_spec(max_order_notional_usd=999.0, engine_sized_notional_usd=1_000.0)
    assert codes(decide(make_intent(quantity=0.0), tight)) == {C.ORDER_NOTIONAL_EXCEEDED}


def test_engine_sized_notional_takes_the_highest_scope_value():
    spec = make_spec(
        max_order_notional_usd=1_500.0,
        engine_sized_notional_usd=1_000.0,
        strategies={"momentum_1": {"engine_sized_notional_usd": 2_000.0}},
        symbols={"BTCUSDT": {"engine_sized_notional_usd": 500.0}},
    )
    verdict = decide(make_intent(quantity=0.0), spec)
    assert verdict.notional_usd == pytest.approx(2_000.0)
    assert codes(verdict) == {C.ORDER_NOTIONAL_EXCEEDED}


def test_engine_sized_notional_counts_towards_exposure():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.1, 5_000.0)}))
    spec = make_spec(max_symbol_exposure_usd=5_500.0, engine_sized_notional_usd=1_000.0)
    assert codes(decide(make_intent(quantity=0.0), spec, state)) == {C.SYMBOL_EXPOSURE_EXCEEDED}
    assert decide(
        make_intent(quantity=0.0), make_spec(max_symbol_exposure_usd=6_000.0, engine_sized_notional_usd=1_000.0), state
    ).promote


def test_engine_sized_order_is_bounded_by_equity_when_a_notional_limit_applies():
    spec = make_spec(max_order_notional_usd=1_000.0)
    intent = make_intent(quantity=0.0, position_size_pct=0.05)
    assert codes(decide(intent, spec)) == {C.ORDER_SIZE_UNKNOWN}  # equity unknown
    state = GateState()
    state.apply_snapshot(make_snapshot({}, equity=10_000.0))
    assert decide(intent, spec, state).promote  # 5% of 10k = 500
    state.apply_snapshot(make_snapshot({}, equity=100_000.0, ts=NOW + 1))
    assert codes(decide(intent, spec, state, now=NOW + 1)) == {C.ORDER_NOTIONAL_EXCEEDED}


def test_position_size_pct_limit():
    spec = make_spec(max_position_size_pct=0.1)
    assert decide(make_intent(position_size_pct=0.1), spec).promote
    assert codes(decide(make_intent(position_size_pct=0.11), spec)) == {C.POSITION_SIZE_EXCEEDED}


def test_close_is_exempt_from_size_limits():
    spec = make_spec(max_order_quantity=0.001, max_order_notional_usd=1.0)
    assert decide(make_intent(action="close", quantity=5.0, stop_loss=None), spec).promote


def test_zero_current_price_is_no_reference_price():
    verdict = decide(make_intent(current_price=0.0), make_spec(max_order_notional_usd=1e6))
    assert C.NO_REFERENCE_PRICE in codes(verdict)


def test_priced_order_without_price():
    verdict = decide(make_intent(order_type="limit", price=0.0), make_spec())
    assert C.ORDER_PRICE_MISSING in codes(verdict)


# -- stop loss ----------
def test_stop_loss_required_for_opening_orders_only():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (1.0, 50_000.0)}))
    spec = make_spec(require_stop_loss=True)
    assert codes(decide(make_intent(stop_loss=None), spec, state)) == {C.STOP_LOSS_REQUIRED}
    assert decide(make_intent(stop_loss=None, stop_loss_pct=0.02), spec, state).promote
    assert decide(make_intent(action="sell", quantity=0.5, stop_loss=None), spec, state).promote  # reducing


def test_stop_loss_on_the_wrong_side_is_invalid():
    assert codes(decide(make_intent(stop_loss=50_500.0), make_spec())) == {C.STOP_LOSS_INVALID}
    assert codes(decide(make_intent(action="sell", stop_loss=49_000.0), make_spec())) == {C.STOP_LOSS_INVALID}
    assert decide(make_intent(action="sell", stop_loss=51_000.0), make_spec()).promote


def test_max_stop_distance():
    spec = make_spec(max_stop_distance_pct=0.02)
    assert decide(make_intent(stop_loss=49_000.0), spec).promote  # exactly 2%
    assert codes(decide(make_intent(stop_loss=48_999.0), spec)) == {C.STOP_LOSS_TOO_WIDE}
    assert codes(decide(make_intent(stop_loss=None, stop_loss_pct=0.03), spec)) == {C.STOP_LOSS_TOO_WIDE}


# -- collar ----------
def test_price_collar_applies_to_priced_orders_on_both_sides():
    spec = make_spec(price_collar_bps=50)
    ok = make_intent(order_type="limit", price=50_250.0, stop_loss=49_500.0)
    assert decide(ok, spec).promote  # exactly 50 bps
    too_high = make_intent(order_type="limit", price=50_300.0, stop_loss=49_500.0)
    too_low = make_intent(order_type="stop", price=49_700.0, stop_loss=49_000.0)
    assert codes(decide(too_high, spec)) == {C.PRICE_COLLAR_BREACHED}
    assert codes(decide(too_low, spec)) == {C.PRICE_COLLAR_BREACHED}
    market_far = make_intent(price=1.0)  # price is informational for market orders
    assert decide(market_far, spec).promote


# -- time ----------
def test_staleness_window():
    spec = make_spec(max_intent_age_s=5.0, max_clock_skew_s=1.0)
    assert decide(make_intent(), spec, now=NOW + 5.0).promote
    assert codes(decide(make_intent(), spec, now=NOW + 5.01)) == {C.INTENT_STALE}
    assert decide(make_intent(), spec, now=NOW - 1.0).promote
    assert codes(decide(make_intent(), spec, now=NOW - 1.01)) == {C.INTENT_FROM_FUTURE}


def test_missing_timestamp_is_rejected_unless_the_policy_allows_it():
    intent = make_intent(timestamp=...)
    assert intent.timestamp is None
    assert codes(decide(intent, make_spec())) == {C.TIMESTAMP_MISSING}
    assert decide(intent, make_spec(require_timestamp=False)).promote


# -- duplicates and rates ----------
def _promote(state: GateState, intent, spec, now: float) -> Verdict:
    verdict = decide(intent, spec, state, now)
    if verdict.promote:
        state.record_promotion(intent, verdict.limits.rate_rules, verdict.notional_usd, now)
    return verdict


def test_same_signal_id_is_promoted_once():
    state, spec = GateState(), make_spec()
    assert _promote(state, make_intent(), spec, NOW).promote
    again = _promote(state, make_intent(), spec, NOW + 1)
    assert codes(again) == {C.DUPLICATE_INTENT}
    assert _promote(state, make_intent(strategy_id="other"), spec, NOW + 1).promote  # ids are per strategy


def test_rejected_intent_can_be_retried_with_the_same_id():
    state = GateState()
    assert not _promote(state, make_intent(confidence=0.1), make_spec(min_confidence=0.5), NOW).promote
    assert _promote(state, make_intent(confidence=0.9), make_spec(min_confidence=0.5), NOW).promote


def test_client_order_id_dedupes_when_there_is_no_signal_id():
    state, spec = GateState(), make_spec()
    assert _promote(state, make_intent(signal_id=None, client_order_id="c-1"), spec, NOW).promote
    assert codes(_promote(state, make_intent(signal_id=None, client_order_id="c-1"), spec, NOW)) == {C.DUPLICATE_INTENT}


def test_duplicate_ids_expire_after_their_ttl():
    state, spec = GateState(dedupe_id_ttl_s=10), make_spec(max_intent_age_s=None)
    assert _promote(state, make_intent(), spec, NOW).promote
    assert _promote(state, make_intent(), spec, NOW + 10.5).promote


def test_dedupe_window_on_strategy_symbol_action():
    state, spec = GateState(), make_spec(dedupe_window_s=5.0, max_intent_age_s=None)
    assert _promote(state, make_intent(signal_id="a"), spec, NOW).promote
    assert codes(_promote(state, make_intent(signal_id="b"), spec, NOW + 4.9)) == {C.DUPLICATE_WINDOW}
    assert _promote(state, make_intent(signal_id="c", action="sell", stop_loss=51_000), spec, NOW + 4.9).promote
    assert _promote(state, make_intent(signal_id="d"), spec, NOW + 5.0).promote


def test_rate_limit_per_strategy_per_second():
    state = GateState()
    spec = make_spec(max_intent_age_s=None, strategies={"momentum_1": {"max_intents_per_second": 3}})
    results = [_promote(state, make_intent(signal_id=f"s{i}"), spec, NOW + i * 0.1).promote for i in range(5)]
    assert results == [True, True, True, False, False]
    assert _promote(state, make_intent(signal_id="later"), spec, NOW + 1.05).promote  # first one left the window
    assert _promote(state, make_intent(signal_id="o", strategy_id="other"), spec, NOW + 0.5).promote


def test_rate_limit_per_symbol_counts_across_strategies():
    state = GateState()
    spec = make_spec(max_intent_age_s=None, symbols={"BTCUSDT": {"max_intents_per_minute": 2}})
    assert _promote(state, make_intent(strategy_id="a"), spec, NOW).promote
    assert _promote(state, make_intent(strategy_id="b"), spec, NOW + 10).promote
    verdict = _promote(state, make_intent(strategy_id="c"), spec, NOW + 20)
    assert codes(verdict) == {C.RATE_LIMITED}
    assert "symbol 'BTCUSDT'" in verdict.reasons[0].message
    assert _promote(state, make_intent(strategy_id="c"), spec, NOW + 60.5).promote


def test_global_rate_limit():
    state = GateState()
    spec = make_spec(max_intent_age_s=None, max_intents_per_second=2)
    outcomes = [_promote(state, make_intent(strategy_id=f"s{i}"), spec, NOW + 0.01 * i).promote for i in range(3)]
    assert outcomes == [True, True, False]


def test_a_rate_window_counts_the_promotions_younger_than_it():
    """Ties all count; a peer's older timestamp counts as the newest (the window stays sorted, which the count's
    bisection relies on); one exactly a window old has left it."""
    state, rule = GateState(), (RateRule("global", "*", None, 100),)
    for ts in (NOW, NOW, NOW + 10, NOW + 5, NOW + 30):  # NOW + 5: a peer's, older than the newest
        state.record("s", "BTCUSDT", "buy", None, rule, None, ts)
    assert state.promoted_count("global", "*", 60.0, NOW + 30) == 5
    assert state.promoted_count("global", "*", 30.0, NOW + 30) == 3  # the two at NOW are exactly 30 s old
    assert state.promoted_count("global", "*", 25.0, NOW + 30) == 3  # the peer's counts as NOW + 10
    assert state.promoted_count("global", "*", 1.0, NOW + 30) == 1
    assert state.promoted_count("global", "*", 1.0, NOW + 31) == 0
    assert state.promoted_count("strategy", "s", 60.0, NOW + 30) == 0  # no rule of that scope recorded it


# -- exposure ----------
def test_symbol_exposure_counts_snapshot_pending_and_this_order():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.1, 5_000.0)}))
    spec = make_spec(max_intent_age_s=None, symbols={"BTCUSDT": {"max_symbol_exposure_usd": 6_000.0}})
    assert _promote(state, make_intent(signal_id="a", quantity=0.01), spec, NOW).promote  # 5000+500
    verdict = _promote(state, make_intent(signal_id="b", quantity=0.011), spec, NOW)  # 5500+550
    assert codes(verdict) == {C.SYMBOL_EXPOSURE_EXCEEDED}
    assert verdict.reasons[0].observed == pytest.approx(6_050.0)
    state.apply_snapshot(make_snapshot({"BTCUSDT": (0.1, 5_000.0)}, ts=NOW + 1))  # pending folded into the book
    assert _promote(state, make_intent(signal_id="c", quantity=0.011), spec, NOW + 1).promote


def test_total_exposure():
    state = GateState()
    state.apply_snapshot(make_snapshot({"ETHUSDT": (10.0, 30_000.0)}))
    spec = make_spec(max_total_exposure_usd=30_400.0)
    assert codes(decide(make_intent(), spec, state)) == {C.TOTAL_EXPOSURE_EXCEEDED}
    assert decide(make_intent(), make_spec(max_total_exposure_usd=30_500.0), state).promote


def test_exposure_limit_without_snapshot_fails_closed():
    verdict = decide(make_intent(), make_spec(max_total_exposure_usd=1e9))
    assert codes(verdict) == {C.SNAPSHOT_MISSING}


def test_older_snapshot_is_ignored():
    state = GateState()
    assert state.apply_snapshot(make_snapshot({}, ts=NOW))
    assert not state.apply_snapshot(make_snapshot({"BTCUSDT": (1.0, 1.0)}, ts=NOW - 1))
    assert state.portfolio is not None and state.portfolio.positions == {}


# -- all reasons, not just the first ----------
def test_every_failing_control_is_reported():
    spec = make_spec(min_confidence=0.9, max_order_quantity=0.001, require_stop_loss=True, denied_symbols=["BTCUSDT"])
    verdict = decide(make_intent(confidence=0.1, quantity=1.0, stop_loss=None), spec)
    assert codes(verdict) == {
        C.SYMBOL_DENIED,
        C.CONFIDENCE_TOO_LOW,
        C.ORDER_QUANTITY_EXCEEDED,
        C.STOP_LOSS_REQUIRED,
    }


# -- leverage ----------
@pytest.mark.parametrize("field", ["recommended_leverage", "leverage"])
def test_leverage_above_the_maximum_is_rejected_not_clamped(field):
    spec = make_spec(max_leverage=10)
    assert decide(make_intent(**{field: 10}), spec).promote
    verdict = decide(make_intent(**{field: 11}), spec)
    assert codes(verdict) == {C.LEVERAGE_EXCEEDED}
    assert (verdict.reasons[0].observed, verdict.reasons[0].limit) == (11, 10)


def test_leverage_takes_the_lowest_scope_maximum_and_the_higher_requested_field():
    spec = make_spec(max_leverage=20, strategies={"momentum_1": {"max_leverage": 5}}, symbols={"BTCUSDT": {}})
    assert codes(decide(make_intent(recommended_leverage=6), spec)) == {C.LEVERAGE_EXCEEDED}
    assert codes(decide(make_intent(recommended_leverage=2, leverage=8), spec)) == {C.LEVERAGE_EXCEEDED}
    assert decide(make_intent(strategy_id="other", recommended_leverage=20), spec).promote


def test_leverage_without_a_limit_or_without_a_request_passes():
    assert decide(make_intent(recommended_leverage=125), make_spec()).promote
    assert decide(make_intent(), make_spec(max_leverage=1)).promote  # the engine's configured leverage applies


def test_leverage_is_checked_on_reducing_orders_but_not_on_close():
    state = GateState()
    state.apply_snapshot(make_snapshot({"BTCUSDT": (1.0, 50_000.0)}))
    spec = make_spec(max_leverage=3)
    # A leverage change on a reducing sell re-levers the rest of the position, so it is checked too.
    assert codes(decide(make_intent(action="sell", quantity=0.5, leverage=5), spec, state)) == {C.LEVERAGE_EXCEEDED}
    assert decide(make_intent(action="close", stop_loss=None, leverage=5), spec, state).promote


def test_leverage_must_be_a_whole_number_of_at_least_one():
    from pydantic import ValidationError

    for bad in (0, 2.5, -3):
        with pytest.raises(ValidationError):
            make_intent(recommended_leverage=bad)


# -- take profit ----------
@pytest.mark.parametrize(
    ("action", "take_profit", "stop_loss", "ok"),
    [
        ("buy", 52_000.0, 49_000.0, True),
        ("buy", 50_000.0, 49_000.0, False),  # at the entry: would fill at once
        ("buy", 48_000.0, 49_000.0, False),
        ("sell", 48_000.0, 51_000.0, True),
        ("sell", 52_000.0, 51_000.0, False),
    ],
)
def test_take_profit_must_be_on_the_profitable_side_of_the_entry(action, take_profit, stop_loss, ok):
    verdict = decide(make_intent(action=action, take_profit=take_profit, stop_loss=stop_loss), make_spec())
    assert verdict.promote is ok
    if not ok:
        assert codes(verdict) == {C.TAKE_PROFIT_INVALID}
        assert verdict.reasons[0].limit == 50_000.0


def test_take_profit_uses_the_limit_price_as_entry_for_priced_orders():
    limit_buy = make_intent(order_type="limit", price=49_500.0, current_price=50_000.0, take_profit=49_800.0)
    assert decide(limit_buy, make_spec()).promote  # above the 49,500 limit price, below the market
    assert C.TAKE_PROFIT_INVALID in codes(decide(limit_buy.model_copy(update={"take_profit": 49_400.0}), make_spec()))


def test_take_profit_pct_of_zero_is_invalid():
    assert codes(decide(make_intent(take_profit_pct=0.0), make_spec())) == {C.TAKE_PROFIT_INVALID}
    assert decide(make_intent(take_profit_pct=0.04), make_spec()).promote


def test_wrong_side_take_profit_and_stop_are_both_reported():
    verdict = decide(make_intent(take_profit=40_000.0, stop_loss=60_000.0), make_spec())
    assert codes(verdict) == {C.TAKE_PROFIT_INVALID, C.STOP_LOSS_INVALID}
