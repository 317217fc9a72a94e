"""No rollback by replay: whoever holds the Redis `control` password can write back an older policy the control
plane genuinely signed. The whole replay with real processes on the shipped least-privilege configuration (NATS
and Valkey with deploy/access.py's identities): gate processes restarted after it and started brand-new into it
refuse the old version, the control plane never reconciles back to it, writes the newest again and raises a
critical alert, and a kill switch made after it is built on the newest policy (docs/policy.md, "No rollback")."""

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import redis as sync_redis

from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.policy.signing import PolicyVerifier
from deploy import access
from policies import services
from policies.models import PolicyEvent, PolicyVersion, Status
from tests.control_plane.helpers import ROOT, AlertListener, _wait, redis_policy
from tests.factories import TEST_PUBLIC_KEY, TEST_SIGNER, live_intent_body, make_spec
from tests.secured_stack import Secured

pytestmark = pytest.mark.e2e

TRUST = PolicyVerifier([TEST_SIGNER.public_raw])


def _spec(**rules: Any) -> dict:
    return make_spec(**rules).model_dump(mode="json", by_alias=True)


def _v1_then_btc_halted(users: dict, redis_client: Any) -> bytes:
    """v1 through four eyes, then a kill switch on BTCUSDT (v2). Returns v1 as Redis held it: what anyone with
    the `control` password can read, keep and write back later."""
    v1 = services.propose(spec=_spec(min_confidence=0.5), by=users["officer1"], rationale="initial")
    services.approve(v1, by=users["officer2"])
    services.activate(v1, by=users["officer2"])
    old = redis_client.get(ACTIVE_POLICY_KEY)
    halted, _ = services.set_trading_state(
        scope="symbol", key="BTCUSDT", state="halted", by=users["officer1"], reason="exchange incident"
    )
    assert halted.version == 2
    return old


# -- the secured stack ---------------------------------------------------------------------------------------------
@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    (tmp_path / "secured").mkdir()
    stack = Secured(tmp_path / "secured")
    yield stack
    stack.stop()


@pytest.fixture
def control_plane(settings: Any, secured: Secured, tmp_path: Path) -> Any:
    """The control plane connects as `control`, the identity the attacker's Redis password belongs to."""
    settings.NATS_URL = secured.nats_url("control")
    settings.REDIS_URL = secured.redis_url("control")
    settings.CIO_NATS_INBOX_PREFIX = access.NATS_ROLES["control"].inbox_prefix
    settings.CIO_ACTIVATION_TIMEOUT_S = 2.0
    key_file = tmp_path / "policy-signing.key"
    key_file.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    settings.CIO_POLICY_SIGNING_KEY_FILE = key_file
    return settings


@pytest.fixture
def attacker(secured: Secured) -> Iterator[Any]:
    """Redis with the `control` password, and nothing else: no NATS identity, no signing key."""
    client = sync_redis.Redis.from_url(secured.redis_url("control"))
    yield client
    client.close()


class Gates:
    """Real `python -m gate` processes as the `gate` identity."""

    def __init__(self, secured: Secured, tmp_path: Path) -> None:
        self._secured = secured
        self._tmp = tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, gate_id: str, spool: str, **env: str) -> None:
        environment = {
            **os.environ,
            "NATS_URL": self._secured.nats_url("gate"),
            "REDIS_URL": self._secured.redis_url("gate"),
            "CIO_NATS_INBOX_PREFIX": access.NATS_ROLES["gate"].inbox_prefix,
            "CIO_GATE_ID": gate_id,
            "CIO_AUDIT_SPOOL_DIR": str(self._tmp / spool),
            "CIO_HEARTBEAT_INTERVAL_S": "0.2",
            "CIO_POLICY_REFRESH_S": "0.5",
            "CIO_POLICY_PUBLIC_KEY": TEST_PUBLIC_KEY,
            "CIO_POLICY_FLOOR_WAIT_S": "0",
            **env,
        }
        log = (self._tmp / f"{gate_id}.log").open("ab")
        self.procs[gate_id] = subprocess.Popen(
            [sys.executable, "-m", "gate"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, gate_id: str) -> None:
        proc = self.procs.pop(gate_id)
        proc.terminate()
        assert proc.wait(30) == 0

    def log(self, gate_id: str) -> str:
        return (self._tmp / f"{gate_id}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(10)


@pytest.fixture
def gates(secured: Secured, tmp_path: Path) -> Iterator[Gates]:
    running = Gates(secured, tmp_path)
    yield running
    running.close()


def beat(redis_client: Any, gate_id: str) -> GateHeartbeat | None:
    raw = redis_client.get(f"gate:heartbeat:{gate_id}")
    return GateHeartbeat.model_validate_json(raw) if raw else None


def wait_beat(redis_client: Any, gate_id: str, condition: Any) -> GateHeartbeat:
    """The gate's heartbeat (stored in Redis by the gate; the `control` identity may only read it) once it shows
    `condition`. The timeout only bounds a failing test."""
    _wait(lambda: (b := beat(redis_client, gate_id)) is not None and condition(b), 30)
    found = beat(redis_client, gate_id)
    assert found is not None
    return found


def decide_btc_buy(secured: Secured, signal_id: str) -> dict:
    """One intent as a strategy sends it (the `strategy` identity)."""

    async def ask() -> dict:
        client = await nats.connect(
            secured.nats_url("strategy"), inbox_prefix=access.NATS_ROLES["strategy"].inbox_prefix
        )
        try:
            body = live_intent_body(signal_id=signal_id, timestamp=datetime.now(UTC).isoformat())
            reply = await client.request("intent.trading.BTCUSDT", orjson.dumps(body), timeout=5)
            return orjson.loads(reply.data)
        finally:
            await client.close()

    return asyncio.run(ask())


@pytest.fixture
def alerts(secured: Secured) -> Iterator[AlertListener]:
    listener = AlertListener(secured.nats_url("alerting"), access.NATS_ROLES["alerting"].inbox_prefix)
    yield listener
    listener.close()


# -- the replay ----------------------------------------------------------------------------------------------------
def test_an_older_signed_policy_put_back_in_redis_is_refused_by_every_gate_and_undone_by_the_control_plane(
    control_plane, users, attacker, gates, alerts, secured
):
    gates.start("gate-a", "spool-a")
    old = _v1_then_btc_halted(users, attacker)
    wait_beat(attacker, "gate-a", lambda b: b.policy_version == 2)
    assert decide_btc_buy(secured, "before")["error"]["code"] == "TRADING_HALTED"

    gates.stop("gate-a")
    attacker.set(ACTIVE_POLICY_KEY, old)  # the replay: v1, genuinely signed, before the halt

    # Restarted on the same volume (the default gate id has the pid in it: another id): v1 is below its floor.
    gates.start("gate-a-restarted", "spool-a")
    restarted = wait_beat(attacker, "gate-a-restarted", lambda b: b.counters.policy_rollbacks >= 1)
    assert restarted.policy_version is None and restarted.policy_floor is not None
    assert restarted.policy_floor.version == 2
    # A brand-new gate on its own empty volume, into the replayed stack: it learns v2 from its peer's heartbeat.
    gates.start("gate-b", "spool-b", CIO_POLICY_FLOOR_WAIT_S="2")
    newcomer = wait_beat(attacker, "gate-b", lambda b: b.counters.policy_rollbacks >= 1)
    assert newcomer.policy_version is None and newcomer.policy_floor is not None
    assert newcomer.policy_floor.version == 2
    for n in range(6):  # the queue group spreads them over both gates: neither approves under v1
        reply = decide_btc_buy(secured, f"replayed-{n}")
        assert reply["data"]["decision"] == "RETRY_SAFE" and reply["error"]["code"] == "NO_POLICY", reply
    _wait(lambda: "policy_rollback" in alerts.keys("gate:gate-a-restarted"), 30)

    # The control plane's reconciler (`manage.py reconcile_policies --watch 5` under `make up`).
    services.reconcile_policies()
    assert PolicyVersion.objects.get(status=Status.ACTIVE).version == 2  # the database did not go back to v1
    assert PolicyVersion.objects.get(version=1).status == Status.SUPERSEDED
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.RECONCILED).exists()
    anomaly = PolicyEvent.objects.get(kind=PolicyEvent.Kind.ANOMALY)
    assert anomaly.policy.version == 2 and anomaly.detail["redis_version"] == 1 and anomaly.detail["floor"] == 2
    assert anomaly.detail["outcome"] == "v2 written again" and anomaly.detail["alert"] == "sent"
    stored = redis_policy(attacker)
    assert stored.version == 2 and stored.verified_by(TRUST)
    assert stored.spec.symbols["BTCUSDT"].trading_state == "halted"
    _wait(lambda: "policy_rollback" in alerts.keys("control-plane"), 30)

    for gate_id in ("gate-a-restarted", "gate-b"):
        wait_beat(attacker, gate_id, lambda b: b.policy_version == 2)
    for n in range(4):
        assert decide_btc_buy(secured, f"restored-{n}")["error"]["code"] == "TRADING_HALTED"
    services.reconcile_policies()  # nothing wrong any more: nothing new recorded
    assert PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY).count() == 1


def test_a_kill_switch_after_a_replay_is_built_on_the_newest_policy(stack, users, redis_client):
    old = _v1_then_btc_halted(users, redis_client)
    redis_client.set(ACTIVE_POLICY_KEY, old)
    halted, created = services.set_trading_state(
        scope="symbol", key="ETHUSDT", state="halted", by=users["agent"], reason="second incident"
    )
    assert created and halted.version == 3
    stored = redis_policy(redis_client)
    assert stored.version == 3 and stored.verified_by(TRUST)
    assert stored.spec.symbols["BTCUSDT"].trading_state == "halted"  # v2's halt was not undone by the replay
    assert stored.spec.symbols["ETHUSDT"].trading_state == "halted"
    assert halted.based_on.version == 2
    assert [v.version for v in PolicyVersion.objects.filter(status=Status.ACTIVE)] == [3]
    [anomaly] = PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY)
    assert anomaly.detail["redis_version"] == 1 and anomaly.detail["outcome"] == "v2 written again"


def test_an_act_that_fails_after_the_replay_leaves_the_anomaly_on_record(stack, users, redis_client):
    old = _v1_then_btc_halted(users, redis_client)
    overtaken = services.propose(spec=_spec(min_confidence=0.4), by=users["officer1"])
    services.approve(overtaken, by=users["officer2"])
    services.set_trading_state(scope="global", state="halted", by=users["agent"], reason="incident")
    redis_client.set(ACTIVE_POLICY_KEY, old)
    from core import errors

    with pytest.raises(errors.InvalidTransitionError):
        services.activate(overtaken, by=users["officer2"])  # refused: a newer halt is live
    assert PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY, detail__redis_version=1).count() == 1
    assert redis_policy(redis_client).spec.global_rules.trading_state == "halted"


def test_with_nats_down_the_replay_is_recorded_and_the_database_stands(stack, users, redis_client, nats_proc):
    old = _v1_then_btc_halted(users, redis_client)
    redis_client.set(ACTIVE_POLICY_KEY, old)
    nats_proc.stop()  # nothing can be activated (NATS is connected first) and no alert can leave
    services.reconcile_policies()
    anomaly = PolicyEvent.objects.get(kind=PolicyEvent.Kind.ANOMALY)
    assert anomaly.detail["outcome"].startswith("v2 could not be written again")
    assert anomaly.detail["alert"].startswith("failed")
    assert PolicyVersion.objects.get(status=Status.ACTIVE).version == 2
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.RECONCILED).exists()
    nats_proc.start()
    services.reconcile_policies()  # the next pass repairs it
    assert redis_policy(redis_client).version == 2
    assert PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY).count() == 2


def test_a_policy_redis_lost_altogether_is_written_again(stack, users, redis_client):
    """A failover to a replica that never received the policy, or a restart without persistence, leaves Redis with
    none: gates cannot confirm theirs and go stale, so the reconcile pass writes the newest again (docs/redis-ha.md)."""
    _v1_then_btc_halted(users, redis_client)
    redis_client.delete(ACTIVE_POLICY_KEY)
    services.reconcile_policies()
    stored = redis_policy(redis_client)
    assert stored.version == 2 and stored.verified_by(TRUST)
    assert stored.spec.symbols["BTCUSDT"].trading_state == "halted"
    [anomaly] = PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY)
    assert anomaly.detail["redis_version"] is None and anomaly.detail["outcome"] == "v2 written again"
    assert anomaly.detail["alert"] == "sent"
    services.reconcile_policies()  # nothing wrong any more: nothing new recorded
    assert PolicyEvent.objects.filter(kind=PolicyEvent.Kind.ANOMALY).count() == 1
