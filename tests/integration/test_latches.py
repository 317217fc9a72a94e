"""Latches across processes and outages: stored in Redis, adopted by gates that start later, released by a
human for every gate at once, and never lost while Redis is away."""

import time
from datetime import UTC, datetime

import redis.asyncio as aioredis

from cio_kernel.contracts.latch import LatchNotice, latch_id
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, read_latches, release_latch
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import (
    GATES_KEY,
    POLICY_KEY,
    TEST_SIGNER,
    live_intent_body,
    make_snapshot,
    make_spec,
)
from tests.integration.helpers import activate, request, wait_for_policy, wait_until
from tests.integration.latch_stack import DRAWDOWN, SPEC


async def publish_snapshot(nc, drawdown: float, *gates, **fields) -> None:
    """Publish a snapshot and wait until every given gate holds it (snapshots and intents arrive on separate
    subscriptions, so an intent sent right after could otherwise be decided first)."""
    snapshot = make_snapshot({}, drawdown=drawdown, ts=time.time(), **fields)
    await nc.publish("cio.portfolio.snapshot", snapshot.model_dump_json().encode())
    await flush_ordered(nc)
    await wait_until(lambda: all(g.state.portfolio == snapshot for g in gates), what="snapshot adopted")


async def decision_codes(nc) -> set[str]:
    envelope, _ = await request(nc, live_intent_body(signal_id=None))
    return {reason.code for reason in envelope.data.reasons}


async def stored(redis, latch: str = DRAWDOWN):
    return (await read_latches(redis, GATES_KEY, POLICY_KEY)).records.get(latch)


async def test_a_breach_is_stored_and_a_gate_started_later_is_latched_too(make_gate, redis, nc):
    first = await make_gate(gate_id="gate-a")
    await activate(redis, nc, SPEC, 1)
    await wait_for_policy(first, 1)
    await publish_snapshot(nc, 0.25, first)
    await wait_until(lambda: stored(redis), what="latch stored in Redis")
    record = await stored(redis)
    assert record.active and record.tripped_by == "gate-a" and record.observed == 0.25 and record.limit == 0.10
    await publish_snapshot(nc, 0.0, first)  # recovered; the latch holds
    assert await decision_codes(nc) == {C.DRAWDOWN_REDUCING}
    heartbeat = first.heartbeat()
    assert heartbeat.trading_state == "reducing" and heartbeat.latches == [DRAWDOWN]

    await first.stop()
    restarted = await make_gate(gate_id="gate-b")  # a new process: nothing in memory
    assert restarted.state.latches.get(DRAWDOWN).active
    await publish_snapshot(nc, 0.0, restarted)
    assert await decision_codes(nc) == {C.DRAWDOWN_REDUCING}


async def test_a_release_reaches_every_gate_and_a_new_breach_latches_again(make_gate, redis, nc):
    gates = [await make_gate(gate_id="gate-a"), await make_gate(gate_id="gate-b")]
    await activate(redis, nc, SPEC, 1)
    for gate in gates:
        await wait_for_policy(gate, 1)
    await publish_snapshot(nc, 0.3, *gates)
    await wait_until(lambda: all(g.state.latches.get(DRAWDOWN) for g in gates), what="both gates latched")
    await wait_until(lambda: stored(redis), what="the latch stored (what an officer releases)")
    await publish_snapshot(nc, 0.02, *gates)

    released = await release_latch(redis, DRAWDOWN, time.time(), "officer2", "drawdown recovered", TEST_SIGNER)
    assert released is not None and not released.active
    notice = LatchNotice(latch_id=DRAWDOWN, event="released", at=released.released_at, by="officer2")
    await nc.publish("cio.risk.latch", notice.model_dump_json().encode())
    await wait_until(lambda: not any(g.state.latches.get(DRAWDOWN).active for g in gates), what="release applied")
    for _ in range(4):  # the queue group spreads these over both gates
        assert await decision_codes(nc) == set()

    await publish_snapshot(nc, 0.12, *gates)
    await wait_until(lambda: all(g.state.latches.get(DRAWDOWN).active for g in gates), what="latched again")

    async def stored_again() -> bool:
        record = await stored(redis)
        return record is not None and record.active and record.observed == 0.12

    await wait_until(stored_again, what="the new trip stored over the released record")


async def test_releasing_a_latch_that_is_not_active_changes_nothing(redis):
    assert await release_latch(redis, DRAWDOWN, time.time(), "officer2", "nothing to release", TEST_SIGNER) is None
    assert await redis.hlen(LATCHES_KEY) == 0


async def test_a_latch_tripped_while_redis_is_down_holds_and_is_stored_when_redis_returns(
    make_gate, redis, redis_proc, redis_url, nc
):
    gate = await make_gate(gate_id="gate-a")
    await activate(redis, nc, SPEC, 1)
    await wait_for_policy(gate, 1)
    redis_proc.stop()
    await publish_snapshot(nc, 0.5, gate)
    await wait_until(lambda: gate.latch_sync.unsaved == 1, what="latch held in memory")
    assert await decision_codes(nc) == {C.DRAWDOWN_REDUCING}
    redis_proc.start()  # same port, empty (no persistence in tests)
    fresh = aioredis.Redis.from_url(redis_url)  # the test's own connection died with the server
    try:
        await wait_until(lambda: stored(fresh), timeout_s=10, what="latch stored after Redis returned")
        assert (await stored(fresh)).tripped_by == "gate-a"
        await wait_until(lambda: gate.latch_sync.unsaved == 0, what="the gate done storing")
    finally:
        await fresh.aclose()


async def test_daily_loss_latches_per_strategy_for_today_only(make_gate, redis, nc):
    gate = await make_gate()
    spec = make_spec(strategies={"momentum_1": {"max_daily_loss_usd": 500.0}})
    await activate(redis, nc, spec, 1)
    await wait_for_policy(gate, 1)
    now = time.time()
    day = datetime.fromtimestamp(now // 86_400 * 86_400, UTC).date().isoformat()
    await publish_snapshot(nc, 0.0, gate, strategy_pnl={"momentum-1": -800.0, "carry": 0.0})
    latch = latch_id("daily_loss", "strategy", "momentum_1", day)
    await wait_until(lambda: stored(redis, latch), what="daily loss latch stored")
    assert await decision_codes(nc) == {C.DAILY_LOSS_REDUCING}
    envelope, _ = await request(nc, live_intent_body(signal_id=None, strategy_id="carry"))
    assert envelope.data.decision == "APPROVED"
