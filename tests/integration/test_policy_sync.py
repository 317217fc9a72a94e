"""Policy sync: versions only go up, bad documents are refused, and losing Redis fails closed."""

import asyncio
import time

import orjson
import pytest

from gate.policy.document import ACTIVE_POLICY_KEY
from gate.policy.store import build_document, read_active_policy, write_active_policy
from gate.reason_codes import ReasonCode as C
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, collect, request, wait_for_policy


async def test_redis_never_lets_an_older_version_replace_a_newer_one(redis):
    assert await write_active_policy(redis, build_document(make_spec(), 5, "a"))
    assert not await write_active_policy(redis, build_document(make_spec(min_confidence=0.9), 4, "b"))
    assert not await write_active_policy(redis, build_document(make_spec(min_confidence=0.9), 5, "b"))
    stored = await read_active_policy(redis)
    assert stored is not None and stored.version == 5 and stored.activated_by == "a"
    assert await write_active_policy(redis, build_document(make_spec(), 6, "c"))


async def test_concurrent_activations_leave_the_highest_version(redis):
    documents = [build_document(make_spec(), v, f"officer-{v}") for v in range(1, 41)]
    await asyncio.gather(*(write_active_policy(redis, d) for d in reversed(documents)))
    stored = await read_active_policy(redis)
    assert stored is not None and stored.version == 40


async def test_gate_ignores_an_update_for_an_older_version(gate, redis, nc):
    await activate(redis, nc, make_spec(), 3)
    await wait_for_policy(gate, 3)
    # Someone forces an older document into Redis behind the CAS's back; the gate must not go backwards.
    older = build_document(make_spec(trading_state="halted"), 2, "rogue")
    await redis.set(ACTIVE_POLICY_KEY, older.model_dump_json())
    await nc.publish("cio.strategist.update", b'{"version": 2, "checksum": "x"}')
    await gate.policy_sync.load("test")
    assert gate.policy_sync.policy.version == 3
    envelope, _ = await request(nc, live_intent_body())
    assert envelope.data.decision == "APPROVED" and envelope.data.policy_version == 3


async def test_a_document_whose_checksum_does_not_match_is_refused(gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    tampered = orjson.loads(build_document(make_spec(), 2, "x").model_dump_json())
    tampered["spec"]["global"]["trading_state"] = "halted"  # spec changed, checksum not
    await redis.set(ACTIVE_POLICY_KEY, orjson.dumps(tampered))
    await gate.policy_sync.load("test")
    assert gate.policy_sync.policy.version == 1


async def test_invalid_policy_document_is_refused(gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    await redis.set(ACTIVE_POLICY_KEY, b'{"version": 9, "spec": {"global": {"min_confidence": 7}}}')
    await gate.policy_sync.load("test")
    assert gate.policy_sync.policy.version == 1


async def test_kill_switch_reaches_the_gate_through_the_update_notice(make_gate, redis, nc):
    gate = await make_gate(policy_refresh_s=3600.0)  # no polling: only cio.strategist.update can explain it
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    await activate(redis, nc, make_spec(trading_state="halted"), 2)
    await wait_for_policy(gate, 2)
    envelope, _ = await request(nc, live_intent_body())
    assert [r.code for r in envelope.data.reasons] == [C.TRADING_HALTED]


async def test_losing_redis_goes_stale_then_recovers(gate, redis, redis_proc, nc):
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    redis_proc.stop()
    # Within the max age the in-process copy still decides (no Redis round trip per intent)...
    envelope, _ = await request(nc, live_intent_body(signal_id="during"))
    assert envelope.data.decision == "APPROVED"
    # ...after it, the gate fails closed.
    await asyncio.sleep(gate.settings.policy_max_age_s + 0.5)
    envelope, _ = await request(nc, live_intent_body(signal_id="stale"))
    assert envelope.data.decision == "RETRY_SAFE"
    assert envelope.error.code == C.POLICY_STALE
    redis_proc.start()  # same port, empty (no persistence): the gate keeps its copy once Redis answers again
    async with asyncio.timeout(5):
        while gate.policy_sync.usable(time.monotonic()) is None:
            await asyncio.sleep(0.05)
    envelope, _ = await request(nc, live_intent_body(signal_id="recovered"))
    assert envelope.data.decision == "APPROVED"


async def test_gate_started_without_redis_answers_retry_safe_and_beats_degraded(make_gate, redis_proc, nc):
    redis_proc.stop()
    beats = await collect(nc, "cio.heartbeat")
    await make_gate()
    envelope, _ = await request(nc, live_intent_body())
    assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.NO_POLICY
    [beat, *_] = await beats.wait_for(1, timeout_s=3)
    assert orjson.loads(beat.data)["status"] == "DEGRADED"


async def test_policy_is_reread_after_a_nats_reconnect(make_gate, redis, nc, nats_proc):
    gate = await make_gate(policy_refresh_s=3600.0)  # only the reconnect can explain a reload
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(gate, 1)
    # A newer version lands in Redis while the gate cannot hear the update on NATS.
    nats_proc.stop()
    assert await write_active_policy(redis, build_document(make_spec(min_confidence=0.5), 2, "t"))
    nats_proc.start()
    await wait_for_policy(gate, 2, timeout_s=5.0)


async def test_two_gates_with_the_same_id_refuse_to_share_a_spool(make_gate):
    await make_gate(gate_id="twin")
    with pytest.raises(RuntimeError, match="CIO_GATE_ID"):
        await make_gate(gate_id="twin")
