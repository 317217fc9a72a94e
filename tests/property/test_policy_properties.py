"""Properties of the decision function over random policies, intents and book states."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cio_kernel.contracts.intent import Intent
from gate.decision.evaluate import evaluate
from gate.decision.latches import trading_day_start
from gate.decision.reducing import is_reducing
from tests.factories import NOW, compile_spec
from tests.property.strategies import (
    PROPERTY_SETTINGS,
    intents,
    policy_dicts,
    snapshots,
    spec_of,
    state_after,
    tightened,
)


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policy_dicts(),
    intent=intents(),
    snapshot=snapshots(),
    history=st.lists(intents(), max_size=3),
)
def test_tightening_a_policy_never_turns_a_rejection_into_an_approval(data, policy, intent, snapshot, history):
    stricter = data.draw(tightened(policy))
    state = state_after(snapshot, history)
    loose = evaluate(intent, compile_spec(spec_of(policy)), state, NOW)
    tight = evaluate(intent, compile_spec(spec_of(stricter)), state, NOW)
    if tight.promote:
        assert loose.promote, (loose.reasons, stricter)


def _scopes(policy: dict[str, Any], intent: Intent) -> list[dict[str, Any]]:
    return [
        s
        for s in (policy["global"], policy["strategies"].get(intent.strategy_id), policy["symbols"].get(intent.symbol))
        if s
    ]


@PROPERTY_SETTINGS
@given(policy=policy_dicts(), intent=intents(), snapshot=snapshots(), history=st.lists(intents(), max_size=3))
def test_an_approved_intent_violates_no_limit(policy, intent, snapshot, history):
    """An independent oracle, written from the policy document rather than from `resolve_limits`."""
    state = state_after(snapshot, history)
    verdict = evaluate(intent, compile_spec(spec_of(policy)), state, NOW)
    if not verdict.promote:
        assert verdict.reasons, "a rejection always carries at least one reason"
        return
    scopes = _scopes(policy, intent)
    g = policy["global"]
    states = {s.get("trading_state") for s in scopes}
    assert intent.action != "hold"
    if "halted" in states:
        assert intent.action == "close"
    for scope in scopes:
        for field, value in (
            ("allowed_actions", intent.action),
            ("allowed_strategy_modes", intent.strategy_mode or "deterministic"),
            ("allowed_order_types", intent.order_type or "market"),
        ):
            if scope.get(field) is not None:
                assert value in scope[field]
        if scope.get("min_confidence") is not None:
            assert intent.confidence >= scope["min_confidence"]
        if scope.get("denied_symbols"):
            assert intent.symbol not in scope["denied_symbols"]
        if intent.action in ("buy", "sell"):
            if scope.get("max_order_quantity") is not None:
                assert intent.quantity <= scope["max_order_quantity"]
            if scope.get("max_order_notional_usd") is not None:
                assert verdict.notional_usd is not None
                assert verdict.notional_usd <= scope["max_order_notional_usd"]
            if scope.get("max_position_size_pct") is not None and intent.position_size_pct is not None:
                assert intent.position_size_pct <= scope["max_position_size_pct"]
            if scope.get("max_leverage") is not None:
                for requested in (intent.leverage, intent.recommended_leverage):
                    assert requested is None or requested <= scope["max_leverage"]
            if scope.get("price_collar_bps") is not None and (intent.order_type or "market") != "market":
                assert (
                    abs(intent.price - intent.current_price) / intent.current_price * 1e4 <= scope["price_collar_bps"]
                )
    if intent.action in ("buy", "sell"):
        assert intent.current_price > 0
    fresh = snapshot is not None and NOW - snapshot.ts.timestamp() <= g["max_snapshot_age_s"]
    held = (snapshot.positions.get(intent.symbol) if fresh else None) or None
    opening_order = intent.action in ("buy", "sell") and not is_reducing(intent, held.quantity if held else None)
    if opening_order and intent.take_profit is not None:
        entry = intent.price if (intent.order_type or "market") != "market" else intent.current_price
        assert intent.take_profit > entry if intent.action == "buy" else intent.take_profit < entry
    if opening_order and g["max_daily_loss_usd"] is not None:
        day_start = trading_day_start(NOW, g["trading_day_start_utc"])
        assert snapshot is not None and snapshot.pnl_since is not None and snapshot.daily_pnl_usd is not None
        assert abs(snapshot.pnl_since.timestamp() - day_start) <= 1.0
        assert -snapshot.daily_pnl_usd < g["max_daily_loss_usd"]
    strategy_rules = policy["strategies"].get(intent.strategy_id) or {}
    if opening_order and strategy_rules.get("max_daily_loss_usd") is not None:
        assert snapshot is not None and intent.strategy_id in snapshot.strategies
        assert -snapshot.strategies[intent.strategy_id].daily_pnl_usd < strategy_rules["max_daily_loss_usd"]
    if opening_order and g["max_drawdown_pct"] is not None:
        assert snapshot is not None and snapshot.drawdown_pct < g["max_drawdown_pct"]
    if g["require_timestamp"]:
        assert intent.timestamp is not None
    if intent.timestamp is not None and g["max_intent_age_s"] is not None:
        assert NOW - intent.timestamp.timestamp() <= g["max_intent_age_s"]
    if intent.intent_id is not None:
        assert not any(h.strategy_id == intent.strategy_id and h.intent_id == intent.intent_id for h in history)
    opening = intent.action in ("buy", "sell") and verdict.limits.trading_state.value == "active"
    book_limits = (g["max_total_exposure_usd"], g["max_drawdown_pct"], g["max_daily_loss_usd"], g["max_daily_loss_pct"])
    if opening and any(limit is not None for limit in book_limits):
        assert snapshot is not None and NOW - snapshot.ts.timestamp() <= g["max_snapshot_age_s"]


@PROPERTY_SETTINGS
@given(policy=policy_dicts(), intent=intents(), snapshot=snapshots())
def test_evaluation_is_deterministic_and_does_not_touch_the_state(policy, intent, snapshot):
    state = state_after(snapshot, [])
    compiled = compile_spec(spec_of(policy))
    before = (state.pending_total_usd, state.last_promoted_at(intent.strategy_id, intent.symbol, intent.action))
    first = evaluate(intent, compiled, state, NOW)
    second = evaluate(intent, compiled, state, NOW)
    assert first == second
    assert before == (state.pending_total_usd, state.last_promoted_at(intent.strategy_id, intent.symbol, intent.action))
