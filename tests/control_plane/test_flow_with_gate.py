"""The issue's "done when" flow end to end: a running gate process, real NATS, Redis and the database (SQLite,
and PostgreSQL in make test's second pass): propose, second officer approves and activates, and the gate's
heartbeat reports the new version; the kill switch reaches it the same way."""

import orjson
import pytest

from tests.control_plane.helpers import _wait, decide_buy, ok
from tests.control_plane.helpers import gate_version as _gate_version

pytestmark = pytest.mark.e2e


def test_officers_change_the_policy_and_the_gate_follows(api, active_v1, gate_process, redis_client):
    _wait(lambda: _gate_version(redis_client) == 1, 20)
    spec = active_v1.spec | {"description": "tighter"}
    proposed = ok(api["officer1"].post("/api/policy/propose", {"spec": spec, "rationale": "tighten"}, format="json"))
    version = proposed["version"]
    ok(api["officer2"].post(f"/api/policy/version/{version}/approve", {"reason": "reviewed"}, format="json"))
    ok(api["officer2"].post(f"/api/policy/version/{version}/activate", format="json"))
    # The gate does not poll Redis during the test, so only the cio.strategist.update notice can bring it the
    # new version. How fast, is measured by `make bench` (policy pickup).
    _wait(lambda: _gate_version(redis_client) == version, 20)
    gates = ok(api["viewer"].get("/api/gate"))
    assert gates["active_policy_version"] == version
    assert [g["policy_version"] for g in gates["gates"] if g["gate_id"] == "flow-gate"] == [version]

    halted = ok(
        api["officer1"].post(
            "/api/trading-state", {"scope": "global", "state": "halted", "reason": "drill"}, format="json"
        )
    )
    _wait(lambda: _gate_version(redis_client) == halted["version"], 20)
    beat = orjson.loads(redis_client.get("gate:heartbeat:flow-gate"))
    assert beat["trading_state"] == "halted"


def test_a_halt_with_redis_down_stops_approvals_at_once(api, active_v1, gate_process, redis_client, stack, redis_proc):
    _wait(lambda: _gate_version(redis_client) == 1, 20)
    assert decide_buy(stack.NATS_URL)["data"]["decision"] == "APPROVED"
    redis_proc.stop()
    # Without the notice the gate would keep approving on its copy: it stays fresh for the whole test.
    halted = api["agent"].post(
        "/api/trading-state", {"scope": "global", "state": "halted", "reason": "Redis down, halting"}, format="json"
    )
    body = orjson.loads(halted.content)
    assert halted.status_code == 201 and body["data"]["pending_state"]["state"] == "halted", body
    _wait(lambda: decide_buy(stack.NATS_URL)["error"]["code"] == "TRADING_HALTED", 20)
