"""Under a burst the gate cannot serve within its budget, the intents that waited too long in its queue are
answered RETRY_SAFE (never promoted) instead of being approved late."""

import asyncio

import orjson

from gate.contracts.envelope import DecisionEnvelope
from gate.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, collect, wait_for_policy


async def test_a_burst_beyond_the_budget_is_shed_as_retry_safe(make_gate, redis, nc):
    gate = await make_gate(decision_budget_ms=25.0)
    await activate(redis, nc, make_spec(max_intent_age_s=None), 1)
    await wait_for_policy(gate, 1)
    signals = await collect(nc, "signals.trading.>")
    replies: list[DecisionEnvelope] = []
    done = asyncio.Event()
    total = 2000

    async def on_reply(msg) -> None:
        replies.append(DecisionEnvelope.model_validate_json(msg.data))
        if len(replies) == total:
            done.set()

    inbox = nc.new_inbox()
    await nc.subscribe(f"{inbox}.*", cb=on_reply)
    payloads = [orjson.dumps(live_intent_body(signal_id=f"b{i}", strategy_id=f"s{i % 50}")) for i in range(total)]
    for i, payload in enumerate(payloads):
        await nc.publish("intent.trading.BTCUSDT", payload, reply=f"{inbox}.{i}")
    await nc.flush()
    await asyncio.wait_for(done.wait(), 60)

    decisions = [r.data.decision for r in replies]
    shed = [r for r in replies if r.data.decision == "RETRY_SAFE"]
    assert decisions.count("APPROVED") > 0, "the head of the burst is served"
    assert shed, "2,000 intents at once cannot all be decided within 25 ms"
    assert {r.error.code for r in shed} == {C.DECISION_TIMEOUT}
    assert any("waited longer" in r.error.message for r in shed), "shed because of time spent queued, not deciding"
    await asyncio.sleep(0.3)
    assert len(signals.messages) == decisions.count("APPROVED")  # nothing shed was promoted
    promoted = {orjson.loads(m.data)["signal_id"] for m in signals.messages}
    assert promoted.isdisjoint({r.data.intent_id for r in shed})
