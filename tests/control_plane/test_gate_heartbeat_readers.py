"""What the control plane shows and trusts of `gate:heartbeat:*` when the entries were written with the gate's
Redis password alone (Valkey with the shipped ACLs; the control plane reads with its own identity): `/api/health`
counts only verified heartbeats, `/api/gate` lists the others as unverified, and `audit_verify --live-heads`
takes heads from verified heartbeats only."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from audit.management.commands.audit_verify import _live_heads
from cio_kernel.policy.signing import PolicyVerifier
from tests.control_plane.helpers import body
from tests.factories import TEST_AUDIT_PUBLIC_KEY, TEST_AUDIT_SIGNER, signed_heartbeat
from tests.secured_stack import Secured


@pytest.fixture
def secured(tmp_path: Path, settings: Any) -> Iterator[Secured]:
    stack = Secured(tmp_path)
    settings.REDIS_URL = stack.redis_url("control")
    settings.CIO_AUDIT_PUBLIC_KEY = TEST_AUDIT_PUBLIC_KEY
    yield stack
    stack.stop()


def test_only_verified_heartbeats_count_and_give_audit_heads(api, secured):
    gate = sync_redis.Redis.from_url(secured.redis_url("gate"))
    try:
        gate.set("gate:heartbeat:g1", signed_heartbeat("g1", ttl_s=10, audit_chain="g1.1", audit_seq=5), ex=10)
        # A genuine-looking signed beat kept forever, claiming a head far beyond the store: a false "tail" finding
        # (or a lower head hiding a cut end) if it were trusted.
        gate.set("gate:heartbeat:g2", signed_heartbeat("g2", audit_chain="g2.1", audit_seq=9000))
        gate.set("gate:heartbeat:g3", b'{"gate_id": "g3"}', ex=10)
    finally:
        gate.close()

    checks = api["anonymous"].get("/api/health").json()["data"]["checks"]
    assert checks["gates"] == 1 and checks["unverified_gates"] == 2
    data = body(api["viewer"].get("/api/gate"))["data"]
    assert [g["gate_id"] for g in data["gates"]] == ["g1"]
    assert {u["gate_id"] for u in data["unverified_gates"]} == {"g2", "g3"}

    heads, refused = asyncio.run(_live_heads(PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])))
    assert heads == {"g1.1": 5}
    assert sorted(line.split(":")[2] for line in refused) == ["g2", "g3"]
