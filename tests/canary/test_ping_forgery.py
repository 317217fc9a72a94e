"""Whoever holds a gate's NATS password can answer `cio.gate.ping`: with the gates' public key the canary takes
only an answer a gate signed, so a fake "all is well" neither hides dead gates nor crowds out a live gate's answer.
The canary and the attacker each use their own identity against the shipped NATS permissions."""

from datetime import UTC, datetime

import orjson

from canary.checks import Expectations, Seen, evaluate
from canary.probe import ping_gate
from cio_kernel import heartbeat_seal
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from deploy import access
from tests.factories import TEST_AUDIT_SIGNER
from tests.integration import test_heartbeat_forgery as forgery
from tests.integration.helpers import wait_until

secured, clients = forgery.secured, forgery.clients  # servers with the shipped permissions; Redis clients
GATES_KEY = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])


async def _ping(secured, verifier=GATES_KEY):
    inbox = access.NATS_ROLES["canary"].inbox_prefix
    return await ping_gate(secured.nats_url("canary"), inbox, 1.0, verifier)


async def test_a_fake_answer_from_the_gate_identity_neither_hides_dead_gates_nor_outruns_a_live_one(
    secured, clients, tmp_path
):
    attacker_redis, control = clients
    gate = await forgery._gate(secured, tmp_path)
    await wait_until(lambda: forgery._live_ids(control), what="the gate's heartbeat verified")
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
