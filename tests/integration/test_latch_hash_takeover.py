"""Variations on the latch forgeries (tests/integration/test_latch_forgery.py) that go for the hash itself or move
genuine records about: neither the gate's nor the control plane's Redis password can replace `risk:latches` with
another type (one `SET` would erase every latch and leave no gate able to store one again, while the gates only
logged it), and a genuine record moved under another latch's field releases nothing. Written with the attacker's
own identity against the shipped ACLs."""

import time

import orjson
import pytest
from redis.exceptions import ResponseError

from cio_kernel.contracts.latch import UNREADABLE_BY, LatchNotice, LatchRecord, latch_id
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, MAX_LATCH_FIELDS, read_latches, release_latch
from cio_kernel.reason_codes import ReasonCode as C
from gate.runtime.latch_sync import NOT_READ_BY
from tests.factories import GATES_KEY, POLICY_KEY, TEST_SIGNER
from tests.integration.helpers import wait_until
from tests.integration.latch_stack import DRAWDOWN

_OVERWRITE = "return redis.call('SET', KEYS[1], ARGV[1])"


async def test_neither_password_can_replace_the_latch_hash(latch_stack):
    gate = await latch_stack.gate("gate-a")
    trip = await latch_stack.tripped(gate)
    with pytest.raises(ResponseError, match="No permissions"):
        await latch_stack.attacker.set(LATCHES_KEY, "gone")
    with pytest.raises(ResponseError, match="No permissions"):
        await latch_stack.control.set(LATCHES_KEY, "gone")
    with pytest.raises(ResponseError, match="No permissions"):  # nor through a script, which runs with the caller's ACL
        await latch_stack.control.eval(_OVERWRITE, 1, LATCHES_KEY, "gone")
    assert (await latch_stack.stored()).same_trip(trip)
    # So a gate started now, on a volume of its own, still learns the latch from Redis and holds it.
    fresh = await latch_stack.gate("gate-b")
    held = fresh.state.latches.get(DRAWDOWN)
    assert held is not None and held.active and held.same_trip(trip)
    await latch_stack.snapshot(0.0, gate, fresh)
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}


async def test_a_genuine_release_moved_under_another_latch_releases_nothing(latch_stack):
    gate = await latch_stack.gate("gate-a")
    await latch_stack.tripped(gate)
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "ok", TEST_SIGNER, GATES_KEY)
    genuine_release = await latch_stack.raw()
    daily = latch_id("daily_loss", "global", day=time.strftime("%Y-%m-%d", time.gmtime()))
    await latch_stack.attacker.hset(LATCHES_KEY, daily, genuine_release)  # signed by the policy key, for another latch
    await gate.latch_refresh_step()
    held = gate.state.latches.get(daily)
    assert held is not None and held.active and held.tripped_by == UNREADABLE_BY
    read = await read_latches(latch_stack.control, GATES_KEY, POLICY_KEY)  # what the admin and REST show
    assert read.records[daily].active and daily in read.refused
    assert not read.records[DRAWDOWN].active  # the genuine release still releases its own latch


async def test_a_latch_hash_filled_with_junk_is_not_read_and_a_gate_started_then_trades_reducing_only(latch_stack):
    """Filled far past any real book (200k fields made a read outlast the gate's Redis timeout: a gate started then
    learned no latch at all and traded as if none held)."""
    gate = await latch_stack.gate("gate-a")
    await latch_stack.tripped(gate)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    async with latch_stack.attacker.pipeline(transaction=False) as pipe:
        for n in range(MAX_LATCH_FIELDS + 1):
            pipe.hset(LATCHES_KEY, f"daily_loss:strategy:s{n}:{day}", "x" * 300)
        await pipe.execute()
    refused = gate.latch_sync.refused
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and not gate.latch_sync.redis_ok
    assert gate.latch_sync.refused == refused + 1  # counted: the gate's critical alert
    read = await read_latches(latch_stack.control, GATES_KEY, POLICY_KEY)  # what the admin shows: not read, and why
    assert not read.complete and LATCHES_KEY in read.refused
    await gate.stop()  # the next gate to start is then the only one answering
    latch_stack.gates.remove(gate)
    fresh = await latch_stack.gate("gate-b")  # a volume of its own: nothing kept
    held = fresh.state.latches.get(DRAWDOWN)
    assert held is not None and held.active and held.tripped_by == NOT_READ_BY
    await latch_stack.snapshot(0.0, fresh)
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}


async def test_junk_trips_cannot_make_a_restarted_gate_forget_the_latch_it_kept(latch_stack):
    """Thousands of planted trips (each held, as any trip is) used to swell the gate's latch file on its volume
    past what it would load, so a restarted gate started from Redis alone, where an earlier genuine release was
    put back over its trip."""
    gate = await latch_stack.gate("gate-a", spool="shared")
    await latch_stack.tripped(gate)
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "first", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    old_release = await latch_stack.raw()
    second = await latch_stack.tripped(gate, drawdown=0.4)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    junk = LatchRecord(
        kind="daily_loss", scope="strategy", key="k", day=day, tripped_at=1.0, tripped_by="j" * 256,
        snapshot_ts=1.0, observed=1.0, limit=0.1, trip_key_id="k" * 256, trip_signature="s" * 256,
    )  # fmt: skip
    async with latch_stack.attacker.pipeline(transaction=False) as pipe:
        for n in range(4000):
            record = junk.model_copy(update={"key": f"s{n}"})
            pipe.hset(LATCHES_KEY, record.id, record.model_dump_json())
        await pipe.execute()
    await gate.latch_refresh_step()
    assert len(gate.state.latches.active()) == 4001
    await gate.stop()
    latch_stack.gates.remove(gate)

    await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, old_release)
    successor = await latch_stack.gate("gate-a2", spool="shared")
    held = successor.state.latches.get(DRAWDOWN)
    assert held.active and held.same_trip(second)
    await latch_stack.snapshot(0.0, successor)
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}


async def test_an_oversized_record_holds_its_latch_as_a_small_placeholder(latch_stack):
    gate = await latch_stack.gate("gate-a")
    daily = latch_id("daily_loss", "global", day=time.strftime("%Y-%m-%d", time.gmtime()))
    huge = {"kind": "daily_loss", "scope": "global", "key": "*", "day": daily.rsplit(":", 1)[1], "tripped_at": 1.0,
            "tripped_by": "x" * 100_000, "snapshot_ts": 1.0, "observed": 1.0, "limit": 0.1}  # fmt: skip
    await latch_stack.attacker.hset(LATCHES_KEY, daily, orjson.dumps(huge))
    await gate.latch_refresh_step()
    held = gate.state.latches.get(daily)
    assert held.active and held.tripped_by == UNREADABLE_BY and gate.latch_sync.refused == 1


async def test_a_flood_of_latch_notices_costs_a_gate_a_few_reads_not_one_each(latch_stack):
    """`cio.risk.latch` is a hint to re-read Redis, and any gate identity may publish it: thousands of notices make
    a gate re-read a handful of times, not once each; a genuine release still reaches it."""
    gate = await latch_stack.gate("gate-a")
    await latch_stack.tripped(gate)
    attacker = await latch_stack.secured.connect("gate", "attacker")
    notice = LatchNotice(latch_id=DRAWDOWN, event="released", at=time.time(), by="someone").model_dump_json()
    for _ in range(5000):
        await attacker.publish("cio.risk.latch", notice.encode())
    await flush_ordered(attacker)
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "ok", TEST_SIGNER, GATES_KEY)
    await attacker.publish("cio.risk.latch", notice.encode())  # the control plane's own notice, in effect
    await flush_ordered(attacker)
    await wait_until(lambda: not gate.state.latches.get(DRAWDOWN).active, what="the release adopted")
    assert gate.notices.latch_notice_reads < 500  # one re-read per notice would be 5001
    assert latch_stack.secured.violations("attacker") == []
