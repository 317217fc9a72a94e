"""The gate's Redis password can write as many `gate:heartbeat:*` keys, as large, as it likes, and `GET /api/health`
(no authentication) reads them on each request: what one read costs is bounded (cio_kernel/heartbeats.py), and
nothing planted that way counts as a live gate. Written with the `gate` identity, read with the control plane's."""

import orjson

from cio_kernel.heartbeats import MAX_BEAT_BYTES, MAX_BEAT_KEYS, MAX_READ_BYTES, TOO_MANY
from tests.integration.helpers import wait_until
from tests.integration.secured_gate import gate_beats, live_gate_ids, start_gate


async def test_a_huge_heartbeat_is_not_read_and_a_real_gate_stays_live(secured, gate_and_control_redis, tmp_path):
    attacker, control = gate_and_control_redis
    gate = await start_gate(secured, tmp_path)
    try:
        await wait_until(lambda: live_gate_ids(control), what="the gate's heartbeat verified")
        genuine = orjson.loads(await attacker.get("gate:heartbeat:real-gate"))
        huge = orjson.dumps({**genuine, "gate_id": "huge", "padding": "x" * (MAX_BEAT_BYTES + 1)})
        await attacker.set("gate:heartbeat:huge", huge, ex=3)
        beats = await gate_beats(control)
        assert [b.gate_id for b in beats.live] == ["real-gate"]
        [planted] = beats.unverified
        assert planted.gate_id == "huge" and planted.problem.startswith("too large") and planted.beat is None
        # Many just under the limit: fetched smallest first up to the read budget; the real gate's small beat is in.
        large = b"x" * MAX_BEAT_BYTES
        for n in range(MAX_READ_BYTES // MAX_BEAT_BYTES + 2):
            await attacker.set(f"gate:heartbeat:large-{n}", large, ex=30)
        beats = await gate_beats(control)
        assert [b.gate_id for b in beats.live] == ["real-gate"]
        problems = [u.problem for u in beats.unverified if u.gate_id.startswith("large-")]
        assert any(p.startswith("not read: over") for p in problems)
        assert all(p.startswith(("not read: over", "unreadable")) for p in problems)
    finally:
        await gate.stop()


async def test_thousands_of_planted_keys_are_read_only_up_to_the_limit(secured, gate_and_control_redis):
    attacker, control = gate_and_control_redis
    async with attacker.pipeline(transaction=False) as pipe:
        for n in range(MAX_BEAT_KEYS + 50):
            pipe.set(f"gate:heartbeat:ghost-{n}", b"{}", ex=60)
        await pipe.execute()
    beats = await gate_beats(control)
    assert beats.live == []
    assert len(beats.unverified) == MAX_BEAT_KEYS + 1  # what was read, and the entry saying the rest was not
    [stopped] = [u for u in beats.unverified if u.gate_id == TOO_MANY]
    assert str(MAX_BEAT_KEYS) in stopped.problem
