"""A gate in process under the `gate` identity on the stack with the shipped permissions (`secured`), and its
heartbeats as the control plane reads them (cio_kernel/heartbeats.py), for the forgery tests of the gates'
heartbeats and pings."""

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from cio_kernel.heartbeats import GateBeats, read_gate_heartbeats
from deploy import access
from gate.config import GateSettings
from gate.runtime.service import Gate
from tests.factories import GATES_KEY, TEST_PUBLIC_KEY, write_audit_signing_key
from tests.secured_stack import Secured


async def start_gate(secured: Secured, tmp_path: Path, **overrides: object) -> Gate:
    """Gate `real-gate`, beating every 0.2 s, its beats signed with the gates' key."""
    settings = GateSettings(
        nats_url=secured.nats_url("gate"),
        redis_url=secured.redis_url("gate"),
        nats_inbox_prefix=access.NATS_ROLES["gate"].inbox_prefix,
        gate_id="real-gate",
        audit_spool_dir=tmp_path / "spool",
        heartbeat_interval_s=0.2,
        policy_public_key=TEST_PUBLIC_KEY,
        audit_signing_key_file=write_audit_signing_key(tmp_path),
    ).model_copy(update=overrides)
    gate = Gate(settings)
    await asyncio.wait_for(gate.start(), 20)
    return gate


async def gate_beats(control: aioredis.Redis, now: float | None = None) -> GateBeats:
    return await read_gate_heartbeats(control, GATES_KEY, now)


async def live_gate_ids(control: aioredis.Redis) -> list[str]:
    return [beat.gate_id for beat in (await gate_beats(control)).live]
