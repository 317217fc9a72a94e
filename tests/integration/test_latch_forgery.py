"""The gate's Redis password cannot undo a de-risking: whoever holds it can write `risk:latches`, but a latch is
released only by a release the control plane signed with the policy key, an unreadable record holds its latch,
and a gate never lets Redis lift a latch it holds without a release that covers it. Every forgery here is written
with the `gate` Redis identity alone, against the shipped ACLs; snapshots come from the trade engine's identity,
intents from the strategies', releases from the control plane's."""

import time

import orjson

from cio_kernel.contracts.latch import UNREADABLE_BY, LatchRecord
from cio_kernel.policy.latch_store import LATCHES_KEY, release_latch
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import (
    GATES_KEY,
    POLICY_KEY,
    TEST_SIGNER,
)
from tests.integration.helpers import wait_until
from tests.integration.latch_stack import DRAWDOWN


async def test_a_release_by_an_officer_written_with_the_gate_password_releases_nothing(latch_stack):
    gate = await latch_stack.gate("gate-a")
    record = await latch_stack.tripped(gate)
    attacker_key = PolicySigner.generate()
    for forged in (
        record.model_copy(update={"released_at": time.time(), "released_by": "officer2", "release_reason": "ok"}),
        record.released(time.time(), "officer1", "signed with a key of the attacker's own", attacker_key),
    ):
        await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, forged.model_dump_json())
        refused = gate.latch_sync.refused
        await gate.latch_refresh_step()
        assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == refused + 1
        assert gate.heartbeat().trading_state == "reducing"
        later = await latch_stack.gate(
            f"gate-late-{len(latch_stack.gates)}"
        )  # nothing in memory: reads only the forgery
        assert later.state.latches.get(DRAWDOWN).active and later.latch_sync.refused == 1
        await latch_stack.snapshot(
            0.0, *latch_stack.gates
        )  # the book is fine: only the latch keeps every gate reducing
        for _ in range(4):  # the queue group spreads these over the gates
            assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}
        assert (await latch_stack.stored()).active  # the control plane shows it holding too
    assert gate.heartbeat().counters.latches_refused == 2

    def refused_alert() -> bool:
        return any(
            orjson.loads(m.data)["title"].startswith("gate refused a risk latch") for m in latch_stack.alerts.messages
        )

    await wait_until(refused_alert, what="the critical latch_refused alert")
    # A release the control plane signs (an officer's, through the control plane's identity) does release it.
    assert await release_latch(
        latch_stack.control, DRAWDOWN, time.time(), "officer2", "reviewed", TEST_SIGNER, GATES_KEY
    )
    for g in latch_stack.gates:
        await g.latch_refresh_step()
    assert not any(g.state.latches.get(DRAWDOWN).active for g in latch_stack.gates)
    assert await latch_stack.codes() == set()


async def test_an_unreadable_record_holds_its_latch_until_an_officer_releases_it(latch_stack):
    gate = await latch_stack.gate("gate-a")
    await latch_stack.tripped(gate)
    await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, b'{"not": "a latch"}')
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == 1
    fresh = await latch_stack.gate("gate-b")  # knows only the unreadable record: holds the latch for it
    held = fresh.state.latches.get(DRAWDOWN)
    assert held.active and held.tripped_by == UNREADABLE_BY
    await latch_stack.snapshot(0.0, gate, fresh)
    for _ in range(4):
        assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}
    # The officer can lift it: the release covers that exact record.
    released = await release_latch(
        latch_stack.control, DRAWDOWN, time.time(), "officer2", "cleared", TEST_SIGNER, GATES_KEY
    )
    assert released is not None and released.release_verified_by(POLICY_KEY)
    for g in (gate, fresh):
        await g.latch_refresh_step()
    assert not any(g.state.latches.get(DRAWDOWN).active for g in (gate, fresh))


async def test_an_earlier_release_put_back_over_a_newer_trip_releases_nothing(latch_stack):
    gate = await latch_stack.gate("gate-a")
    await latch_stack.tripped(gate)
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "first", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    old_release = await latch_stack.raw()  # genuine, signed by the control plane, readable with the gate's password
    second = await latch_stack.tripped(gate, drawdown=0.4)  # breached again after the release: a new trip
    assert second.observed == 0.4

    await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, old_release)
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == 1
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}
    # The gate stored its trip again: Redis holds the newer trip, active, for every other reader.
    await wait_until(lambda: gate.latch_sync.unsaved == 0, what="the trip stored again")
    await gate.latch_refresh_step()
    restored = await latch_stack.stored()
    assert restored.active and restored.same_trip(second)
    assert orjson.loads(await latch_stack.raw())["observed"] == 0.4


async def test_a_trip_planted_with_the_gate_password_only_makes_trading_more_careful(latch_stack):
    gate = await latch_stack.gate("gate-a")
    planted = LatchRecord(
        kind="drawdown",
        scope="global",
        key="*",
        tripped_at=time.time(),
        tripped_by="nobody",
        snapshot_ts=time.time(),
        observed=1.0,
        limit=0.1,
    )
    await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, planted.model_dump_json())
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.unverified == 1
    await latch_stack.snapshot(0.0, gate)
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}
    assert await release_latch(
        latch_stack.control, DRAWDOWN, time.time(), "officer2", "planted", TEST_SIGNER, GATES_KEY
    )
    await gate.latch_refresh_step()
    assert not gate.state.latches.get(DRAWDOWN).active


async def test_a_gate_restarted_after_an_earlier_release_was_put_back_still_holds_its_latch(latch_stack):
    gate = await latch_stack.gate("gate-a", spool="shared")
    await latch_stack.tripped(gate)
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "first", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    old_release = await latch_stack.raw()
    second = await latch_stack.tripped(gate, drawdown=0.4)
    await gate.stop()
    latch_stack.gates.remove(gate)

    await latch_stack.attacker.hset(LATCHES_KEY, DRAWDOWN, old_release)  # while no gate runs
    successor = await latch_stack.gate("gate-a2", spool="shared")  # the same volume: it holds what gate-a held
    held = successor.state.latches.get(DRAWDOWN)
    assert held.active and held.same_trip(second) and successor.latch_sync.refused == 1
    await wait_until(lambda: successor.latch_sync.unsaved == 0, what="the trip stored again")
    assert (await latch_stack.stored()).same_trip(second)
    await latch_stack.snapshot(0.0, successor)
    assert await latch_stack.codes() == {C.DRAWDOWN_REDUCING}
    # The officer's release of that trip lifts it, for the successor and for a gate restarted after it.
    assert await release_latch(latch_stack.control, DRAWDOWN, time.time(), "officer2", "second", TEST_SIGNER, GATES_KEY)
    await successor.latch_refresh_step()
    assert not successor.state.latches.get(DRAWDOWN).active
    await successor.stop()
    latch_stack.gates.remove(successor)
    third = await latch_stack.gate("gate-a3", spool="shared")
    assert not third.state.latches.get(DRAWDOWN).active
