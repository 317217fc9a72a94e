"""The gate's Redis password cannot undo a de-risking: whoever holds it can write `risk:latches`, but a latch is
released only by a release the control plane signed with the policy key, an unreadable record holds its latch,
and a gate never lets Redis lift a latch it holds without a release that covers it. Every forgery here is written
with the `gate` Redis identity alone, against the shipped ACLs; snapshots come from the trade engine's identity,
intents from the strategies', releases from the control plane's."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from cio_kernel.contracts.latch import UNREADABLE_BY, LatchRecord, latch_id
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, read_latches, release_latch
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.reason_codes import ReasonCode as C
from deploy import access
from gate.config import GateSettings
from gate.runtime.service import Gate
from tests.factories import (
    TEST_AUDIT_SIGNER,
    TEST_PUBLIC_KEY,
    TEST_SIGNER,
    live_intent_body,
    make_snapshot,
    make_spec,
    write_audit_signing_key,
)
from tests.integration.helpers import activate, collect, request, wait_for_policy, wait_until
from tests.secured_stack import Secured

DRAWDOWN = latch_id("drawdown", "global")
SPEC = make_spec(max_drawdown_pct=0.10)
GATES_KEY = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])
POLICY_KEY = PolicyVerifier([TEST_SIGNER.public_raw])


class Stack:
    def __init__(self, secured: Secured, tmp_path: Path) -> None:
        self.secured, self.tmp_path = secured, tmp_path
        self.gates: list[Gate] = []

    async def open(self) -> "Stack":
        s = self.secured
        self.attacker = aioredis.Redis.from_url(s.redis_url("gate"))
        self.control = aioredis.Redis.from_url(s.redis_url("control"))
        self.control_nc = await s.connect("control")
        self.snapshots = await s.connect("snapshot-bridge")  # the only identity that publishes snapshots
        self.strategy = await s.connect("strategy")
        self.alerts = await collect(await s.connect("alerting"), "cio.alert.critical")
        await activate(self.control, self.control_nc, SPEC, 1)
        return self

    async def gate(self, gate_id: str, spool: str | None = None) -> Gate:
        settings = GateSettings(
            nats_url=self.secured.nats_url("gate"),
            redis_url=self.secured.redis_url("gate"),
            nats_inbox_prefix=access.NATS_ROLES["gate"].inbox_prefix,
            gate_id=gate_id,
            audit_spool_dir=self.tmp_path / f"spool-{spool or gate_id}",
            heartbeat_interval_s=0.2,
            policy_refresh_s=3600,  # each test refreshes the latches itself: what a gate reads, when it reads
            policy_public_key=TEST_PUBLIC_KEY,
            audit_signing_key_file=write_audit_signing_key(self.tmp_path),
        )
        gate = Gate(settings)
        await asyncio.wait_for(gate.start(), 20)
        self.gates.append(gate)
        await wait_for_policy(gate, 1)
        return gate

    async def snapshot(self, drawdown: float, *gates: Gate) -> None:
        snapshot = make_snapshot({}, drawdown=drawdown, ts=time.time())
        await self.snapshots.publish("cio.portfolio.snapshot", snapshot.model_dump_json().encode())
        await flush_ordered(self.snapshots)
        await wait_until(lambda: all(g.state.portfolio == snapshot for g in gates), what="snapshot adopted")

    async def codes(self) -> set[str]:
        envelope, _ = await request(self.strategy, live_intent_body(signal_id=None))
        return {reason.code for reason in envelope.data.reasons}

    async def stored(self) -> LatchRecord | None:
        return (await read_latches(self.control, GATES_KEY, POLICY_KEY)).records.get(DRAWDOWN)

    async def raw(self) -> bytes | None:
        return await self.attacker.hget(LATCHES_KEY, DRAWDOWN)

    async def tripped(self, gate: Gate, drawdown: float = 0.3) -> LatchRecord:
        await self.snapshot(drawdown, gate)
        await wait_until(lambda: gate.latch_sync.unsaved == 0 and self.stored(), what="latch stored")
        record = await self.stored()
        assert record is not None and record.active and record.trip_verified_by(GATES_KEY)
        await self.snapshot(0.0, gate)  # the book recovered: only the latch keeps the gate reducing
        return record

    async def close(self) -> None:
        for gate in self.gates:
            await gate.stop()
        await self.attacker.aclose()
        await self.control.aclose()
        await self.secured.close_clients()


@pytest.fixture
async def stack(secured: Secured, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await Stack(secured, tmp_path).open()
    yield opened
    await opened.close()


async def test_a_release_by_an_officer_written_with_the_gate_password_releases_nothing(stack):
    gate = await stack.gate("gate-a")
    record = await stack.tripped(gate)
    attacker_key = PolicySigner.generate()
    for forged in (
        record.model_copy(update={"released_at": time.time(), "released_by": "officer2", "release_reason": "ok"}),
        record.released(time.time(), "officer1", "signed with a key of the attacker's own", attacker_key),
    ):
        await stack.attacker.hset(LATCHES_KEY, DRAWDOWN, forged.model_dump_json())
        refused = gate.latch_sync.refused
        await gate.latch_refresh_step()
        assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == refused + 1
        assert gate.heartbeat().trading_state == "reducing"
        later = await stack.gate(f"gate-late-{len(stack.gates)}")  # nothing in memory: reads only the forgery
        assert later.state.latches.get(DRAWDOWN).active and later.latch_sync.refused == 1
        await stack.snapshot(0.0, *stack.gates)  # the book is fine: only the latch keeps every gate reducing
        for _ in range(4):  # the queue group spreads these over the gates
            assert await stack.codes() == {C.DRAWDOWN_REDUCING}
        assert (await stack.stored()).active  # the control plane shows it holding too
    assert gate.heartbeat().counters.latches_refused == 2

    def refused_alert() -> bool:
        return any(orjson.loads(m.data)["title"].startswith("gate refused a risk latch") for m in stack.alerts.messages)

    await wait_until(refused_alert, what="the critical latch_refused alert")
    # A release the control plane signs (an officer's, through the control plane's identity) does release it.
    assert await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "reviewed", TEST_SIGNER, GATES_KEY)
    for g in stack.gates:
        await g.latch_refresh_step()
    assert not any(g.state.latches.get(DRAWDOWN).active for g in stack.gates)
    assert await stack.codes() == set()


async def test_an_unreadable_record_holds_its_latch_until_an_officer_releases_it(stack):
    gate = await stack.gate("gate-a")
    await stack.tripped(gate)
    await stack.attacker.hset(LATCHES_KEY, DRAWDOWN, b'{"not": "a latch"}')
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == 1
    fresh = await stack.gate("gate-b")  # knows only the unreadable record: holds the latch for it
    held = fresh.state.latches.get(DRAWDOWN)
    assert held.active and held.tripped_by == UNREADABLE_BY
    await stack.snapshot(0.0, gate, fresh)
    for _ in range(4):
        assert await stack.codes() == {C.DRAWDOWN_REDUCING}
    # The officer can lift it: the release covers that exact record.
    released = await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "cleared", TEST_SIGNER, GATES_KEY)
    assert released is not None and released.release_verified_by(POLICY_KEY)
    for g in (gate, fresh):
        await g.latch_refresh_step()
    assert not any(g.state.latches.get(DRAWDOWN).active for g in (gate, fresh))


async def test_an_earlier_release_put_back_over_a_newer_trip_releases_nothing(stack):
    gate = await stack.gate("gate-a")
    await stack.tripped(gate)
    assert await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "first", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    old_release = await stack.raw()  # genuine, signed by the control plane, readable with the gate's password
    second = await stack.tripped(gate, drawdown=0.4)  # breached again after the release: a new trip
    assert second.observed == 0.4

    await stack.attacker.hset(LATCHES_KEY, DRAWDOWN, old_release)
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.refused == 1
    assert await stack.codes() == {C.DRAWDOWN_REDUCING}
    # The gate stored its trip again: Redis holds the newer trip, active, for every other reader.
    await wait_until(lambda: gate.latch_sync.unsaved == 0, what="the trip stored again")
    await gate.latch_refresh_step()
    restored = await stack.stored()
    assert restored.active and restored.same_trip(second)
    assert orjson.loads(await stack.raw())["observed"] == 0.4


async def test_a_trip_planted_with_the_gate_password_only_makes_trading_more_careful(stack):
    gate = await stack.gate("gate-a")
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
    await stack.attacker.hset(LATCHES_KEY, DRAWDOWN, planted.model_dump_json())
    await gate.latch_refresh_step()
    assert gate.state.latches.get(DRAWDOWN).active and gate.latch_sync.unverified == 1
    await stack.snapshot(0.0, gate)
    assert await stack.codes() == {C.DRAWDOWN_REDUCING}
    assert await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "planted", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    assert not gate.state.latches.get(DRAWDOWN).active


async def test_a_gate_restarted_after_an_earlier_release_was_put_back_still_holds_its_latch(stack):
    gate = await stack.gate("gate-a", spool="shared")
    await stack.tripped(gate)
    assert await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "first", TEST_SIGNER, GATES_KEY)
    await gate.latch_refresh_step()
    old_release = await stack.raw()
    second = await stack.tripped(gate, drawdown=0.4)
    await gate.stop()
    stack.gates.remove(gate)

    await stack.attacker.hset(LATCHES_KEY, DRAWDOWN, old_release)  # while no gate runs
    successor = await stack.gate("gate-a2", spool="shared")  # the same volume: it holds what gate-a held
    held = successor.state.latches.get(DRAWDOWN)
    assert held.active and held.same_trip(second) and successor.latch_sync.refused == 1
    await wait_until(lambda: successor.latch_sync.unsaved == 0, what="the trip stored again")
    assert (await stack.stored()).same_trip(second)
    await stack.snapshot(0.0, successor)
    assert await stack.codes() == {C.DRAWDOWN_REDUCING}
    # The officer's release of that trip lifts it, for the successor and for a gate restarted after it.
    assert await release_latch(stack.control, DRAWDOWN, time.time(), "officer2", "second", TEST_SIGNER, GATES_KEY)
    await successor.latch_refresh_step()
    assert not successor.state.latches.get(DRAWDOWN).active
    await successor.stop()
    stack.gates.remove(successor)
    third = await stack.gate("gate-a3", spool="shared")
    assert not third.state.latches.get(DRAWDOWN).active
