"""The control plane after a break-glass halt made without it: its reconciler adopts the halted version Redis
runs and records who broke the glass and why. And `/api/health`, what the canary checks."""

import asyncio
import base64

import pytest

from canary.halt import Outcome, halt
from policies import services
from policies.models import PolicyEvent, PolicyVersion, Status
from tests.factories import TEST_SIGNER, signed_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_break_glass_halt_is_adopted_and_recorded_when_the_control_plane_returns(
    active_v1, stack, gate_process, tmp_path
):
    key = tmp_path / "break-glass.key"
    key.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    result = asyncio.run(halt(stack.NATS_URL, stack.REDIS_URL, key, "alice", "cluster unreachable", listen_s=1.0))
    assert (result.outcome, result.version, result.persisted) == (Outcome.HALTED, 2, True), result.lines
    assert result.confirmed == ("flow-gate",)  # the gate beating meanwhile said it runs v2, halted

    services.reconcile_policies()
    adopted = PolicyVersion.objects.get(version=2)
    assert adopted.status == Status.ACTIVE and adopted.parsed_spec.global_rules.trading_state == "halted"
    assert "break-glass:alice: cluster unreachable" in adopted.rationale
    event = PolicyEvent.objects.get(policy=adopted, kind=PolicyEvent.Kind.RECONCILED)
    assert event.detail["activated_by"] == "break-glass:alice: cluster unreachable"
    assert PolicyVersion.objects.get(version=1).status == Status.SUPERSEDED


def test_health_needs_no_token_and_says_what_it_checked(api, stack, redis_client):
    response = api["anonymous"].get("/api/health")
    assert response.status_code == 200
    body = response.json()
    checks = {"database": "ok", "gates": 0, "unverified_gates": 0}
    assert body["success"] is True and body["data"] == {"status": "ok", "checks": checks}
    redis_client.set("gate:heartbeat:g1", signed_heartbeat("g1"), ex=10)
    # Written without expiry, as only someone with the gate's Redis password and not its key would.
    redis_client.set("gate:heartbeat:g2", signed_heartbeat("g2"))
    checks = api["anonymous"].get("/api/health").json()["data"]["checks"]
    assert checks["gates"] == 1 and checks["unverified_gates"] == 1


def test_health_is_never_refused_for_other_clients_traffic(api, stack, monkeypatch):
    """Behind an ingress every client shares one address: anonymous traffic over the REST rate must not turn the
    canary's health check into a 429 (an alarm for nothing)."""
    from brakes.throttles import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "5/min", "user": "5/min"})
    statuses = {api["anonymous"].get("/api/health").status_code for _ in range(20)}
    assert statuses == {200}
    schema = [api["anonymous"].get("/api/schema").status_code for _ in range(10)]
    assert schema.count(429) == 5  # the rest of the API is still braked at that rate
