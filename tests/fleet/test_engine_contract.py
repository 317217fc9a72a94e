"""Every signal the gate promotes, from the shapes today's fleet really publishes, read by the trade engine's own
model the way its consumer reads it (`Signal(**json.loads(msg.data))`), on a real gate, NATS and Redis."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cio_kernel.contracts.intent import Intent
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.fleet.tradeengine_signal import Signal as EngineSignal
from tests.integration.helpers import activate, audit_events, collect, request, wait_for_policy

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _ta_bot(now: datetime) -> bytes:
    """The TA bot's `json.dumps(Signal.to_dict())`: nulls kept, naive ISO time, exponent floats, its id in
    `intent_id`, trace context in the body (ta_bot/services/publisher.py)."""
    return (
        '{"strategy_id": "Volume Surge Breakout", "symbol": "BTCUSDT", "action": "buy", "confidence": 0.72, '
        '"current_price": 9.7e4, "price": 9.7e4, "strategy_mode": "deterministic", "strength": "medium", '
        '"quantity": 0.0, "source": "ta_bot", "strategy": "Volume Surge Breakout", "metadata": {}, '
        '"timeframe": "15m", "order_type": "market", "time_in_force": "GTC", "position_size_pct": null, '
        '"stop_loss": 95060.0, "stop_loss_pct": null, "take_profit": 1.0088e5, "take_profit_pct": null, '
        f'"timestamp": "{now.replace(tzinfo=None).isoformat()}", "signal_id": null, "intent_id": "ta-81d2", '
        f'"_otel_trace_headers": {{"traceparent": "{TRACEPARENT}"}}}}'
    ).encode()


def _realtime(now: datetime) -> bytes:
    """The realtime strategies' adapter (strategies/adapters/signal_adapter.py `transform_signal_for_tradeengine`):
    `id` = `signal_id`, legacy `signal_type` and `confidence_score`, stops from percentages, body trace context."""
    signal_id = str(uuid.uuid4())
    price = 3_412.57
    body = {
        "id": signal_id,
        "signal_id": signal_id,
        "strategy_id": "Iceberg Order Detector",
        "strategy_mode": "deterministic",
        "symbol": "ETHUSDT",
        "action": "sell",
        "confidence": 0.81,
        "strength": "strong",
        "price": price,
        "quantity": round(50 / price, 2),
        "current_price": price,
        "target_price": price,
        "source": "realtime-strategies",
        "strategy": "Iceberg Order Detector",
        "metadata": {"detector": "iceberg", "levels": [3412.5, 3413.0]},
        "timeframe": "tick",
        "order_type": "market",
        "time_in_force": "GTC",
        "signal_type": "sell",
        "confidence_score": 0.81,
        "stop_loss": price * (1.0 + 0.02),
        "stop_loss_pct": 0.02,
        "take_profit": price * (1.0 - 0.04),
        "take_profit_pct": 0.04,
        "timestamp": now.isoformat(),
        "_otel_trace_context": {"traceparent": TRACEPARENT},
    }
    return json.dumps(body).encode()


@pytest.fixture
async def fleet_gate(gate, redis, nc):
    spec = make_spec(max_order_notional_usd=25_000.0, engine_sized_notional_usd=1_000.0, require_stop_loss=True)
    await activate(redis, nc, spec, 1)
    await wait_for_policy(gate, 1)
    return gate


async def test_every_promoted_fleet_signal_is_a_valid_engine_signal_with_its_decision_id_on_top(fleet_gate, nc):
    signals = await collect(nc, "signals.trading.*")
    now = datetime.now(UTC)
    # The two real producers fire and forget on the fleet's subject; our client asks, with a producer's own
    # `decision_id` that must not survive.
    await nc.publish("cio.intent.trading.Volume_Surge_Breakout", _ta_bot(now))
    await nc.publish("cio.intent.trading.Iceberg_Order_Detector", _realtime(now))
    asked = live_intent_body(signal_id="client-1", decision_id="forged-by-producer", leverage=3)
    envelope, _ = await request(nc, asked, subject="cio.intent.trading.momentum-1")
    assert envelope.data.decision == "APPROVED"

    messages = await signals.wait_for(3, timeout_s=10)
    records = {r.event.decision_id: r.event for r in await audit_events(nc, expected=3)}
    assert len(messages) == 3 and len(records) == 3
    by_strategy: dict[str, EngineSignal] = {}
    for msg in messages:
        signal = EngineSignal(**json.loads(msg.data))  # exactly as the engine's consumer builds it
        raw = orjson.loads(msg.data)
        assert signal.decision_id is not None and signal.decision_id == raw["meta"]["cio"]["decision_id"]
        assert len(signal.decision_id) == 32 and int(signal.decision_id, 16) >= 0
        event = records[signal.decision_id]  # the decision the engine's orders will point at
        assert event.decision == "APPROVED" and event.strategy_id == signal.strategy_id
        assert signal.source == "petrosa-cio" and raw["meta"]["cio"]["original_source"] == event.intent["source"]
        assert signal.timestamp.tzinfo is not None
        by_strategy[signal.strategy_id] = signal

    ta = by_strategy["Volume Surge Breakout"]
    assert ta.quantity == 0.0 and ta.position_size_pct is None  # the engine sizes it
    assert ta.take_profit == 100_880.0 and ta.timestamp.replace(microsecond=0) == now.replace(microsecond=0)
    rt = by_strategy["Iceberg Order Detector"]
    assert rt.action == "sell" and rt.signal_type == "sell" and rt.stop_loss_pct == 0.02
    assert rt.metadata == {"detector": "iceberg", "levels": [3412.5, 3413.0]}
    ours = by_strategy["momentum-1"]
    assert ours.decision_id == envelope.data.decision_id  # the producer's own value was replaced


async def test_the_realtime_strategies_order_path_is_refused_with_field_errors(fleet_gate, nc):
    """`TradeOrderPublisher.publish_order(_sync)` (strategies/core/publisher.py) sends `TradeOrder.to_dict()`:
    no `strategy_id`, `action`, `confidence`, `current_price`, `source` or `strategy`. Nothing in the fleet calls
    it; should anything start to, it is `VAL_ERR` with every missing field named (docs/contracts.md)."""
    order = {
        "order_id": "ord-1",
        "symbol": "BTCUSDT",
        "side": "buy",
        "order_type": "market",
        "quantity": 0.001,
        "time_in_force": "GTC",
        "position_type": "LONG",
        "leverage": 1,
        "reduce_only": False,
        "close_on_trigger": False,
        "strategy_name": "Iceberg Order Detector",
        "signal_id": "sig-9",
        "confidence_score": 0.8,
        "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {},
    }
    envelope, _ = await request(nc, order, subject="cio.intent.trading.Iceberg_Order_Detector")
    assert envelope.data.decision == "REJECTED" and envelope.error is not None
    assert envelope.error.code == C.VAL_ERR
    named = {e.field for e in envelope.data.field_errors or []}
    assert {"strategy_id", "action", "confidence", "current_price", "source", "strategy"} <= named, named


def _required(model: Any) -> set[str]:
    return {name for name, field in model.model_fields.items() if field.is_required()}


def test_the_intent_requires_what_the_engine_requires_and_knows_every_engine_field():
    assert _required(EngineSignal) == _required(Intent)
    # Every engine field is a field of the intent (typed and checked by the gate), none is only passed through;
    # `decision_id` is the gate's to set, never read from the producer.
    assert set(EngineSignal.model_fields) - set(Intent.model_fields) == {"decision_id"}


# Values at the edge of what a producer might send: outside the engine's range or spelling where it has one.
PROBES: list[tuple[str, Any]] = [
    ("confidence", 1.0000001),
    ("confidence", -0.0),
    ("position_size_pct", 1.5),
    ("stop_loss_pct", -0.1),
    ("take_profit_pct", 2.0),
    ("model_confidence", 1.2),
    ("strength", "EXTREME"),
    ("order_type", "MARKET"),
    ("time_in_force", "gtc"),
    ("action", "BUY"),
    ("conditional_direction", "up"),
    ("strategy_mode", "ml"),
    ("metadata", None),
    ("meta", None),
    ("timeframe", None),
    ("price", "97000"),
    ("quantity", float("1e-9")),
    ("conditional_timeout", 1.5),
]


@pytest.mark.parametrize(("field", "value"), PROBES)
def test_a_value_the_intent_accepts_is_one_the_engine_accepts(field, value):
    """The intent's bounds are at least as tight as the engine's: a value the gate lets through can never be the
    one the engine then refuses, which would drop a promoted signal silently."""
    try:
        intent = Intent.model_validate({**live_intent_body(), field: value})
    except ValidationError:
        return  # the gate refuses it first (VAL_ERR): the producer hears why
    signal = EngineSignal(**{**intent.model_dump(mode="json", exclude_none=True), "source": "petrosa-cio"})
    assert getattr(signal, field) is not None or value is None
