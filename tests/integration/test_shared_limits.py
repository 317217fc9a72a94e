"""Two gates in one queue group share what they promote (`cio.gate.promotion`), so duplicate suppression and
rate limits hold for the group, not per process."""

import time

import orjson

from cio_kernel.nats_flush import flush_ordered
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, collect, request, wait_for_policy, wait_until


async def _two_gates(make_gate, redis, nc, spec):
    first = await make_gate(gate_id="gate-1")
    second = await make_gate(gate_id="gate-2")
    await activate(redis, nc, spec, 1)
    await wait_for_policy(first, 1)
    await wait_for_policy(second, 1)
    return first, second


async def test_a_repeated_signal_id_is_refused_by_every_gate(make_gate, redis, nc):
    first, second = await _two_gates(make_gate, redis, nc, make_spec())
    signals = await collect(nc, "signals.trading.>")
    envelope, _ = await request(nc, live_intent_body(signal_id="once"))
    assert envelope.data.decision == "APPROVED"
    await wait_until(lambda: all(g.state.was_promoted("momentum_1", "once", 0.0) for g in (first, second)))
    # Whichever gate the queue group picks, the retry is a duplicate.
    retries = [await request(nc, live_intent_body(signal_id="once")) for _ in range(20)]
    assert {e.data.decision for e, _ in retries} == {"REJECTED"}
    assert {r.code for e, _ in retries for r in e.data.reasons} == {C.DUPLICATE_INTENT}
    audited_by = {g.settings.gate_id for g in (first, second) if g.counters.rejected}
    assert audited_by == {"gate-1", "gate-2"}, "both gates answered some of the retries"
    # Counted at the source: one approval in the whole group, and one signal out. A marker each gate publishes
    # after its answers proves nothing else of theirs is still on the way (NATS keeps one publisher's order).
    assert first.counters.approved + second.counters.approved == 1
    for instance in (first, second):
        await instance.links.nc.publish("signals.trading.marker", instance.settings.gate_id.encode())
        await flush_ordered(instance.links.nc)
    await wait_until(lambda: sum(m.subject == "signals.trading.marker" for m in signals.messages) == 2)
    assert len([m for m in signals.messages if m.subject != "signals.trading.marker"]) == 1
    assert first.counters.peer_promotions + second.counters.peer_promotions == 1


async def test_a_rate_limit_holds_across_the_group(make_gate, redis, nc):
    first, second = await _two_gates(make_gate, redis, nc, make_spec(max_intent_age_s=None, max_intents_per_minute=10))
    approved = 0
    for i in range(30):
        envelope, _ = await request(nc, live_intent_body(signal_id=f"r{i}", strategy_id=f"s{i}"))
        approved += envelope.data.decision == "APPROVED"
        # Sent one at a time, each after the peer has counted the previous promotion (a real burst can overshoot
        # by the promotions in flight: docs/policy.md).
        await wait_until(lambda n=approved: first.counters.peer_promotions + second.counters.peer_promotions == n)
    assert approved == 10
    assert first.counters.approved > 0 and second.counters.approved > 0


async def test_a_gate_ignores_its_own_notices_and_garbage(make_gate, redis, nc):
    first, _ = await _two_gates(make_gate, redis, nc, make_spec())
    await nc.publish("cio.gate.promotion", b"not json")
    own = {
        "gate_id": "gate-1",
        "ts": time.time(),
        "strategy_id": "X",
        "strategy_key": "x",
        "symbol": "BTCUSDT",
        "action": "buy",
        "intent_id": "own",
        "notional_usd": 1.0,
        "policy_version": 1,
    }
    await nc.publish("cio.gate.promotion", orjson.dumps(own))
    # A genuine peer notice sent after them: once it is applied, the two before it were read (in order) too.
    await nc.publish("cio.gate.promotion", orjson.dumps(dict(own, gate_id="gate-9", intent_id="peer")))
    await flush_ordered(nc)
    await wait_until(lambda: first.state.was_promoted("x", "peer", 0.0))
    assert not first.state.was_promoted("x", "own", 0.0)
    envelope, _ = await request(nc, live_intent_body(signal_id="after-garbage"))
    assert envelope.data.decision == "APPROVED"
