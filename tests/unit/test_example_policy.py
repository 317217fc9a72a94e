"""The worked example in docs/policy.md, decided by the real example policy: the docs cannot drift."""

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cio_kernel.contracts.intent import Intent
from cio_kernel.policy.spec import PolicySpec
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from tests.factories import NOW, compile_spec, make_intent, make_snapshot

ROOT = Path(__file__).resolve().parents[2]
POLICY = compile_spec(PolicySpec.model_validate_json((ROOT / "deploy/policies/example.json").read_text()))
BTC, ETH = 97_000.0, 3_400.0


def _state(**positions):
    state = GateState()
    snapshot = make_snapshot(
        positions, equity=250_000.0, drawdown=0.03, daily_pnl=-1_200.0, strategy_pnl={"llm-swing": -150.0}
    )
    state.apply_snapshot(snapshot)
    return state


def ta_bot_intent(**overrides):
    """What the TA bot publishes (its `Signal.to_dict()`): quantity 0.0 and null sizing fields (the trade
    engine sizes the order), a 2 % stop and 4 % take-profit it adds itself, a naive ISO timestamp, trace
    context in the body, and JSON numbers as Python's json module writes them."""
    body = orjson.loads(
        b'{"strategy_id": "momentum_pulse", "symbol": "BTCUSDT", "action": "buy", "confidence": 0.72,'
        b' "current_price": 9.7e4, "price": 9.7e4, "strategy_mode": "deterministic", "strength": "medium",'
        b' "quantity": 0.0, "source": "ta_bot", "strategy": "momentum_pulse", "metadata": {}, "timeframe": "15m",'
        b' "order_type": "market", "time_in_force": "GTC", "position_size_pct": null, "stop_loss": 95060.0,'
        b' "stop_loss_pct": null, "take_profit": 100880.0, "take_profit_pct": null, "signal_id": null,'
        b' "_otel_trace_headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}'
    )
    body["timestamp"] = datetime.fromtimestamp(NOW, UTC).replace(tzinfo=None).isoformat()
    body.update(overrides)
    return Intent.model_validate(body)


def _btc(**kw):
    base = {"price": BTC, "current_price": BTC, "stop_loss": BTC * 0.98}
    return make_intent(**{**base, **kw})


CASES = [
    ("small BTC buy", _btc(quantity=0.02), {}, set()),
    ("TA bot buy, sized by the trade engine", ta_bot_intent(), {"BTCUSDT": (0.4, 38_800.0)}, set()),
    (
        "TA bot sell, sized by the trade engine",
        ta_bot_intent(action="sell", stop_loss=98_940.0, take_profit=93_120.0),
        {},
        set(),
    ),
    ("TA bot take-profit on the wrong side", ta_bot_intent(take_profit=93_120.0), {}, {"TAKE_PROFIT_INVALID"}),
    ("leverage above the global 10x", _btc(quantity=0.02, recommended_leverage=20), {}, {"LEVERAGE_EXCEEDED"}),
    (
        "1 BTC buy",
        _btc(quantity=1.0),
        {"BTCUSDT": (0.4, 38_800.0)},
        {"ORDER_QUANTITY_EXCEEDED", "ORDER_NOTIONAL_EXCEEDED"},
    ),
    (
        "llm-swing low confidence",
        make_intent(
            strategy_id="llm-swing",
            symbol="ETHUSDT",
            price=ETH,
            current_price=ETH,
            quantity=0.5,
            confidence=0.6,
            stop_loss=ETH * 0.98,
        ),
        {},
        {"CONFIDENCE_TOO_LOW"},
    ),
    (
        "llm-swing limit outside the collar",
        _btc(strategy_id="llm-swing", order_type="limit", price=99_910.0, quantity=0.01, confidence=0.9),
        {},
        {"PRICE_COLLAR_BREACHED"},
    ),
    (
        "DOGE buy",
        make_intent(symbol="DOGEUSDT", price=0.4, current_price=0.4, quantity=1000, stop_loss=0.39),
        {"DOGEUSDT": (20_000.0, 8_000.0)},
        {"TRADING_REDUCING"},
    ),
    (
        "DOGE partial sell",
        make_intent(symbol="DOGEUSDT", action="sell", price=0.4, current_price=0.4, quantity=10_000, stop_loss=None),
        {"DOGEUSDT": (20_000.0, 8_000.0)},
        set(),
    ),
    (
        "close ETH",
        make_intent(symbol="ETHUSDT", action="close", quantity=0.0, price=ETH, current_price=ETH, stop_loss=None),
        {"ETHUSDT": (5.0, 17_000.0)},
        set(),
    ),
    (
        "denied symbol",
        make_intent(
            strategy_id="Iceberg Order Detector",
            symbol="LUNAUSDT",
            price=0.0001,
            current_price=0.0001,
            quantity=1000,
            stop_loss=0.000099,
        ),
        {},
        {"SYMBOL_DENIED"},
    ),
]


@pytest.mark.parametrize(("name", "intent", "positions", "expected"), CASES, ids=[c[0] for c in CASES])
def test_worked_example(name, intent, positions, expected):
    verdict = evaluate(intent, POLICY, _state(**positions), NOW)
    assert {r.code for r in verdict.reasons} == expected
    assert verdict.promote == (not expected)


def test_halted_globally_admits_only_close():
    raw = (
        (ROOT / "deploy/policies/example.json")
        .read_text()
        .replace('"trading_state": "active"', '"trading_state": "halted"')
    )
    policy = compile_spec(PolicySpec.model_validate_json(raw))
    assert policy.global_rules.trading_state == "halted"
    assert [r.code for r in evaluate(_btc(quantity=0.02), policy, _state(), NOW).reasons] == ["TRADING_HALTED"]
    close = make_intent(action="close", quantity=0.0, stop_loss=None)
    assert evaluate(close, policy, _state(), NOW).promote


def test_a_ta_bot_intent_is_judged_at_the_engine_sized_notional_the_policy_states():
    verdict = evaluate(ta_bot_intent(), POLICY, _state(), NOW)
    assert verdict.promote
    assert verdict.notional_usd == POLICY.global_rules.engine_sized_notional_usd == 1_000.0
