"""What the gate raises on `cio.alert.<severity>`, over real NATS and Valkey, one step at a time on a manual
clock: no usable policy, Redis lost, a refused policy document, NATS refusing it operations, a burst of budget
timeouts, and NATS coming back after a disconnect. A condition that persists raises one alert a minute."""

import time

from cio_kernel.contracts.alert import Alert
from cio_kernel.contracts.heartbeat import GateCounters
from gate.runtime.alert_watch import AlertWatch
from tests.factories import make_spec
from tests.integration.helpers import ManualClock, activate, after_step, collect, wait_for_policy


async def _gate(make_gate):
    clock = ManualClock(wall=time.time())
    return await make_gate(clock=clock, run_loops=False), clock


async def test_no_usable_policy_raises_one_critical_alert_a_minute(make_gate, nc):
    gate, clock = await _gate(make_gate)  # nothing in Redis: no policy
    alerts = await collect(nc, "cio.alert.>")
    assert await gate.alert_step() == 1
    clock.advance(30)
    assert await gate.alert_step() == 0  # still true, held back: one a minute
    clock.advance(31)
    assert await gate.alert_step() == 1
    raised = [Alert.model_validate_json(m.data) for m in await after_step(gate, alerts, "cio.alert.critical")]
    assert [(a.severity, a.detail["key"], a.source) for a in raised] == [
        ("critical", "policy_unusable", "gate:test-gate")
    ] * 2
    assert raised[0].title.startswith("gate cannot decide") and gate.heartbeat().counters.alerts_raised == 2


async def test_a_healthy_gate_raises_nothing(make_gate, redis, nc):
    gate, _ = await _gate(make_gate)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    alerts = await collect(nc, "cio.alert.>")
    assert await gate.alert_step() == 0
    assert await after_step(gate, alerts, "cio.alert.critical") == []


async def test_redis_lost_and_a_refused_document_are_critical(make_gate, redis, nc, redis_proc):
    gate, _ = await _gate(make_gate)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    await redis.set("policy:active", b'{"version": 9, "forged": true}')
    await gate.policy_sync.refresh_step()
    alerts = await collect(nc, "cio.alert.>")
    assert await gate.alert_step() == 1
    redis_proc.stop()
    await gate.policy_sync.refresh_step()
    assert await gate.alert_step() == 1  # the refusal was raised already; Redis lost is new
    raised = [Alert.model_validate_json(m.data).detail["key"] for m in await after_step(gate, alerts, "cio.alert.x")]
    assert raised == ["policy_refused", "redis_lost"]


def test_budget_timeouts_above_the_rate_in_a_minute_warn():
    watch = AlertWatch(timeouts_per_minute=10)
    counters = GateCounters()
    assert watch.observe(counters, True, True, 0.0) == []
    counters.decision_timeouts, counters.shed = 6, 4  # 10 in the minute: at the threshold, not above
    assert watch.observe(counters, True, True, 30.0) == []
    counters.shed = 5
    [finding] = watch.observe(counters, True, True, 40.0)
    assert (finding.key, finding.severity, finding.detail["in_the_last_minute"]) == ("decision_timeouts", "warning", 11)
    assert watch.observe(counters, True, True, 101.0) == []  # the minute moved on without new ones


def test_permission_violations_and_audit_failures_are_raised_when_they_grow():
    watch = AlertWatch(audit_pending_limit=100)
    counters = GateCounters()
    watch.observe(counters, True, True, 0.0)
    counters.permission_violations, counters.audit_failures, counters.audit_pending = 2, 1, 101
    found = {f.key: f for f in watch.observe(counters, True, True, 1.0)}
    assert found["permission_violations"].severity == "critical" and found["permission_violations"].detail["new"] == 2
    assert set(found) == {"permission_violations", "audit_failing"}
    assert watch.observe(counters, True, True, 2.0)[0].detail == {"audit_pending": 101}  # pending still too high


async def test_nats_coming_back_raises_how_long_it_was_gone(make_gate, nc, nats_proc):
    gate, clock = await _gate(make_gate)
    await gate._on_nats_disconnected()
    clock.advance(4.5)
    alerts = await collect(nc, "cio.alert.>")
    await gate._on_nats_reconnected()
    [raised] = [Alert.model_validate_json(m.data) for m in await after_step(gate, alerts, "cio.alert.warning")]
    assert raised.detail["key"] == "nats_lost" and raised.detail["lost_s"] == 4.5
