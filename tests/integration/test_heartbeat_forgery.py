"""The gate's Redis password cannot make a gate look live: heartbeats in `gate:heartbeat:*` count only when a
gate signed them, their key expires as the gate asked, and they are fresh (cio_kernel/heartbeats.py). Every
forgery here is written with the `gate` Redis identity alone, against the shipped ACLs; the reader is the control
plane's identity."""

from datetime import datetime

import orjson
import redis.asyncio as aioredis

from cio_kernel import heartbeat_seal
from cio_kernel.heartbeats import CLOCK_SKEW_S, GateBeats, read_gate_heartbeats
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from tests.factories import write_audit_signing_key
from tests.integration.helpers import wait_until
from tests.integration.secured_gate import gate_beats, live_gate_ids, start_gate


def _problems(beats: GateBeats) -> dict[str, str]:
    return {u.gate_id: u.problem for u in beats.unverified}


async def test_a_real_gate_is_live_and_verified(secured, gate_and_control_redis, tmp_path):
    _, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path)
    try:
        await wait_until(lambda: live_gate_ids(control), what="the gate's heartbeat verified")
        beats = await gate_beats(control)
        [beat] = beats.live
        assert beat.gate_id == "real-gate" and beat.signature and beat.ttl_s == 3 and beats.unverified == []
    finally:
        await gate.stop()


async def test_heartbeats_planted_with_the_gate_password_are_never_live(secured, gate_and_control_redis, tmp_path):
    attacker, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path)
    try:
        await wait_until(lambda: live_gate_ids(control), what="the gate's heartbeat verified")
        genuine = await attacker.get("gate:heartbeat:real-gate")  # the attacker can read the real one
    finally:
        await gate.stop()
    body = orjson.loads(genuine)
    imaginary = {**body, "gate_id": "ghost"}
    imaginary.pop("signature")
    forged_key = PolicySigner.generate()  # a key of the attacker's own
    await attacker.set("gate:heartbeat:ghost", orjson.dumps(imaginary))  # unsigned, never expires
    await attacker.set("gate:heartbeat:copy", genuine, ex=3)  # the real gate's signed beat under another name
    await attacker.set(
        "gate:heartbeat:self-signed", heartbeat_seal.seal({**body, "gate_id": "self-signed"}, forged_key), ex=3
    )
    tampered = {**body, "audit_seq": body["audit_seq"] + 1000}
    await attacker.set("gate:heartbeat:real-gate", orjson.dumps(tampered), ex=3)

    beats = await gate_beats(control)
    assert beats.live == []
    problems = _problems(beats)
    assert problems["ghost"].startswith("kept in Redis without expiry")
    assert problems["copy"].startswith("names gate 'real-gate'")
    assert problems["self-signed"].startswith("its signature does not verify")
    assert problems["real-gate"].startswith("its signature does not verify")

    # The genuine beat put back without expiry (the gate died; its key would have vanished): refused too.
    await attacker.set("gate:heartbeat:real-gate", genuine)
    assert _problems(await gate_beats(control))["real-gate"].startswith("kept in Redis without expiry")
    # Put back with a time to live longer than the gate asked for: refused.
    await attacker.set("gate:heartbeat:real-gate", genuine, ex=3600)
    assert _problems(await gate_beats(control))["real-gate"].startswith("kept in Redis for longer")
    # Put back the way the gate writes it, again and again: it counts only while it is as fresh as the gate's own
    # key could be; read at the moment the gate's key would have expired (plus the clock allowance), it is stale.
    await attacker.set("gate:heartbeat:real-gate", genuine, ex=3)
    written = orjson.loads(genuine)
    ts = datetime.fromisoformat(written["ts"]).timestamp()
    assert [b.gate_id for b in (await gate_beats(control, now=ts + 1)).live] == ["real-gate"]
    later = await gate_beats(control, now=ts + written["ttl_s"] + CLOCK_SKEW_S + 0.5)
    assert later.live == [] and _problems(later)["real-gate"].startswith("stale")
    earlier = await gate_beats(control, now=ts - CLOCK_SKEW_S - 0.5)  # a beat from the future is no fresher
    assert earlier.live == [] and _problems(earlier)["real-gate"].startswith("stale")


async def test_a_gate_without_its_signing_key_is_shown_unverified(secured, gate_and_control_redis, tmp_path):
    _, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path, gate_id="keyless", audit_signing_key_file=tmp_path / "absent.key")
    try:
        await wait_until(lambda: _problems_of(control), what="the keyless gate's heartbeat seen")
        beats = await gate_beats(control)
        assert beats.live == [] and _problems(beats)["keyless"].startswith("not signed")
        [entry] = beats.unverified
        assert entry.beat is not None and entry.beat.gate_id == "keyless"  # shown for what it claims, not trusted
    finally:
        await gate.stop()


async def _problems_of(control: aioredis.Redis) -> dict[str, str]:
    return _problems(await gate_beats(control))


async def test_without_a_trusted_gate_key_nothing_is_verified(secured, gate_and_control_redis, tmp_path):
    _, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path)
    try:
        await wait_until(lambda: live_gate_ids(control), what="the gate's heartbeat verified")
        beats = await read_gate_heartbeats(control, None)
        assert beats.live == [] and _problems(beats)["real-gate"].startswith("cannot be verified")
    finally:
        await gate.stop()


def test_the_signed_body_is_the_one_on_the_wire():
    signer = PolicySigner.generate()
    body = {"gate_id": "g", "ts": "2026-12-06T06:00:00.123456Z", "uptime_s": 0.1 + 0.2, "counters": {"b": 1, "a": 2}}
    wire = heartbeat_seal.seal(body, signer)
    assert heartbeat_seal.verify(orjson.loads(wire), PolicyVerifier([signer.public_raw]))
    assert not heartbeat_seal.verify({**orjson.loads(wire), "uptime_s": 0.3}, PolicyVerifier([signer.public_raw]))
    other = PolicyVerifier([PolicySigner.generate().public_raw])
    assert not heartbeat_seal.verify(orjson.loads(wire), other)


async def test_a_killed_gate_process_is_not_kept_alive_by_its_last_heartbeat(secured, gate_and_control_redis, tmp_path):
    """A real `python -m gate` under the gate identity, killed: its last signed beat, put back with the gate's
    password the way the gate wrote it, counts only as long as the gate's own key would have lived."""
    attacker, control = gate_and_control_redis
    observer = await secured.connect("canary")
    key_file = write_audit_signing_key(tmp_path)
    process = await secured.spawn_gate("proc-gate", observer, CIO_AUDIT_SIGNING_KEY_FILE=str(key_file))

    async def verified() -> bool:
        return await live_gate_ids(control) == ["proc-gate"]

    await wait_until(verified, timeout_s=20, what="the process's heartbeat verified")
    process.kill()
    last = await attacker.get("gate:heartbeat:proc-gate")
    assert last is not None
    await attacker.set("gate:heartbeat:proc-gate", last)  # kept forever
    assert _problems(await gate_beats(control))["proc-gate"].startswith("kept in Redis without expiry")
    body = orjson.loads(last)
    ts = datetime.fromisoformat(body["ts"]).timestamp()
    await attacker.set("gate:heartbeat:proc-gate", last, ex=3)  # refreshed like a live gate's, forever after
    gone = await gate_beats(control, now=ts + body["ttl_s"] + CLOCK_SKEW_S + 0.5)
    assert gone.live == [] and _problems(gone)["proc-gate"].startswith("stale")
