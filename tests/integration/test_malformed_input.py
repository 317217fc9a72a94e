"""Malformed intents over real NATS: a VAL_ERR envelope with field errors, an audit record, no promotion."""

import orjson
import pytest

from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, request, wait_for_policy, wait_until


@pytest.fixture
async def with_policy(gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    return gate


def _body(**overrides):
    return orjson.dumps(live_intent_body(**overrides))


CASES = {
    "not json": (b"{this is not json", {"(body)"}),
    "json but not an object": (b"[1, 2, 3]", {"(body)"}),
    "empty": (b"", {"(body)"}),
    "wrong types": (_body(confidence="very", quantity=[1]), {"confidence", "quantity"}),
    "missing fields": (
        orjson.dumps({"symbol": "BTCUSDT", "action": "buy"}),
        {"strategy_id", "confidence", "price", "quantity", "current_price", "source", "strategy"},
    ),
    "NaN literal": (_body().replace(b'"confidence":0.8', b'"confidence":NaN'), {"(body)"}),
    "NaN as string": (_body(price="NaN"), {"price"}),
    "Infinity as string": (_body(quantity="Infinity"), {"quantity"}),
    "negative quantity": (_body(quantity=-1.0), {"quantity"}),
    "absurd quantity": (_body(quantity=1e308), {"quantity"}),
    "absurd price": (_body(price=1e300, current_price=1e300), {"price", "current_price"}),
    "confidence above one": (_body(confidence=1.5), {"confidence"}),
    "unknown action": (_body(action="yolo"), {"action"}),
    "unparseable timestamp": (_body(timestamp="yesterday-ish"), {"timestamp"}),
    "bad symbol": (_body(symbol="BTC USDT; DROP"), {"symbol"}),
    "one megabyte": (b'{"pad":"' + b"x" * 1_000_000 + b'"}', {"(body)"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_malformed_intent_gets_val_err_and_is_audited(with_policy, nc, case):
    payload, fields = CASES[case]
    signals = await collect(nc, "signals.trading.>")
    envelope, _ = await request(nc, payload)
    assert envelope.success is False
    assert envelope.error.code == C.VAL_ERR
    assert envelope.data.decision == "REJECTED"
    assert [r.code for r in envelope.data.reasons] == [C.VAL_ERR]
    reported = {e.field for e in envelope.data.field_errors}
    assert fields <= reported, reported
    [record] = await audit_events(nc, expected=1)
    assert record.event.decision == "REJECTED"
    assert record.event.field_errors == envelope.data.field_errors
    assert record.event.intent is None and record.event.raw_intent is not None
    assert len(record.event.raw_intent) <= 4096
    assert signals.messages == []


async def test_gate_keeps_serving_after_a_burst_of_garbage(with_policy, nc):
    for payload, _ in CASES.values():
        await nc.publish("intent.trading.BTCUSDT", payload)
    envelope, _ = await request(nc, live_intent_body(signal_id="still-alive"))
    assert envelope.data.decision == "APPROVED"
    # Nobody waits for the plain publishes: they are decided from the intake stream once it holds them (hold).
    await wait_until(lambda: with_policy.counters.invalid == len(CASES), what="the garbage decided from the stream")
    assert with_policy.counters.received == len(CASES) + 1
