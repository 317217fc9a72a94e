"""The gate on real NATS (JetStream) and Redis: replies, promotion, audit, trace context, subjects."""

from datetime import UTC, datetime

import orjson
import pytest

from cio_kernel.contracts.signal import PromotedSignal
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, request, wait_for_policy, wait_until

INCOMING_TRACE = "0af7651916cd43dd8448eb211c80319c"
INCOMING_TP = f"00-{INCOMING_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
async def with_policy(gate, redis, nc):
    await activate(redis, nc, make_spec(min_confidence=0.5, max_order_notional_usd=10_000.0), 1)
    await wait_for_policy(gate, 1)
    return gate


async def test_approved_intent_is_promoted_with_the_three_changes(with_policy, nc):
    signals = await collect(nc, "signals.trading.*")
    body = live_intent_body(
        strategy_id="Iceberg Order Detector",
        signal_id="abc-1",
        timestamp="2026-11-24T10:00:00.123+00:00",
        confidence_score=0.77,
        _otel_trace_context={"traceparent": INCOMING_TP},
    )
    envelope, reply = await request(nc, {**body, "timestamp": datetime.now().astimezone().isoformat()})
    assert envelope.success is True and envelope.error is None
    data = envelope.data
    assert data.decision == "APPROVED"
    assert data.intent_id == "abc-1"
    assert data.policy_version == 1
    assert data.reasons == []
    assert data.signal_subject == "signals.trading.Iceberg_Order_Detector"
    assert envelope.trace_id == INCOMING_TRACE
    assert reply.headers["traceparent"].split("-")[1] == INCOMING_TRACE

    [msg] = await signals.wait_for(1)
    assert msg.subject == "signals.trading.Iceberg_Order_Detector"
    signal = PromotedSignal.model_validate_json(msg.data)
    raw = orjson.loads(msg.data)
    assert signal.strategy_id == "Iceberg Order Detector"  # payload keeps the original id
    assert signal.source == "petrosa-cio"
    assert raw["meta"]["cio"]["decision_id"] == data.decision_id
    assert raw["meta"]["cio"]["policy_version"] == 1
    assert raw["meta"]["cio"]["original_source"] == "realtime-strategies"
    assert raw["confidence_score"] == 0.77  # unknown fields pass through
    assert isinstance(raw["timestamp"], str)
    for field in ("action", "quantity", "price", "current_price", "stop_loss", "symbol", "confidence"):
        assert raw[field] == body[field]
    assert msg.headers["traceparent"].split("-")[1] == INCOMING_TRACE
    assert raw["_otel_trace_context"]["traceparent"] == msg.headers["traceparent"]
    assert "strength" not in raw  # nulls are left out so the trade engine applies its defaults

    [record] = await audit_events(nc, expected=1)
    event = record.event
    assert record.msg_id == event.decision_id == data.decision_id
    assert record.subject == "cio.audit.decision.approved"
    assert event.decision == "APPROVED"
    assert event.trace_id == INCOMING_TRACE
    assert event.policy_version == 1 and event.policy_checksum.startswith("sha256:")
    assert event.strategy_id == "Iceberg Order Detector" and event.symbol == "BTCUSDT"
    assert event.intent["signal_id"] == "abc-1"
    assert event.latency_us > 0


async def test_promoted_timestamp_is_the_producers_time_not_now(with_policy, nc):
    signals = await collect(nc, "signals.trading.>")
    produced = datetime.now().astimezone()
    await request(nc, live_intent_body(timestamp=produced.timestamp() * 1000))  # milliseconds, as some bots send
    [msg] = await signals.wait_for(1)
    sent = datetime.fromisoformat(orjson.loads(msg.data)["timestamp"])
    assert abs((sent - produced).total_seconds()) < 0.002


async def test_rejection_carries_every_reason_and_nothing_is_promoted(with_policy, nc):
    signals = await collect(nc, "signals.trading.>")
    envelope, _ = await request(nc, live_intent_body(confidence=0.1, quantity=1.0))
    assert envelope.success is False
    assert envelope.data.decision == "REJECTED"
    assert {r.code for r in envelope.data.reasons} == {C.CONFIDENCE_TOO_LOW, C.ORDER_NOTIONAL_EXCEEDED}
    assert envelope.error.code == envelope.data.reasons[0].code
    assert "confidence" in envelope.error.message and "notional" in envelope.error.message
    assert envelope.data.signal_subject is None
    [record] = await audit_events(nc, expected=1)
    event = record.event
    assert record.subject == "cio.audit.decision.rejected"
    assert event.decision == "REJECTED"
    assert {r.code for r in event.reasons} == {C.CONFIDENCE_TOO_LOW, C.ORDER_NOTIONAL_EXCEEDED}
    assert signals.messages == []


async def test_no_policy_means_retry_safe_then_activation_is_picked_up(gate, redis, nc):
    envelope, _ = await request(nc, live_intent_body())
    assert envelope.data.decision == "RETRY_SAFE" and envelope.success is False
    assert envelope.error.code == C.NO_POLICY
    await activate(redis, nc, make_spec(), 7)
    await wait_for_policy(gate, 7)
    envelope, _ = await request(nc, live_intent_body(signal_id="after"))
    assert envelope.data.decision == "APPROVED" and envelope.data.policy_version == 7
    events = await audit_events(nc, expected=2)
    assert [r.event.decision for r in events] == ["RETRY_SAFE", "APPROVED"]
    assert [r.subject for r in events] == ["cio.audit.decision.retry_safe", "cio.audit.decision.approved"]
    assert events[0].event.policy_version is None and events[1].event.policy_version == 7


async def test_plain_publish_is_decided_audited_and_promoted(with_policy, nc):
    signals = await collect(nc, "signals.trading.>")
    await nc.publish("intent.trading.BTCUSDT", orjson.dumps(live_intent_body(signal_id="plain")))
    [msg] = await signals.wait_for(1)
    assert orjson.loads(msg.data)["signal_id"] == "plain"
    [record] = await audit_events(nc, expected=1)
    event = record.event
    assert event.decision == "APPROVED" and event.intent_id == "plain"


@pytest.mark.parametrize(
    "subject",
    [
        "cio.intent.trading.momentum-1",
        "cio.intent.trading",  # the TA bot's batch publisher and fleet simulators use the bare subject
        "cio.nurse.audit",
        "intent.trading.ETHUSDT",
    ],
)
async def test_every_intake_subject_is_served(with_policy, nc, subject):
    symbol = subject.rpartition(".")[2] if subject.startswith("intent.trading.") else "BTCUSDT"
    envelope, _ = await request(nc, live_intent_body(symbol=symbol), subject=subject)
    assert envelope.data.decision == "APPROVED"
    [record] = await audit_events(nc, expected=1)
    event = record.event
    assert event.subject == subject


async def test_hold_is_acknowledged_and_audited_but_not_promoted(with_policy, nc):
    signals = await collect(nc, "signals.trading.>")
    envelope, _ = await request(nc, live_intent_body(action="hold"))
    assert envelope.data.decision == "REJECTED"
    assert [r.code for r in envelope.data.reasons] == [C.HOLD_NOT_PROMOTED]
    await audit_events(nc, expected=1)
    assert signals.messages == []


@pytest.mark.parametrize(
    ("headers", "body_field", "expected"),
    [
        ({"traceparent": INCOMING_TP}, None, INCOMING_TRACE),
        (None, "_otel_trace_context", INCOMING_TRACE),
        (None, "_otel_trace_headers", INCOMING_TRACE),
        ({"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}, "_otel_trace_context", "1" * 32),  # the header wins
    ],
)
async def test_trace_context_is_continued(with_policy, nc, headers, body_field, expected):
    body = live_intent_body()
    if body_field:
        body[body_field] = {"traceparent": INCOMING_TP}
    envelope, _ = await request(nc, body, headers=headers)
    assert envelope.trace_id == expected
    [record] = await audit_events(nc, expected=1)
    event = record.event
    assert event.trace_id == expected
    assert event.span_id != INCOMING_TP.split("-")[2]  # the gate's own span, child of the incoming one


async def test_without_trace_context_the_gate_starts_a_trace(with_policy, nc):
    first, _ = await request(nc, live_intent_body(signal_id="t1"))
    second, _ = await request(nc, live_intent_body(signal_id="t2"))
    assert len(first.trace_id) == 32 and int(first.trace_id, 16) != 0
    assert first.trace_id != second.trace_id


# What the TA bot publishes, byte for byte in its shape: Python's json.dumps of `Signal.to_dict()` (nulls kept,
# naive timestamp, exponent floats), trace context in the body, plain publish on cio.intent.trading.<id>.
TA_BOT_PAYLOAD = (
    '{{"strategy_id": "Volume Surge Breakout", "symbol": "BTCUSDT", "action": "buy", "confidence": 0.72, '
    '"current_price": 9.7e4, "price": 9.7e4, "strategy_mode": "deterministic", "strength": "medium", '
    '"quantity": 0.0, "source": "ta_bot", "strategy": "Volume Surge Breakout", "metadata": {{}}, '
    '"timeframe": "15m", "order_type": "market", "time_in_force": "GTC", "position_size_pct": null, '
    '"stop_loss": 95060.0, "stop_loss_pct": null, "take_profit": 1.0088e5, "take_profit_pct": null, '
    '"timestamp": "{ts}", "signal_id": null, "_otel_trace_headers": {{"traceparent": "{tp}"}}}}'
)


async def test_a_ta_bot_intent_is_approved_and_promoted_as_published(gate, redis, nc):
    spec = make_spec(max_order_notional_usd=25_000.0, engine_sized_notional_usd=1_000.0, require_stop_loss=True)
    await activate(redis, nc, spec, 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.*")
    naive_utc = datetime.now(UTC).replace(tzinfo=None).isoformat()
    payload = TA_BOT_PAYLOAD.format(ts=naive_utc, tp=INCOMING_TP).encode()
    await nc.publish("cio.intent.trading.Volume Surge Breakout".replace(" ", "_"), payload)
    [msg] = await signals.wait_for(1)
    assert msg.subject == "signals.trading.Volume_Surge_Breakout"
    signal = orjson.loads(msg.data)
    assert signal["strategy_id"] == "Volume Surge Breakout" and signal["source"] == "petrosa-cio"
    assert signal["quantity"] == 0.0 and "position_size_pct" not in signal  # sizing left to the engine
    assert signal["take_profit"] == 100_880.0
    assert signal["timestamp"] == naive_utc + "+00:00"
    assert signal["_otel_trace_context"]["traceparent"].split("-")[1] == INCOMING_TRACE
    [record] = await audit_events(nc, expected=1)
    assert record.event.decision == "APPROVED" and record.event.subject == "cio.intent.trading.Volume_Surge_Breakout"


async def test_the_ta_bots_intent_id_is_its_id_for_duplicates_and_the_audit_trail(gate, redis, nc):
    """The TA bot sends `signal_id: null` and its id in `intent_id`: the same intent published twice is promoted
    once, and both records carry the producer's id (found by id in the audit trail)."""
    await activate(redis, nc, make_spec(engine_sized_notional_usd=1_000.0), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.*")
    naive_utc = datetime.now(UTC).replace(tzinfo=None).isoformat()
    body = orjson.loads(TA_BOT_PAYLOAD.format(ts=naive_utc, tp=INCOMING_TP))
    payload = orjson.dumps({**body, "intent_id": "ta-7f3c2a"})
    for _ in range(2):
        await nc.publish("cio.intent.trading.Volume_Surge_Breakout", payload)  # fire and forget, as the bot does
    first, second = await audit_events(nc, expected=2)
    assert (first.event.decision, second.event.decision) == ("APPROVED", "REJECTED")
    assert [r.code for r in second.event.reasons] == [C.DUPLICATE_INTENT]
    assert first.event.intent_id == second.event.intent_id == "ta-7f3c2a"
    assert len(await signals.wait_for(1)) == 1
    # The Signal contract's own field still comes first; a malformed fleet id is refused, not ignored.
    envelope, _ = await request(nc, {**body, "timestamp": naive_utc, "signal_id": "s-1", "intent_id": "ta-x"})
    assert envelope.data.intent_id == "s-1"
    envelope, _ = await request(nc, {**body, "timestamp": naive_utc, "intent_id": 42})
    assert envelope.data.decision == "REJECTED" and [r.code for r in envelope.data.reasons] == [C.VAL_ERR]


async def test_the_audit_stream_is_recreated_when_jetstream_loses_it(gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    await request(nc, live_intent_body(signal_id="before"))
    await audit_events(nc, expected=1)
    # What NATS restarting on empty storage leaves behind: no CIO_AUDIT. Publishing then gets "no responders".
    await nc.jetstream().delete_stream("CIO_AUDIT")
    envelope, _ = await request(nc, live_intent_body(signal_id="after"))
    assert envelope.data.decision == "APPROVED"
    await wait_until(lambda: gate.heartbeat().counters.audit_pending == 0, timeout_s=10, what="the event stored")
    [record] = await audit_events(nc, expected=1)  # the gate recreated the stream and published into it
    assert record.event.intent_id == "after"
