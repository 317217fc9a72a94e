"""Whoever holds a gate's NATS password can answer `cio.gate.ping`: with the gates' public key the canary takes
only an answer a gate signed, so a fake "all is well" neither hides dead gates nor crowds out a live gate's answer.
The canary and the attacker each use their own identity against the shipped NATS permissions."""

import asyncio
import base64
from datetime import UTC, datetime

import orjson

from canary.checks import Expectations, Seen, evaluate
from canary.halt import Outcome, halt
from canary.probe import ping_gate
from cio_kernel import heartbeat_seal
from cio_kernel.policy.signing import PolicySigner
from deploy import access
from tests.factories import GATES_KEY, make_spec
from tests.integration.helpers import activate, wait_until
from tests.integration.secured_gate import live_gate_ids, start_gate


async def _ping(secured, verifier=GATES_KEY):
    inbox = access.NATS_ROLES["canary"].inbox_prefix
    return await ping_gate(secured.nats_url("canary"), inbox, 1.0, verifier)


async def test_a_fake_answer_from_the_gate_identity_neither_hides_dead_gates_nor_outruns_a_live_one(
    secured, gate_and_control_redis, tmp_path
):
    attacker_redis, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path)
    await wait_until(lambda: live_gate_ids(control), what="the gate's heartbeat verified")
    genuine = orjson.loads(await attacker_redis.get("gate:heartbeat:real-gate"))
    fresh = {**genuine, "gate_id": "ghost", "ts": datetime.now(UTC).isoformat()}
    fakes = [orjson.dumps({k: v for k, v in fresh.items() if k != "signature"}), heartbeat_seal.seal(fresh, None)]
    fakes.append(heartbeat_seal.seal(fresh, PolicySigner.generate()))  # signed, with a key of the attacker's own

    attacker = await secured.connect("gate", "attacker")
    answered = 0

    async def answer(msg):  # NATS lets a responder answer a request once: one fake per ping, in turn
        nonlocal answered
        await attacker.publish(msg.reply, fakes[answered % len(fakes)])
        answered += 1

    await attacker.subscribe("cio.gate.ping", cb=answer)
    await attacker.flush()
    try:
        beat, problem = await _ping(secured)
        assert beat is not None and beat.gate_id == "real-gate" and problem is None
        await gate.stop()  # every real gate gone: only the attacker answers
        beat, _ = await _ping(secured, verifier=None)  # without the key the fake passes for a healthy gate
        assert beat is not None and beat.gate_id == "ghost"
        for _ in fakes:  # unsigned, signed over nothing, signed with the attacker's key
            beat, problem = await _ping(secured)
            assert beat is None and "no answer signed by a gate" in problem
            problems = evaluate(Seen(beat, problem, None, None), Expectations(check_web=False), 0.0)
            assert [p.key for p in problems] == ["gate_unreachable"]
        assert answered == 2 + len(fakes) and secured.violations("attacker") == []
    finally:
        await secured.close_clients()


async def test_the_break_glass_counts_no_confirmation_the_gate_identity_made_up(
    secured, gate_and_control_redis, tmp_path
):
    """The break glass with a key the gates do not trust halts nothing; the attacker, with the gate's NATS
    password, publishes heartbeats saying the real gate (and a ghost) halted at a high version. Only signed
    heartbeats count, so the result stays UNCONFIRMED, naming the real gate, still active."""
    _, control_redis = gate_and_control_redis
    control = await secured.connect("control")
    await activate(control_redis, control, make_spec(), 4)
    gate = await start_gate(secured, tmp_path)
    attacker = await secured.connect("gate", "attacker")
    await wait_until(lambda: live_gate_ids(control_redis), what="the gate's heartbeat verified")
    genuine = orjson.loads(await control_redis.get("gate:heartbeat:real-gate"))
    forging = True

    async def forge() -> None:
        while forging:
            for gate_id in ("real-gate", "ghost"):
                fake = {**genuine, "gate_id": gate_id, "ts": datetime.now(UTC).isoformat()}
                fake.update(trading_state="halted", policy_version=1_000_000, notice_version=1_000_000)
                await attacker.publish("cio.gate.heartbeat", heartbeat_seal.seal(fake, None))
            await asyncio.sleep(0.01)

    untrusted = tmp_path / "not-the-policy-key"
    untrusted.write_text(base64.b64encode(PolicySigner.generate().private_key.private_bytes_raw()).decode())
    forger = asyncio.create_task(forge())
    try:
        result = await halt(
            secured.nats_url("control"),
            secured.redis_url("control"),
            untrusted,
            "alice",
            "drill",
            access.NATS_ROLES["control"].inbox_prefix,
            listen_s=1.0,
            confirm_s=2.0,
            gate_key=GATES_KEY,
        )
    finally:
        forging = False
        await forger
        await gate.stop()
        await secured.close_clients()
    assert result.outcome is Outcome.UNCONFIRMED and result.confirmed == ()
    assert list(result.unconfirmed) == ["real-gate"] and result.unconfirmed["real-gate"].startswith("active at v4")
    assert "not signed by a gate ignored" in result.lines[-1]
