"""Gates as real processes: queue-group scale-out, crash recovery of the audit spool, graceful shutdown."""

import asyncio
from collections import Counter

import orjson
import pytest

from cio_kernel.contracts.heartbeat import GateHeartbeat
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, request, wait_until

pytestmark = pytest.mark.e2e


async def _fire(nc, count: int, prefix: str, concurrency: int = 50) -> list:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int):
        async with semaphore:
            envelope, _ = await request(nc, live_intent_body(signal_id=f"{prefix}-{i}", strategy_id=f"s{i % 7}"))
            return envelope

    return await asyncio.gather(*(one(i) for i in range(count)))


async def settled_beats(nc, gate_ids: list[str], timeout_s: float = 20.0) -> list[GateHeartbeat]:
    """Each gate's first heartbeat with nothing left in its audit outbox, in `gate_ids` order."""
    settled: dict[str, GateHeartbeat] = {}
    done = asyncio.Event()

    async def on_beat(msg) -> None:
        beat = GateHeartbeat.model_validate_json(msg.data)
        if beat.gate_id in gate_ids and beat.counters.audit_pending == 0 and beat.gate_id not in settled:
            settled[beat.gate_id] = beat
            if len(settled) == len(gate_ids):
                done.set()

    sub = await nc.subscribe("cio.gate.heartbeat", cb=on_beat)
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        await sub.unsubscribe()
    return [settled[g] for g in gate_ids]


async def test_two_gates_in_one_queue_group_decide_each_intent_exactly_once(spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(min_confidence=0.5), 1)
    await spawn_gate("gate-a")
    await spawn_gate("gate-b")
    signals = await collect(nc, "signals.trading.>")
    envelopes = await _fire(nc, 600, "q")
    assert all(e.data.decision == "APPROVED" for e in envelopes)
    decision_ids = [e.data.decision_id for e in envelopes]
    assert len(set(decision_ids)) == 600

    # Counted at the source, not in the stream (whose own dedupe would hide a second publish): each gate's
    # heartbeat, once its outbox is empty, says how many intents it received and audit events it published.
    beats = await settled_beats(nc, ["gate-a", "gate-b"])
    assert sum(b.counters.received for b in beats) == 600
    assert sum(b.counters.approved for b in beats) == 600
    assert sum(b.counters.audit_published for b in beats) == 600
    records = await audit_events(nc, expected=600)
    assert len(records) == 600
    assert Counter(r.event.intent_id for r in records) == Counter(f"q-{i}" for i in range(600))
    assert {r.event.decision_id for r in records} == set(decision_ids)
    by_gate = Counter(r.event.gate_id for r in records)
    assert set(by_gate) == {"gate-a", "gate-b"}, by_gate

    await signals.wait_for(600, timeout_s=10)
    promoted = Counter(orjson.loads(m.data)["signal_id"] for m in signals.messages)
    assert len(promoted) == 600 and set(promoted.values()) == {1}


async def test_spooled_audit_events_survive_a_gate_crash(spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    first = await spawn_gate("gate-crash")
    js = nc.jetstream()
    await js.delete_stream("CIO_AUDIT")  # audit publishes now fail; decisions must not
    envelopes = await _fire(nc, 40, "c")
    assert all(e.data.decision == "APPROVED" for e in envelopes)
    first.kill()  # SIGKILL: no shutdown hooks, nothing flushed by the process itself

    await spawn_gate("gate-successor")  # recreates the stream, adopts the dead gate's spool, replays it
    records = await audit_events(nc, expected=40)
    assert {r.event.decision_id for r in records} == {e.data.decision_id for e in envelopes}
    assert {r.msg_id for r in records} == {r.event.decision_id for r in records}
    assert {r.event.gate_id for r in records} == {"gate-crash"}
    # Replayed by another gate, the events keep the dead gate's chain links, intact and unbroken.
    links = sorted((r.link for r in records), key=lambda link: link.seq)
    assert [link.seq for link in links] == list(range(1, 41)) and len({link.chain for link in links}) == 1
    assert all(r.link.matches(r.subject, r.payload) for r in records)


async def test_replay_after_a_clean_restart_adds_no_duplicates(spawn_gate, redis, nc, tmp_path):
    spool = tmp_path / "spool"
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("gate-r")
    envelopes = await _fire(nc, 100, "r")
    assert await gate.terminate() == 0
    assert list(spool.rglob("*.jsonl")) == []  # a clean stop leaves nothing to replay...
    await spawn_gate("gate-r")
    [beat] = await settled_beats(nc, ["gate-r"])
    assert beat.counters.audit_published == 0  # ...and the successor published nothing again
    records = await audit_events(nc, expected=100)
    assert len(records) == 100
    assert {r.event.decision_id for r in records} == {e.data.decision_id for e in envelopes}


async def test_graceful_shutdown_finishes_in_flight_intents_and_flushes_audit(spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("gate-g")
    replies: list = []

    async def one(i: int) -> None:
        try:
            envelope, _ = await request(nc, live_intent_body(signal_id=f"g-{i}"))
        except Exception:
            return  # sent after the gate stopped listening: no decision was made
        replies.append(envelope)

    load = asyncio.gather(*(one(i) for i in range(400)))
    await wait_until(lambda: replies, what="the first decisions")  # stop while the rest are in flight
    exit_code = await gate.terminate()
    await load
    assert exit_code == 0, gate.log()
    assert replies, "some intents were decided before the stop"
    records = await audit_events(nc, expected=len(replies))
    assert {r.event.decision_id for r in records} >= {e.data.decision_id for e in replies}
    assert "left spooled" not in gate.log()
