"""The stack the latch forgeries run on (tests/integration/test_latch_forgery.py and its neighbours): the shipped
permissions, a gate's Redis password in the attacker's hands, and the drawdown latch read as the control plane
reads it."""

import asyncio
import time
from pathlib import Path

import redis.asyncio as aioredis

from cio_kernel.contracts.latch import LatchRecord, latch_id
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, read_latches
from deploy import access
from gate.config import GateSettings
from gate.runtime.service import Gate
from tests.factories import (
    GATES_KEY,
    POLICY_KEY,
    TEST_PUBLIC_KEY,
    live_intent_body,
    make_snapshot,
    make_spec,
    write_audit_signing_key,
)
from tests.integration.helpers import activate, collect, request, wait_for_policy, wait_until
from tests.secured_stack import Secured

DRAWDOWN = latch_id("drawdown", "global")
SPEC = make_spec(max_drawdown_pct=0.10)


class LatchStack:
    """The attacker's (`gate`) and the control plane's Redis clients, the trade engine's and a strategy's NATS
    clients, the alerts heard on `cio.alert.critical`, policy v1 active, and in-process gates started on demand."""

    def __init__(self, secured: Secured, tmp_path: Path) -> None:
        self.secured, self.tmp_path = secured, tmp_path
        self.gates: list[Gate] = []

    async def open(self) -> "LatchStack":
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
