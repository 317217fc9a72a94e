"""Risk latches in Redis: one hash, `risk:latches`, one field per latch id, each a `LatchRecord` as JSON.

Gates trip latches (`store_tripped`), risk officers release them through the control plane
(`release_latch`); both are optimistic transactions (WATCH/MULTI), so two gates tripping the same latch from
the same snapshot store it once, and a release is never lost to a concurrent trip. A released latch is
overwritten only by a trip from a snapshot taken after the release.
"""

import logging

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import WatchError

from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.redis_keys import LATCHES_KEY

log = logging.getLogger(__name__)

__all__ = ["LATCHES_KEY", "read_latches", "release_latch", "store_tripped"]


def _parse(latch: str, raw: bytes | str) -> LatchRecord | None:
    try:
        return LatchRecord.model_validate_json(raw)
    except ValidationError:
        log.error("%s field %r is not a latch record; ignored", LATCHES_KEY, latch)
        return None


async def read_latches(redis: aioredis.Redis) -> dict[str, LatchRecord]:
    raw = await redis.hgetall(LATCHES_KEY)
    records = {}
    for field, value in raw.items():
        latch = field.decode() if isinstance(field, bytes) else field
        record = _parse(latch, value)
        if record is not None:
            records[latch] = record
    return records


async def store_tripped(redis: aioredis.Redis, record: LatchRecord) -> bool:
    """Store a newly tripped latch; False when Redis already holds it active, or released after this snapshot."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(LATCHES_KEY)
                raw = await pipe.hget(LATCHES_KEY, record.id)
                current = _parse(record.id, raw) if raw is not None else None
                if current is not None and (
                    current.active or (current.released_at is not None and record.snapshot_ts <= current.released_at)
                ):
                    return False
                pipe.multi()
                pipe.hset(LATCHES_KEY, record.id, record.model_dump_json())
                await pipe.execute()
                return True
            except WatchError:
                continue


async def release_latch(redis: aioredis.Redis, latch: str, at: float, by: str, reason: str) -> LatchRecord | None:
    """Release an active latch; returns the released record, or None when no active latch has that id."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(LATCHES_KEY)
                raw = await pipe.hget(LATCHES_KEY, latch)
                current = _parse(latch, raw) if raw is not None else None
                if current is None or not current.active:
                    return None
                released = current.released(at, by, reason)
                pipe.multi()
                pipe.hset(LATCHES_KEY, latch, released.model_dump_json())
                await pipe.execute()
                return released
            except WatchError:
                continue
