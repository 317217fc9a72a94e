"""Risk latches in Redis: one hash, `risk:latches`, one field per latch id, each a `LatchRecord` as JSON.

Gates trip latches (`store_tripped`, each trip signed with the gates' audit key), risk officers release them
through the control plane (`release_latch`, each release signed with the policy key over the trip it releases);
both are optimistic transactions (WATCH/MULTI), so two gates tripping the same latch from the same snapshot store
it once, and a release is never lost to a concurrent trip. A released latch is overwritten only by a trip from a
snapshot taken after the release.

Both the `gate` and the `control` Redis passwords can write this hash, so what it holds is judged (`judge`), never
taken as it reads. The rule fails toward safety: **a latch is released only by a release the policy key
verifies**. A release that does not verify is dropped and the trip it claims to release holds; a record that
cannot be read holds its latch (`LatchRecord.unreadable`); a trip no gate key verifies (written before trips were
signed, by a gate without its key, or planted) holds too and is reported. Each such record is listed in
`LatchRead.problems`; what holds a latch can only make trading more careful, and a risk officer can release it.
"""

import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import WatchError

from cio_kernel.contracts.identity import IdentityError
from cio_kernel.contracts.latch import LatchRecord, parse_latch_id
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.redis_keys import LATCHES_KEY

log = logging.getLogger(__name__)

__all__ = [
    "LATCHES_KEY",
    "MAX_LATCH_FIELDS",
    "LatchRead",
    "judge",
    "legacy_releases",
    "read_latches",
    "release_latch",
    "sign_release",
    "store_tripped",
]

# Far more latches than any book trips (a few per strategy per day). A hash larger than this was filled by whoever
# holds a password that writes it: reading and judging it all would take each gate seconds, past its Redis timeout
# (so a gate started then would learn no latch at all), on every refresh. It is not read; that is reported.
MAX_LATCH_FIELDS = 10_000

# What each kind of problem is called (the gate counts `refused` ones as critical, `unverified` trips as warnings).
REFUSED = "refused"
UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Judged:
    record: LatchRecord  # what holds: released only when the control plane signed the release
    problem: str | None = None
    severity: str | None = None  # REFUSED or UNVERIFIED when `problem` is set


@dataclass
class LatchRead:
    records: dict[str, LatchRecord] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # latch id (or field) -> why it is not taken as read
    refused: set[str] = field(default_factory=set)  # the ids of problems that are refusals, not unsigned trips
    complete: bool = True  # False: the hash was not read (over MAX_LATCH_FIELDS); `records` knows nothing


def judge(latch: str, raw: bytes | str | None, trips: PolicyVerifier | None, releases: PolicyVerifier | None) -> Judged:
    """What the record under field `latch` (a canonical latch id) means for the latch."""
    try:
        record = LatchRecord.model_validate_json(raw) if raw is not None else None
    except ValidationError:
        record = None
    if record is None or record.id != latch:
        return Judged(LatchRecord.unreadable(latch), "not a record of this latch: held until released", REFUSED)
    if record.released_at is not None:
        if record.release_verified_by(releases):
            return Judged(record)
        return Judged(
            record.unreleased(),
            f"release by {str(record.released_by)[:80]!r} not signed by the control plane: the latch holds",
            REFUSED,
        )
    if not record.trip_verified_by(trips):
        return Judged(record, "trip not signed by a gate key (held all the same)", UNVERIFIED)
    return Judged(record)


async def read_latches(
    redis: aioredis.Redis, trips: PolicyVerifier | None, releases: PolicyVerifier | None
) -> LatchRead:
    """Every latch in `risk:latches`, judged. A field that names no latch is reported and ignored (no gate looks
    a latch up by it). A hash over `MAX_LATCH_FIELDS` is not read (`complete` False, a refused problem under
    `LATCHES_KEY`): what a gate holds then stays as it is."""
    read = LatchRead()
    fields = await redis.hlen(LATCHES_KEY)
    if fields > MAX_LATCH_FIELDS:
        read.complete = False
        read.problems[LATCHES_KEY] = f"more than {MAX_LATCH_FIELDS} fields: not read (filled by a writer)"
        read.refused.add(LATCHES_KEY)
        log.error("%s holds %d fields, more than %d: not read", LATCHES_KEY, fields, MAX_LATCH_FIELDS)
        return read
    raw = await redis.hgetall(LATCHES_KEY)
    for key, value in raw.items():
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        try:
            latch = parse_latch_id(name)
        except IdentityError:
            read.problems[name[:200]] = "a field that names no latch: ignored"
            read.refused.add(name[:200])
            continue
        if latch != name:
            read.problems[name[:200]] = f"not the canonical id ({latch}): ignored"
            read.refused.add(name[:200])
            continue
        judged = judge(latch, value, trips, releases)
        read.records[latch] = judged.record
        if judged.problem is not None:
            read.problems[latch] = judged.problem
            if judged.severity == REFUSED:
                read.refused.add(latch)
    if read.problems:
        log.error("%s: %s", LATCHES_KEY, "; ".join(f"{k}: {v}" for k, v in sorted(read.problems.items())[:10]))
    return read


async def store_tripped(
    redis: aioredis.Redis, record: LatchRecord, trips: PolicyVerifier | None, releases: PolicyVerifier | None
) -> bool:
    """Store a newly tripped latch; False when Redis already holds it active by a verified trip, or released (by
    the control plane) after this snapshot. A record that holds without proof (unreadable, unsigned, a release
    nobody signed) is replaced by this trip: the latch holds either way, now with a record that proves itself."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(LATCHES_KEY)
                raw = await pipe.hget(LATCHES_KEY, record.id)
                if raw is not None:
                    current = judge(record.id, raw, trips, releases)
                    held = current.record
                    if held.active and current.problem is None:
                        return False
                    if not held.active and held.released_at is not None and record.snapshot_ts <= held.released_at:
                        return False
                pipe.multi()
                pipe.hset(LATCHES_KEY, record.id, record.model_dump_json())
                await pipe.execute()
                return True
            except WatchError:
                continue


async def release_latch(
    redis: aioredis.Redis,
    latch: str,
    at: float,
    by: str,
    reason: str,
    signer: PolicySigner,
    trips: PolicyVerifier | None = None,
) -> LatchRecord | None:
    """Release an active latch, signed with the policy key over the trip it releases; returns the released
    record, or None when no latch with that id holds (none, or released by a verified release already)."""
    releases = PolicyVerifier([signer.public_raw])
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(LATCHES_KEY)
                raw = await pipe.hget(LATCHES_KEY, latch)
                if raw is None:
                    return None
                current = judge(latch, raw, trips, releases).record
                if not current.active:
                    return None
                released = current.released(at, by, reason, signer)
                pipe.multi()
                pipe.hset(LATCHES_KEY, latch, released.model_dump_json())
                await pipe.execute()
                return released
            except WatchError:
                continue


async def legacy_releases(redis: aioredis.Redis, releases: PolicyVerifier) -> list[LatchRecord]:
    """Released records whose release the policy key does not verify, as stored (the upgrade step's input)."""
    raw = await redis.hgetall(LATCHES_KEY)
    found = []
    for value in raw.values():
        try:
            record = LatchRecord.model_validate_json(value)
        except ValidationError:
            continue
        if record.released_at is not None and not record.release_verified_by(releases):
            found.append(record)
    return found


async def sign_release(redis: aioredis.Redis, record: LatchRecord, signer: PolicySigner) -> bool:
    """Upgrade step: store `record` (a release made before releases were signed, which the control plane's own
    records confirm) again with its release signed; False when Redis no longer holds exactly that record."""
    assert record.released_at is not None and record.released_by is not None
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(LATCHES_KEY)
                raw = await pipe.hget(LATCHES_KEY, record.id)
                try:
                    current = LatchRecord.model_validate_json(raw) if raw is not None else None
                except ValidationError:
                    current = None
                if current != record:
                    return False
                signed = record.released(record.released_at, record.released_by, record.release_reason or "", signer)
                pipe.multi()
                pipe.hset(LATCHES_KEY, record.id, signed.model_dump_json())
                await pipe.execute()
                return True
            except WatchError:
                continue
