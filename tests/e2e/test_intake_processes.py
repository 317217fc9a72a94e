"""Producers that never listen, with real gate processes: intents published while no gate runs, and a gate killed
(SIGKILL) in the middle of the intake stream, are each decided and audited exactly once."""

import asyncio
from collections import Counter, defaultdict

import orjson
import pytest

from cio_kernel.intake_stream import INTAKE_CONSUMER, INTAKE_STREAM
from tests.factories import make_spec, ta_bot_body
from tests.integration.helpers import activate, audit_events, collect, promoted_before_marker, wait_until
from tests.jetstream import wait_consumer_settled

pytestmark = pytest.mark.e2e

FAST = {"CIO_INTAKE_HOLD_MS": "200", "CIO_INTAKE_ACK_WAIT_S": "2"}


def ta_bot_payload(intent_id: str) -> bytes:
    return orjson.dumps(ta_bot_body(intent_id))


SUBJECTS = ("cio.intent.trading", "cio.intent.trading.Volume_Surge_Breakout")


async def _publish(nc, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    for i, intent_id in enumerate(ids):
        await nc.publish(SUBJECTS[i % 2], ta_bot_payload(intent_id))
    await nc.flush()
    return ids


async def test_intents_published_while_no_gate_runs_are_decided_once_by_the_next_gate(spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(engine_sized_notional_usd=1_000.0), 1)
    first = await spawn_gate("gate-first", **FAST)  # creates the intake stream and its consumer
    assert await first.terminate() == 0
    signals = await collect(nc, "signals.trading.>")
    ids = await _publish(nc, "down", 60)  # nobody is subscribed: only the intake stream hears them
    await spawn_gate("gate-next", **FAST)
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 30)
    records = await audit_events(nc, expected=60)
    assert Counter(r.event.intent_id for r in records) == Counter(ids)
    assert {r.event.decision for r in records} == {"APPROVED"}
    assert {r.msg_id for r in records} == {r.event.decision_id for r in records}
    promoted = await promoted_before_marker(nc, signals, SUBJECTS[0], ta_bot_body("marker"))
    assert Counter(orjson.loads(m.data)["intent_id"] for m in promoted) == Counter(ids)


@pytest.mark.parametrize("successor", ["gate-victim", "gate-successor"])  # restarted as itself, or replaced
async def test_a_gate_killed_mid_stream_leaves_every_intent_audited_exactly_once(spawn_gate, redis, nc, successor):
    await activate(redis, nc, make_spec(engine_sized_notional_usd=1_000.0), 1)
    signals = await collect(nc, "signals.trading.>")
    victim = await spawn_gate("gate-victim", CIO_INTAKE_BATCH="8", **FAST)
    ids = [f"k-{i}" for i in range(600)]

    async def produce() -> None:  # a steady flow, so the kill lands with intents fetched and not yet settled
        for i, intent_id in enumerate(ids):
            await nc.publish(SUBJECTS[i % 2], ta_bot_payload(intent_id))
            await asyncio.sleep(0.002)

    producing = asyncio.create_task(produce())
    await wait_until(lambda: len(signals.messages) >= 100, 20, "the first promotions")
    victim.kill()  # SIGKILL: what it fetched and did not acknowledge is redelivered; its spool is adopted
    await spawn_gate(successor, **FAST)
    await producing
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 30)
    records = await audit_events(nc, expected=len(ids))
    assert Counter(r.event.intent_id for r in records) == Counter(ids), "each intent audited exactly once"
    assert len({r.event.decision_id for r in records}) == len(ids)
    assert {r.event.gate_id for r in records} == {"gate-victim", successor}
    by_intent = {r.event.intent_id: r.event.decision_id for r in records}
    # Every intent promoted; one promoted again after the crash (its acknowledgement lost with the gate) carries
    # the audited decision's id.
    promoted: dict[str, set[str]] = defaultdict(set)
    for m in await promoted_before_marker(nc, signals, SUBJECTS[0], ta_bot_body("marker")):
        body = orjson.loads(m.data)
        promoted[body["intent_id"]].add(body["meta"]["cio"]["decision_id"])
    assert set(promoted) == set(ids)
    assert all(promoted[i] == {by_intent[i]} for i in ids)


async def test_a_rolling_restart_under_a_steady_flow_decides_every_intent_once(spawn_gate, redis, nc):
    """SIGTERM (a rollout): the stopping gate hands back what it holds; its successor takes over."""
    await activate(redis, nc, make_spec(engine_sized_notional_usd=1_000.0), 1)
    signals = await collect(nc, "signals.trading.>")
    old = await spawn_gate("gate-old", **FAST)
    ids = [f"r-{i}" for i in range(600)]

    async def produce() -> None:
        for i, intent_id in enumerate(ids):
            await nc.publish(SUBJECTS[i % 2], ta_bot_payload(intent_id))
            await asyncio.sleep(0.002)

    producing = asyncio.create_task(produce())
    await wait_until(lambda: len(signals.messages) >= 100, 20, "the first promotions")
    assert await old.terminate() == 0
    await spawn_gate("gate-new", **FAST)
    await producing
    await wait_consumer_settled(nc, INTAKE_STREAM, INTAKE_CONSUMER, 30)
    records = await audit_events(nc, expected=len(ids))
    assert Counter(r.event.intent_id for r in records) == Counter(ids)
    promoted = await promoted_before_marker(nc, signals, SUBJECTS[0], ta_bot_body("marker"))
    assert Counter(orjson.loads(m.data)["intent_id"] for m in promoted) == Counter(ids)  # none twice
