"""Heartbeats on `cio.gate.heartbeat` and the fleet's `cio.heartbeat`, and `cio.gate.ping`.

The gates here run no periodic loops and read a manual clock: each test takes one heartbeat step at a time and
moves time itself, so what a beat says is checked exactly, and silence is proven by a marker published after the
step on the same connection (NATS keeps one publisher's order), not by waiting and seeing nothing."""

import time
from datetime import UTC, datetime

import orjson
from nats.aio.msg import Msg

from cio_kernel import heartbeat_seal
from cio_kernel.contracts.heartbeat import FleetHeartbeat, GateHeartbeat
from cio_kernel.policy.signing import PolicyVerifier
from tests.factories import TEST_AUDIT_SIGNER, live_intent_body, make_spec
from tests.integration.helpers import ManualClock, activate, after_step, collect, request, wait_for_policy


async def _stepped_gate(make_gate, **overrides):
    clock = ManualClock(wall=time.time())
    return await make_gate(clock=clock, run_loops=False, **overrides), clock


async def test_gate_heartbeat_reports_policy_state_and_counters(make_gate, redis, nc):
    gate, clock = await _stepped_gate(make_gate)
    beats = await collect(nc, "cio.gate.heartbeat")
    await activate(redis, nc, make_spec(trading_state="reducing"), 4)
    await wait_for_policy(gate, 4)
    await request(nc, live_intent_body(timestamp=datetime.fromtimestamp(clock.time(), UTC).isoformat()))
    assert await gate.heartbeat_step()
    clock.advance(0.2)
    assert await gate.heartbeat_step()
    sent = await after_step(gate, beats, "cio.gate.heartbeat")
    # Signed with the gates' audit key: the body a reader finds in Redis is verifiably this one.
    assert all(
        heartbeat_seal.verify(orjson.loads(m.data), PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])) for m in sent
    )
    first, second = (GateHeartbeat.model_validate_json(m.data) for m in sent)
    assert second.gate_id == "test-gate"
    assert second.policy_version == 4
    assert second.trading_state == "reducing"
    assert second.counters.received == 1 and second.counters.rejected == 1
    assert abs(second.ts.timestamp() - clock.time()) < 1e-5
    assert abs((second.ts - first.ts).total_seconds() - 0.2) < 1e-5
    assert abs(second.uptime_s - first.uptime_s - 0.2) < 1e-3
    # The beat is kept in Redis for the control plane (`gate:heartbeat:<gate_id>`, short TTL); a store still in
    # flight is not duplicated, so Redis holds the first or the second.
    await gate.beats.storing
    stored = GateHeartbeat.model_validate_json(await redis.get("gate:heartbeat:test-gate"))
    assert stored in (first, second) and 0 < await redis.ttl("gate:heartbeat:test-gate") <= 3


async def test_fleet_heartbeat_has_the_shape_the_trade_engine_reads(make_gate, redis, nc):
    gate, clock = await _stepped_gate(make_gate)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    beats = await collect(nc, "cio.heartbeat")
    assert await gate.fleet_heartbeat_step()
    [message] = await after_step(gate, beats, "cio.heartbeat")
    body = orjson.loads(message.data)
    beat = FleetHeartbeat.model_validate(body)
    assert body["service"] == "petrosa-cio"
    assert body["status"] == "GOVERNANCE_ACTIVE"
    assert isinstance(body["timestamp"], float) and abs(body["timestamp"] - clock.time()) < 1e-5
    assert abs(datetime.fromisoformat(body["ts"]).timestamp() - clock.time()) < 1e-5
    assert isinstance(body["version"], str) and body["version"]
    assert beat.policy_version == 1 and beat.gate_id == "test-gate"
    # Once the copy can no longer be confirmed, the fleet hears the gate is degraded.
    clock.advance(gate.settings.policy_max_age_s + 1)
    assert await gate.fleet_heartbeat_step()
    [message] = await after_step(gate, beats, "cio.heartbeat")
    assert orjson.loads(message.data)["status"] == "DEGRADED"


async def test_ping_replies_with_the_latest_heartbeat(gate, nc):
    reply = await nc.request("cio.gate.ping", b"", timeout=2)
    beat = GateHeartbeat.model_validate_json(reply.data)
    assert beat.gate_id == "test-gate" and beat.policy_version is None


async def test_a_stuck_gate_stops_beating_and_answering_pings(make_gate, nc):
    gate, clock = await _stepped_gate(make_gate)
    beats = await collect(nc, "cio.gate.heartbeat")
    replies = await collect(nc, "test.ping.reply")
    gate.intake.inflight_since = clock.monotonic()  # an intent that never finishes...
    clock.advance(gate.settings.stuck_after_s - 0.1)
    assert await gate.heartbeat_step()  # ...is not stuck yet
    assert len(await after_step(gate, beats, "cio.gate.heartbeat")) == 1
    clock.advance(0.2)
    assert not await gate.heartbeat_step()
    assert await after_step(gate, beats, "cio.gate.heartbeat") == []
    await gate.beats.on_ping(Msg(gate.links.nc, subject="cio.gate.ping", reply="test.ping.reply", data=b""))
    assert await after_step(gate, replies, "test.ping.reply") == []
    gate.intake.inflight_since = None
    assert await gate.heartbeat_step()
    assert len(await after_step(gate, beats, "cio.gate.heartbeat")) == 1
