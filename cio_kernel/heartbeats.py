"""Reading the gates' heartbeats as the control plane sees them: `gate:heartbeat:<gate_id>` in Redis, written by
each gate every second with a short TTL (a stopped gate vanishes within seconds).

Whoever holds the `gate` Redis password can write those keys, so nothing in them is taken on trust. A heartbeat
counts as a live gate's only when all of these hold; otherwise it is listed as *unverified*, with the reason, and
never counted live nor trusted as an audit head:

- it is signed by a trusted gate key (`cio_kernel.heartbeat_seal`: the gates' audit key, which the Redis
  password does not give) and names the gate its key names;
- its key expires (PTTL > 0) no later than the `ttl_s` the gate signed: a key kept without expiry, or for longer,
  was not written by a gate;
- it is fresh: written no longer ago than that `ttl_s` (plus `CLOCK_SKEW_S` between the gate's clock and ours),
  so a genuine beat copied back after its gate died stops counting as soon as the gate's own key would have
  expired.

A gate without its signing key (local development, some tests) beats unsigned: its heartbeats are listed as
unverified ("not signed"), by design.
"""

import logging
import time
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

from cio_kernel import heartbeat_seal
from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.policy.signing import PolicyVerifier
from cio_kernel.redis_keys import GATE_HEARTBEAT_KEY_PREFIX

log = logging.getLogger(__name__)

CLOCK_SKEW_S = 5.0  # how far a gate's clock may differ from the reader's before its beat is called stale
# A gate's beat is a few kB (each latch it holds adds ~50 bytes) and goes out on NATS too, whose payloads stop at
# 1 MiB: a larger value is no gate's and is never fetched. Values are fetched smallest first, up to MAX_READ_BYTES in
# all, so keys planted large cannot make one read expensive nor push a real gate's small beat out.
MAX_BEAT_BYTES = 1024 * 1024
MAX_READ_BYTES = 8 * 1024 * 1024
MAX_BEAT_KEYS = 256  # keys read per look: far more gates than any deployment runs
TOO_MANY = "(too many keys)"  # the entry that says the read stopped at MAX_BEAT_KEYS


@dataclass(frozen=True)
class UnverifiedBeat:
    """A `gate:heartbeat:*` entry that is not a live gate's verified heartbeat: why, and what it claims."""

    gate_id: str  # as the key names it
    problem: str
    beat: GateHeartbeat | None  # what it claims, when readable (shown, never trusted)


@dataclass(frozen=True)
class GateBeats:
    live: list[GateHeartbeat] = field(default_factory=list)  # verified, by gate id
    unverified: list[UnverifiedBeat] = field(default_factory=list)


def judge(
    gate_id: str, raw: bytes, pttl_ms: int, verifier: PolicyVerifier | None, now: float
) -> GateHeartbeat | UnverifiedBeat:
    """The verified heartbeat `raw` holds, or why it is not one."""
    try:
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("not an object")
        beat = GateHeartbeat.model_validate(body)
    except (ValueError, orjson.JSONDecodeError):  # ValidationError is a ValueError
        return UnverifiedBeat(gate_id, "unreadable: not a gate heartbeat", None)

    def refused(problem: str) -> UnverifiedBeat:
        return UnverifiedBeat(gate_id, problem, beat)

    if beat.gate_id != gate_id:
        return refused(f"names gate {beat.gate_id[:80]!r}, not the gate its key names")
    if pttl_ms < 0:
        return refused("kept in Redis without expiry: no gate writes it so")
    if beat.signature is None:
        return refused("not signed (a gate without its audit signing key, or not written by a gate)")
    if verifier is None:
        return refused("cannot be verified: no trusted gate key (CIO_AUDIT_PUBLIC_KEY or CIO_AUDIT_PUBLIC_KEY_FILE)")
    if not heartbeat_seal.verify(body, verifier):
        return refused("its signature does not verify with a trusted gate key")
    if beat.ttl_s is None or beat.ttl_s <= 0:
        return refused("signed without a time to live")
    if pttl_ms > beat.ttl_s * 1000:
        return refused(f"kept in Redis for longer ({pttl_ms / 1000:g} s) than its gate asked ({beat.ttl_s:g} s)")
    age = now - beat.ts.timestamp()
    if age > beat.ttl_s + CLOCK_SKEW_S or age < -CLOCK_SKEW_S:
        return refused(f"stale: written {age:.0f} s ago (a copy of an old heartbeat put back)")
    return beat


async def read_gate_heartbeats(
    redis: aioredis.Redis, verifier: PolicyVerifier | None, now: float | None = None
) -> GateBeats:
    """Every `gate:heartbeat:*` entry, judged: verified live gates and the rest, each sorted by gate id.

    What one read costs is bounded, because the `gate` password can write as many keys, as large, as it likes and
    `GET /api/health` (no authentication) reads them on every request: at most `MAX_BEAT_KEYS` keys are read, a
    value over `MAX_BEAT_BYTES` is never fetched, nor any beyond `MAX_READ_BYTES` in all (each listed unverified).
    Past the key limit the read says so (an entry named `TOO_MANY`): real gates may then be missing from the live
    list — shown as fewer live gates, an alarm, never as a gate that is not there."""
    found: dict[bytes, None] = {}  # SCAN may return a key twice
    async for key in redis.scan_iter(match=f"{GATE_HEARTBEAT_KEY_PREFIX}*", count=100):
        found[key] = None
        if len(found) > MAX_BEAT_KEYS:
            break
    keys = list(found)
    beats = GateBeats()
    if len(keys) > MAX_BEAT_KEYS:
        keys = keys[:MAX_BEAT_KEYS]
        beats.unverified.append(
            UnverifiedBeat(TOO_MANY, f"more than {MAX_BEAT_KEYS} heartbeat keys: the rest were not read", None)
        )
    if not keys:
        return beats
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.strlen(key)
            pipe.pttl(key)
        answers = await pipe.execute(raise_on_error=False)
    # A key that is no string (STRLEN answers an error) is no gate's: no value to read.
    sizes = [size if isinstance(size, int) else -1 for size in answers[0::2]]
    ttls = [ttl if isinstance(ttl, int) else -1 for ttl in answers[1::2]]
    budget, fetch = MAX_READ_BYTES, []
    for size, key in sorted((size, key) for key, size in zip(keys, sizes, strict=True) if size >= 0):
        if size > MAX_BEAT_BYTES or size > budget:
            break
        budget -= size
        fetch.append(key)
    values = dict(zip(fetch, await redis.mget(fetch), strict=True)) if fetch else {}
    now = time.time() if now is None else now
    for key, size, pttl in zip(keys, sizes, ttls, strict=True):
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        gate_id = name.removeprefix(GATE_HEARTBEAT_KEY_PREFIX)[:200]
        if size > MAX_BEAT_BYTES:
            beats.unverified.append(UnverifiedBeat(gate_id, f"too large ({size} bytes): not read", None))
            continue
        if size >= 0 and key not in values:
            beats.unverified.append(UnverifiedBeat(gate_id, f"not read: over {MAX_READ_BYTES} bytes in all", None))
            continue
        value = values.get(key)
        if value is None:
            continue  # expired between the scan and the read, or not a string (no gate writes one)
        judged = judge(gate_id, value, int(pttl), verifier, now)
        if isinstance(judged, UnverifiedBeat):
            beats.unverified.append(judged)
        else:
            beats.live.append(judged)
    if beats.unverified:
        log.info(
            "%d gate heartbeat(s) in Redis not verified: %s",
            len(beats.unverified),
            "; ".join(f"{u.gate_id[:80]}: {u.problem}" for u in beats.unverified[:5]),
        )
    beats.live.sort(key=lambda beat: beat.gate_id)
    beats.unverified.sort(key=lambda u: u.gate_id)
    return beats
