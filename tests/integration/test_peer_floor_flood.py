"""A gate checks the signature of a peer's version floor when it is above its own (docs/policy.md, "No rollback").
Whoever holds a gate's NATS password can publish heartbeats with ever higher, forged floors: the gate checks a
bounded number a second, raises nothing for them, and still learns a genuine floor. The attacker uses the gate's
NATS identity against the shipped permissions."""

import orjson

from cio_kernel.nats_flush import flush_ordered
from tests.factories import make_spec, signed_document
from tests.integration.helpers import activate, wait_for_policy, wait_until
from tests.integration.secured_gate import start_gate


async def test_forged_floors_cost_a_bounded_number_of_checks_and_raise_nothing(
    secured, gate_and_control_redis, tmp_path
):
    _, control_redis = gate_and_control_redis
    control = await secured.connect("control")
    await activate(control_redis, control, make_spec(), 1)
    gate = await start_gate(secured, tmp_path)
    attacker = await secured.connect("gate", "attacker")
    try:
        await wait_for_policy(gate, 1)
        genuine = signed_document(make_spec(), 2).seal()
        assert genuine is not None
        floor = genuine.model_dump(mode="json")
        for n in range(3000):
            forged = {**floor, "version": 100 + n, "signature": floor["signature"][::-1]}
            await attacker.publish("cio.gate.heartbeat", orjson.dumps({"gate_id": "peer", "policy_floor": forged}))
        await flush_ordered(attacker)
        await wait_until(lambda: gate.notices.peer_floor_checks > 0, what="the forged floors heard")
        assert gate.policy_sync.floor.version == 1
        checks = gate.notices.peer_floor_checks
        assert checks < 1000  # one check per forged heartbeat would be 3000

        # A genuine floor still gets through: a peer sends it in every beat, and the next second has room.
        async def learned() -> bool:
            await attacker.publish("cio.gate.heartbeat", orjson.dumps({"gate_id": "peer", "policy_floor": floor}))
            await flush_ordered(attacker)
            return gate.policy_sync.floor.version == 2

        await wait_until(learned, what="the genuine floor learned")
        assert secured.violations("attacker") == []
    finally:
        await gate.stop()
        await secured.close_clients()
