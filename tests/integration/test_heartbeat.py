"""Heartbeats on `cio.gate.heartbeat` and the fleet's `cio.heartbeat`, and `cio.gate.ping`."""

import asyncio
import itertools
import time
from datetime import datetime

import orjson

from cio_kernel.contracts.heartbeat import FleetHeartbeat, GateHeartbeat
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, collect, request, wait_for_policy


async def test_gate_heartbeat_reports_policy_state_and_counters(gate, redis, nc):
    await activate(redis, nc, make_spec(trading_state="reducing"), 4)
    await wait_for_policy(gate, 4)
    await request(nc, live_intent_body())
    beats = await collect(nc, "cio.gate.heartbeat")
    messages = await beats.wait_for(3, timeout_s=3)
    parsed = [GateHeartbeat.model_validate_json(m.data) for m in messages]
    latest = parsed[-1]
    assert latest.gate_id == "test-gate"
    assert latest.policy_version == 4
    assert latest.trading_state == "reducing"
    assert latest.counters.received == 1 and latest.counters.rejected == 1
    assert parsed[0].uptime_s < parsed[-1].uptime_s
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(parsed)]
    assert all(0.1 < gap < 1.0 for gap in gaps), gaps  # configured at 0.2 s in the tests


async def test_fleet_heartbeat_has_the_shape_the_trade_engine_reads(gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    beats = await collect(nc, "cio.heartbeat")
    [_first, second, *_] = await beats.wait_for(2, timeout_s=3)
    body = orjson.loads(second.data)
    beat = FleetHeartbeat.model_validate(body)
    assert body["service"] == "petrosa-cio"
    assert body["status"] == "GOVERNANCE_ACTIVE"
    assert isinstance(body["timestamp"], float) and abs(body["timestamp"] - time.time()) < 5
    assert isinstance(body["version"], str)
    assert beat.policy_version == 1 and beat.gate_id == "test-gate"
    assert datetime.fromisoformat(body["ts"])


async def test_ping_replies_with_the_latest_heartbeat(gate, nc):
    reply = await nc.request("cio.gate.ping", b"", timeout=2)
    beat = GateHeartbeat.model_validate_json(reply.data)
    assert beat.gate_id == "test-gate" and beat.policy_version is None


async def test_a_stuck_gate_stops_beating(gate, nc):
    beats = await collect(nc, "cio.gate.heartbeat")
    await beats.wait_for(1, timeout_s=3)
    gate._inflight_since = time.monotonic() - gate.settings.stuck_after_s - 1  # an intent that never finishes
    await asyncio.sleep(0.3)
    seen = len(beats.messages)
    await asyncio.sleep(1.0)
    assert len(beats.messages) == seen
    try:
        await nc.request("cio.gate.ping", b"", timeout=0.5)
        answered = True
    except Exception:
        answered = False
    assert not answered
    gate._inflight_since = None
    await beats.wait_for(seen + 1, timeout_s=3)
