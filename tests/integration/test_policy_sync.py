"""Policy sync: versions only go up, bad documents are refused, and losing Redis fails closed."""

import asyncio

import orjson
import pytest
import redis.asyncio as aioredis

from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.policy.store import build_document, read_active_policy, write_active_policy
from cio_kernel.reason_codes import ReasonCode as C
from gate.runtime.service import Gate
from tests.factories import live_intent_body, make_spec, signed_document
from tests.integration.helpers import ManualClock, activate, collect, request, wait_for_policy, wait_until


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


async def test_losing_redis_goes_stale_and_recovers_only_when_redis_holds_its_version(
    redis_proc, redis_url, nc, gate_settings
):
    clock = ManualClock()
    gate = Gate(gate_settings.model_copy(update={"policy_refresh_s": 3600.0}), clock=clock)
    await gate.start()
    try:
        redis = aioredis.Redis.from_url(redis_url)
        document = await activate(redis, nc, make_spec(), 1)
        await wait_for_policy(gate, 1)
        await redis.aclose()
        redis_proc.stop()
        # Within the max age the in-process copy still decides (no Redis round trip per intent)...
        envelope, _ = await request(nc, live_intent_body(signal_id="during"))
        assert envelope.data.decision == "APPROVED"
        # ...after it, the gate fails closed.
        clock.advance(gate.settings.policy_max_age_s + 0.5)
        envelope, _ = await request(nc, live_intent_body(signal_id="stale"))
        assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.POLICY_STALE
        redis_proc.start()  # same port, empty: a missing policy confirms nothing
        await wait_until(lambda: gate.policy_sync.load("test"), what="the gate reading Redis again")
        assert gate.policy_sync.anomalies >= 1
        envelope, _ = await request(nc, live_intent_body(signal_id="still-stale"))
        assert envelope.error.code == C.POLICY_STALE
        redis = aioredis.Redis.from_url(redis_url)
        await publish_policy(redis, nc, document)  # the control plane puts the same version back
        await redis.aclose()
        assert await gate.policy_sync.load("test")
        envelope, _ = await request(nc, live_intent_body(signal_id="recovered"))
        assert envelope.data.decision == "APPROVED"
    finally:
        await gate.stop()


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
    assert await write_active_policy(redis, signed_document(make_spec(min_confidence=0.5), 2))
    nats_proc.start()
    await wait_for_policy(gate, 2, timeout_s=5.0)


async def test_two_gates_with_the_same_id_refuse_to_share_a_spool(make_gate):
    await make_gate(gate_id="twin")
    with pytest.raises(RuntimeError, match="CIO_GATE_ID"):
        await make_gate(gate_id="twin")


FORGED_VERSION = 10**15


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda spec: build_document(spec, FORGED_VERSION, "attacker"), id="unsigned"),
        pytest.param(
            lambda spec: build_document(spec, FORGED_VERSION, "attacker", signer=PolicySigner.generate()),
            id="signed-by-another-key",
        ),
        pytest.param(
            lambda spec: signed_document(spec, 7).model_copy(update={"version": FORGED_VERSION}),
            id="genuine-signature-other-version",
        ),
    ],
)
async def test_a_forged_policy_in_redis_is_refused_and_the_gate_fails_closed(forge, redis_url, nc, gate_settings):
    clock = ManualClock()
    gate = Gate(gate_settings.model_copy(update={"policy_refresh_s": 3600.0}), clock=clock)
    await gate.start()
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await activate(redis, nc, make_spec(min_confidence=0.7), 1)
        await wait_for_policy(gate, 1)
        # Whoever can write Redis builds a wide-open policy with the project's own code, at a huge version.
        forged = forge(make_spec(min_confidence=0.0, max_order_notional_usd=None))
        await redis.set(ACTIVE_POLICY_KEY, forged.model_dump_json())
        await nc.publish(
            "cio.strategist.update", orjson.dumps({"version": FORGED_VERSION, "checksum": forged.checksum})
        )
        await gate.policy_sync.load("test")
        assert gate.policy_sync.policy.version == 1 and gate.policy_sync.refused >= 1
        envelope, _ = await request(nc, live_intent_body(confidence=0.01))
        assert envelope.error.code == C.CONFIDENCE_TOO_LOW  # still judged under v1
        # Redis no longer holds v1: the copy is never confirmed again and goes stale.
        clock.advance(gate.settings.policy_max_age_s + 0.5)
        envelope, _ = await request(nc, live_intent_body(confidence=0.9))
        assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.POLICY_STALE
        assert gate.heartbeat().counters.policy_refused >= 1
    finally:
        await redis.aclose()
        await gate.stop()


async def test_an_older_genuine_version_in_redis_is_a_refused_rollback_not_a_confirmation(redis_url, nc, gate_settings):
    clock = ManualClock()
    gate = Gate(gate_settings.model_copy(update={"policy_refresh_s": 3600.0}), clock=clock)
    await gate.start()
    redis = aioredis.Redis.from_url(redis_url)
    try:
        older = signed_document(make_spec(), 4)
        await activate(redis, nc, make_spec(), 5)
        await wait_for_policy(gate, 5)
        await redis.set(ACTIVE_POLICY_KEY, older.model_dump_json())  # e.g. a Redis restored from an old dump
        clock.advance(gate.settings.policy_max_age_s / 2)
        await gate.policy_sync.load("test")
        assert gate.policy_sync.policy.version == 5 and gate.policy_sync.rollbacks == 1  # below its floor: refused
        clock.advance(gate.settings.policy_max_age_s / 2 + 1)
        assert gate.policy_sync.usable(clock.monotonic()) is None  # stale: v5 was last confirmed too long ago
    finally:
        await redis.aclose()
        await gate.stop()
