"""The gate's version floor over real NATS and Valkey: an older, genuinely signed policy put back in Redis (what
whoever holds the Redis `control` password can do) is never adopted — not by a running gate, not by a restarted
one, not by a brand-new one — and nobody without the signing key can raise a gate's floor to lock it out.
The real-process replay, with the control plane, is tests/control_plane/test_policy_rollback.py."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from cio_kernel.contracts.alert import Alert
from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicySeal
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.policy.store import build_document, write_active_policy
from cio_kernel.reason_codes import ReasonCode as C
from gate.config import GateSettings
from gate.runtime.policy_floor import floor_file
from gate.runtime.service import Gate
from tests.factories import TEST_SIGNER, live_intent_body, make_spec, signed_document
from tests.integration.helpers import ManualClock, activate, collect, request, wait_for_policy, wait_until

HALT_BTC = {"symbols": {"BTCUSDT": {"trading_state": "halted"}}}

Start = Callable[..., Awaitable[Gate]]


@pytest.fixture
async def start_gate(gate_settings: GateSettings) -> AsyncIterator[Start]:
    """Gates that a test may stop and start again on the same spool; whatever still runs is stopped at the end."""
    running: list[Gate] = []

    async def start(**overrides: object) -> Gate:
        clock = overrides.pop("clock", None)
        gate = Gate(gate_settings.model_copy(update=overrides), clock=clock)  # type: ignore[arg-type]
        await asyncio.wait_for(gate.start(), 20)
        running.append(gate)
        return gate

    yield start
    for gate in running:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gate.stop(), 30)


async def _stop(gate: Gate) -> None:
    await gate.stop()
    gate.stop = _already_stopped  # type: ignore[method-assign]


async def _already_stopped() -> None:
    return None


async def _v1_then_btc_halted(redis, nc) -> bytes:
    """v1 (everything open), then v2 halting BTCUSDT; returns v1's document as Redis held it (what an attacker
    with the `control` password reads, and later writes back)."""
    await activate(redis, nc, make_spec(), 1)
    old = await redis.get(ACTIVE_POLICY_KEY)
    await activate(redis, nc, make_spec(**HALT_BTC), 2)
    return bytes(old)


async def test_a_restarted_gate_never_adopts_an_older_version_put_back_in_redis(start_gate, redis, nc, tmp_path):
    gate = await start_gate(gate_id="gate-1")
    old = await _v1_then_btc_halted(redis, nc)
    await wait_for_policy(gate, 2)
    await wait_until(lambda: not gate.policy_sync.floor.unwritten, what="the floor written to the spool")
    await _stop(gate)
    await redis.set(ACTIVE_POLICY_KEY, old)  # the replay: a genuine signature, an older version

    # The default gate id has the pid in it: the successor is another id, on the same volume.
    successor = await start_gate(gate_id="gate-1-successor")
    assert successor.policy_sync.floor.version == 2
    assert successor.policy_sync.floor.source == f"file {floor_file(tmp_path / 'spool', 'gate-1').name}"
    assert successor.policy_sync.policy is None and successor.policy_sync.rollbacks >= 1
    envelope, _ = await request(nc, live_intent_body(signal_id="after-replay"))
    assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.NO_POLICY  # never APPROVED under v1

    # The control plane writes the newest version back (signed anew): the gate adopts it, the halt holds.
    await publish_policy(redis, nc, signed_document(make_spec(**HALT_BTC), 2, "control-plane"))
    await wait_for_policy(successor, 2)
    envelope, _ = await request(nc, live_intent_body(signal_id="restored"))
    assert [r.code for r in envelope.data.reasons] == [C.TRADING_HALTED]


async def test_a_running_gate_refuses_the_replay_alerts_and_goes_stale_rather_than_go_back(start_gate, redis, nc):
    clock = ManualClock(wall=time.time())
    gate = await start_gate(clock=clock, policy_refresh_s=3600.0)
    old = await _v1_then_btc_halted(redis, nc)
    await wait_for_policy(gate, 2)
    alerts = await collect(nc, "cio.alert.critical")
    await redis.set(ACTIVE_POLICY_KEY, old)
    await gate.policy_sync.load("test")
    assert gate.policy_sync.policy.version == 2 and gate.policy_sync.rollbacks == 1
    assert gate.heartbeat().counters.policy_rollbacks == 1
    assert await gate.alert_step() >= 1
    [alert] = [Alert.model_validate_json(m.data) for m in await alerts.wait_for(1)]
    assert alert.detail["key"] == "policy_rollback" and alert.source == f"gate:{gate.settings.gate_id}"
    envelope, _ = await request(nc, live_intent_body(signal_id="still-v2"))
    assert [r.code for r in envelope.data.reasons] == [C.TRADING_HALTED]  # still judged under v2
    clock.advance(gate.settings.policy_max_age_s + 1)  # v2 is never confirmed by what Redis holds now
    envelope, _ = await request(nc, live_intent_body(signal_id="stale"))
    assert envelope.error.code == C.POLICY_STALE


async def test_a_brand_new_gate_learns_the_floor_from_a_peer_before_deciding(start_gate, redis, nc, tmp_path):
    peer = await start_gate(gate_id="peer")
    old = await _v1_then_btc_halted(redis, nc)
    await wait_for_policy(peer, 2)
    await redis.set(ACTIVE_POLICY_KEY, old)

    # Its own, empty volume: nothing on disk. It listens to its peers' heartbeats (0.2 s apart) for 2 s.
    newcomer = await start_gate(gate_id="newcomer", audit_spool_dir=tmp_path / "new-spool", policy_floor_wait_s=2.0)
    assert newcomer.policy_sync.learning_floor
    await wait_until(lambda: newcomer.policy_sync.rollbacks >= 1, timeout_s=10, what="v1 refused after the wait")
    assert not newcomer.policy_sync.learning_floor and newcomer.policy_sync.policy is None
    assert newcomer.policy_sync.floor.version == 2 and newcomer.policy_sync.floor.source == "gate peer"
    await publish_policy(redis, nc, signed_document(make_spec(**HALT_BTC), 2, "control-plane"))
    await wait_for_policy(newcomer, 2)


async def test_with_nobody_to_ask_a_brand_new_gate_takes_what_redis_holds_after_the_wait(
    start_gate, redis, nc, tmp_path
):
    await activate(redis, nc, make_spec(), 1)
    gate = await start_gate(policy_floor_wait_s=1.0)  # a fresh single-gate stack: no peer, no notice
    envelope, _ = await request(nc, live_intent_body(signal_id="while-learning"))
    assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.NO_POLICY
    await wait_for_policy(gate, 1)
    envelope, _ = await request(nc, live_intent_body(signal_id="after"))
    assert envelope.data.decision == "APPROVED"
    await wait_until(lambda: not gate.policy_sync.floor.unwritten, what="the floor written to the spool")
    path = floor_file(tmp_path / "spool", gate.settings.gate_id)
    written = PolicySeal.model_validate_json(path.read_bytes())
    assert written.version == 1 and written.checksum == gate.policy_sync.policy.checksum
    assert list(path.parent.glob("policy-floor.*.tmp")) == []


async def test_the_control_plane_notice_ends_a_brand_new_gate_s_wait(start_gate, redis, nc):
    gate = await start_gate(policy_floor_wait_s=3600.0)  # only the notice can end it within the test
    await activate(redis, nc, make_spec(), 3)  # publish_policy sends the signed seal with the notice
    await wait_for_policy(gate, 3)
    assert not gate.policy_sync.learning_floor and gate.policy_sync.floor.version == 3


async def test_a_running_gate_that_missed_an_activation_learns_it_from_a_peer(start_gate, redis, nc):
    first = await start_gate(gate_id="first", policy_refresh_s=3600.0)
    second = await start_gate(gate_id="second", policy_refresh_s=3600.0)
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(first, 1)
    await wait_for_policy(second, 1)
    # v2 lands in Redis with no notice (say it was lost); only `first` happens to read Redis.
    assert await write_active_policy(redis, signed_document(make_spec(**HALT_BTC), 2))
    await first.policy_sync.load("test")
    await wait_for_policy(second, 2)  # from first's heartbeat: its floor, then a read of Redis
    assert second.policy_sync.floor.source == "gate first"


def _forged_floors() -> list[dict]:
    genuine = signed_document(make_spec(), 7).seal()
    assert genuine is not None
    other_key = build_document(make_spec(), 10**15, "attacker", signer=PolicySigner.generate()).seal()
    assert other_key is not None
    return [
        other_key.model_dump(mode="json"),
        {**genuine.model_dump(mode="json"), "version": 10**15},  # a genuine signature, another version
        {**genuine.model_dump(mode="json"), "signature": "AAAA", "version": 10**15},
    ]


async def test_nobody_without_the_signing_key_can_raise_a_gate_s_floor_to_lock_it_out(start_gate, redis, nc):
    gate = await start_gate(gate_id="victim")
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    for n, forged in enumerate(_forged_floors()):
        beat = {**gate.heartbeat().model_dump(mode="json"), "gate_id": f"impostor-{n}", "policy_floor": forged}
        await nc.publish("cio.gate.heartbeat", orjson.dumps(beat))
        await nc.publish("cio.strategist.update", orjson.dumps({"version": 10**15, "checksum": "x", "seal": forged}))
    await nc.publish("cio.gate.heartbeat", b"not json")
    # Each subject is handled in order: a genuine notice after the forged ones, and a genuine floor from an honest
    # peer after the forged heartbeats (v3 is in Redis without a notice: only that heartbeat can explain a load).
    await activate(redis, nc, make_spec(**HALT_BTC), 2)
    await wait_for_policy(gate, 2)
    v3 = signed_document(make_spec(**HALT_BTC, min_confidence=0.6), 3)
    assert await write_active_policy(redis, v3)
    honest = {**gate.heartbeat().model_dump(mode="json"), "gate_id": "honest", "policy_floor": v3.seal().model_dump()}
    await nc.publish("cio.gate.heartbeat", orjson.dumps(honest, default=str))
    await wait_for_policy(gate, 3)
    assert gate.policy_sync.floor.version == 3 and gate.policy_sync.rollbacks == 0


async def test_an_unreadable_or_foreign_floor_file_is_ignored_and_the_floor_learned_again(
    start_gate, redis, nc, tmp_path
):
    spool = tmp_path / "spool"
    spool.mkdir()
    floor_file(spool, "torn").write_bytes(b'{"version": 9, "checks')
    foreign = build_document(make_spec(), 10**15, "attacker", signer=PolicySigner.generate()).seal()
    assert foreign is not None
    floor_file(spool, "foreign").write_text(foreign.model_dump_json())
    await activate(redis, nc, make_spec(), 1)
    gate = await start_gate(policy_floor_wait_s=0.5)
    assert gate.policy_sync.floor.unreadable == 2 and gate.policy_sync.learning_floor  # as if brand-new
    await wait_for_policy(gate, 1)
    assert gate.policy_sync.floor.version == 1


def test_a_floor_file_holds_the_control_plane_s_signature(tmp_path: Path):
    from cio_kernel.policy.signing import PolicyVerifier
    from gate.runtime.policy_floor import PolicyFloor

    verifier = PolicyVerifier([TEST_SIGNER.public_raw])
    floor = PolicyFloor(tmp_path, "g", verifier)
    seal = signed_document(make_spec(), 4).seal()
    assert seal is not None and floor.raise_to(seal, "test")
    floor.persist()
    tampered = orjson.loads(floor_file(tmp_path, "g").read_bytes())
    assert PolicySeal.model_validate(tampered).verified_by(verifier)
    tampered["version"] = 5
    floor_file(tmp_path, "other").write_bytes(orjson.dumps(tampered))
    again = PolicyFloor(tmp_path, "g2", verifier)
    again.load()
    assert again.version == 4 and again.unreadable == 1
