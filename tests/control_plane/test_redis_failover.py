"""Issue 20 §3, Redis: the primary dies under real gates and the control plane, everything reaching Redis through
Sentinel (docs/redis-ha.md). Real servers from the wheel: a primary, a replica and three Sentinels with the
shipped ACL users; two gate processes and the control plane's own services, each with its own Redis identity.

The write lost to asynchronous replication is made deterministic: the replica's link is cut before v2 is
activated, so v2 exists on the primary alone when it is killed, and the replica promoted holds v1."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from channels_redis.core import RedisChannelLayer
from django.core.management import call_command
from kombu import Connection
from redis.exceptions import RedisError

from cio_kernel.redis_clients import celery_broker, channels_host, sync_client
from policies import services
from policies.models import PolicyEvent, PolicyVersion
from strategist.cycle import strategist_redis
from tests.control_plane.helpers import ROOT, _wait, decide_buy, redis_policy
from tests.factories import TEST_PUBLIC_KEY, write_audit_signing_key
from tests.sentinel_stack import SentinelStack

pytestmark = pytest.mark.e2e

GATES = ("ha-gate-1", "ha-gate-2")
# Long enough to ride out the failover on the copy it holds (about 1 s; 5 s when a split vote makes the Sentinels
# elect again), short enough to go stale while Redis holds an older version than the gates' floor: the state only
# the control plane's repair ends.
MAX_AGE_S = 8.0


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[SentinelStack]:
    stack = SentinelStack(tmp_path / "ha")
    yield stack
    stack.stop()


@pytest.fixture
def redis_url(ha: SentinelStack) -> str:
    """The control plane's own identity (`stack` points `REDIS_URL` at it); its host is the Sentinels' to say."""
    return ha.url("control")


@pytest.fixture
def through_sentinel(stack: Any, ha: SentinelStack) -> Any:
    stack.CIO_REDIS_SENTINEL = ha.config
    return stack


@pytest.fixture
def watcher(ha: SentinelStack) -> Any:
    """The test's eyes on Redis (heartbeats, `policy:active`), as the control plane, through the Sentinels too."""
    client = sync_client(ha.url("control"), ha.config, socket_timeout=1, socket_connect_timeout=1)
    yield client
    client.close()


@pytest.fixture
def gates(through_sentinel: Any, ha: SentinelStack, tmp_path: Path, active_v1: PolicyVersion) -> Iterator[None]:
    """Two gate processes as `gate`, polling Redis every 0.3 s through the Sentinels."""
    procs = []
    audit_key = write_audit_signing_key(tmp_path)  # all gates share one audit key (docs/access.md)
    for gate_id in GATES:
        env = {
            **os.environ,
            **ha.env,
            "NATS_URL": through_sentinel.NATS_URL,
            "REDIS_URL": ha.url("gate"),
            "CIO_GATE_ID": gate_id,
            "CIO_AUDIT_SPOOL_DIR": str(tmp_path / gate_id),
            "CIO_HEARTBEAT_INTERVAL_S": "0.2",
            "CIO_POLICY_REFRESH_S": "0.3",
            "CIO_POLICY_MAX_AGE_S": str(MAX_AGE_S),
            "CIO_POLICY_PUBLIC_KEY": TEST_PUBLIC_KEY,
            "CIO_POLICY_FLOOR_WAIT_S": "0",
            "CIO_AUDIT_SIGNING_KEY_FILE": str(audit_key),
        }
        log = (tmp_path / f"{gate_id}.log").open("wb")
        procs.append(
            subprocess.Popen([sys.executable, "-m", "gate"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    yield
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(20)


def beat(watcher: Any, gate_id: str) -> dict[str, Any]:
    raw = watcher.get(f"gate:heartbeat:{gate_id}")
    return orjson.loads(raw) if raw else {}


def every_gate(watcher: Any, condition: Any) -> bool:
    try:
        return all(condition(beat(watcher, gate_id)) for gate_id in GATES)
    except (RedisError, OSError, KeyError):  # Redis failing over, or a gate that has not beaten yet: not yet
        return False


def outcome(nats_url: str) -> str:
    """APPROVED, or the reason code of a refusal."""
    reply = decide_buy(nats_url, signal_id=f"sig-{uuid.uuid4().hex}")  # a new intent each time, never a duplicate
    return str(reply["data"]["decision"] if reply["success"] else reply["error"]["code"])


def activate(spec_change: dict[str, Any], users: Any, rationale: str) -> PolicyVersion:
    live = PolicyVersion.objects.order_by("-version").first()
    assert live is not None
    policy = services.propose(spec=live.spec | spec_change, by=users["officer1"], rationale=rationale)
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


def test_the_primary_dies_and_the_gates_decide_repair_and_follow(
    ha: SentinelStack, through_sentinel: Any, gates: None, watcher: Any, users: Any
) -> None:
    nats_url = through_sentinel.NATS_URL
    ha.wait_ready()
    _wait(lambda: every_gate(watcher, lambda b: b.get("policy_version") == 1), 20)
    replica = ha.admin(ha.replica)
    _wait(lambda: replica.get("policy:active") == watcher.get("policy:active"), 10)

    # v2 reaches the primary and both gates, never the replica.
    ha.cut_replica_link()
    v2 = activate({"description": "v2, lost to replication"}, users, "tighten")
    _wait(lambda: every_gate(watcher, lambda b: b.get("policy_version") == v2.version), 20)
    assert redis_policy(replica).version == 1  # type: ignore[union-attr]

    # The primary dies. Until the Sentinels name the replica, and right after, the gates decide on the v2 they hold.
    ha.kill_primary()
    decided = []
    while ha.primary_port() != ha.replica.port:
        decided.append(outcome(nats_url))
    ha.wait_promoted()
    decided.append(outcome(nats_url))
    assert len(decided) >= 2 and set(decided) == {"APPROVED"}, decided

    # The new primary holds v1: the gates refuse it (below their floor, v2) rather than go back, and, unable to
    # confirm v2, go stale: RETRY_SAFE until the control plane repairs Redis.
    assert redis_policy(watcher).version == 1  # type: ignore[union-attr]
    _wait(lambda: every_gate(watcher, lambda b: b["counters"]["policy_rollbacks"] >= 1), 20)
    assert every_gate(watcher, lambda b: b["policy_version"] == v2.version)
    _wait(lambda: outcome(nats_url) == "POLICY_STALE", 20)

    # One reconcile pass (what `reconcile_policies --watch` runs) sees Redis below the database's newest version,
    # writes v2 again through the new primary and records why; the gates confirm it and decide again.
    call_command("reconcile_policies")
    assert redis_policy(watcher).version == v2.version  # type: ignore[union-attr]
    anomaly = PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY, policy=v2).get()
    assert anomaly.detail["redis_version"] == 1 and anomaly.detail["outcome"] == f"v{v2.version} written again"
    _wait(lambda: outcome(nats_url) == "APPROVED", 20)

    # The next activation and the kill switch reach every gate through the new primary.
    v3 = activate({"description": "v3, after the failover"}, users, "after failover")
    _wait(lambda: every_gate(watcher, lambda b: b["policy_version"] == v3.version), 20)
    halt, _ = services.set_trading_state(scope="global", state="halted", by=users["officer1"], reason="drill")
    _wait(
        lambda: every_gate(watcher, lambda b: (b["policy_version"], b["trading_state"]) == (halt.version, "halted")), 20
    )
    assert outcome(nats_url) == "TRADING_HALTED"
    assert redis_policy(watcher).version == halt.version  # type: ignore[union-attr]

    # The other components, each with its own identity, reach the new primary the same way.
    through_sentinel.CIO_STRATEGIST_REDIS_URL = ha.url("strategist")
    strategist = strategist_redis()
    strategist.set("strategist:failover-probe", "1", ex=60)
    assert replica.get("strategist:failover-probe") == b"1"
    strategist.close()
    broker_url, options = celery_broker(ha.url("celery"), ha.config)
    with Connection(broker_url, transport_options=options) as broker, broker.SimpleQueue("celery-failover") as queue:
        queue.put({"probe": 1})
        message = queue.get(timeout=10)
        message.ack()
        assert message.payload == {"probe": 1}

    async def feed_round_trip() -> object:
        layer = RedisChannelLayer(hosts=[channels_host(ha.url("feed"), ha.config, socket_timeout=5)])
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "probe"})
        received = await layer.receive(channel)
        return received

    assert asyncio.run(feed_round_trip()) == {"type": "probe"}
