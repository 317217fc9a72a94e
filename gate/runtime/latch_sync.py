"""Keeps the gate's latches (`GateState.latches`) in step with Redis and with the other gates.

A snapshot that breaches a latchable limit trips the latch in memory at once (the next intent already sees
it), then the latch is stored in Redis and announced on `cio.risk.latch`. Stored latches are read at start,
every refresh, after reconnects and on every notice (a notice is only a hint to re-read). A latch tripped
while Redis is away stays in memory and is stored when Redis answers again: nothing is released by an outage.
"""

import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.latch_store import read_latches, store_tripped
from cio_kernel.policy.spec import PolicySpec
from gate.decision.latches import LatchBook, trip_latches

log = logging.getLogger(__name__)


class LatchSync:
    def __init__(
        self,
        redis: aioredis.Redis,
        book: LatchBook,
        gate_id: str,
        announce: Callable[[LatchRecord], Awaitable[None]] | None = None,
    ) -> None:
        self._redis = redis
        self._book = book
        self._gate_id = gate_id
        self._announce = announce
        self._unsaved: dict[str, LatchRecord] = {}
        self.redis_ok = False

    def observe(self, snapshot: PortfolioSnapshot, spec: PolicySpec, now: float) -> list[LatchRecord]:
        """Trip what the snapshot breaches (in memory, synchronously); the caller then calls `save`."""
        tripped = trip_latches(self._book, snapshot, spec, now, self._gate_id)
        for record in tripped:
            log.error(
                "risk latch %s tripped: observed %g, limit %g; reducing-only until a risk officer releases it",
                record.id,
                record.observed,
                record.limit,
            )
            self._unsaved[record.id] = record
        return tripped

    @property
    def unsaved(self) -> int:
        return len(self._unsaved)

    async def save(self) -> bool:
        """Store the latches tripped here and not stored yet, announcing each; False when Redis is away."""
        for latch, record in list(self._unsaved.items()):
            try:
                stored = await store_tripped(self._redis, record)
            except (RedisError, OSError) as exc:
                log.warning("risk latch %s not stored yet (Redis: %r); held in memory and retried", latch, exc)
                return False
            # Not stored: Redis already holds it, or a human released it after this snapshot. Either way the
            # next read of Redis settles what this gate holds.
            self._unsaved.pop(latch, None)
            if stored and self._announce is not None:
                await self._announce(record)
        return True

    async def refresh(self) -> bool:
        """Store pending trips, then adopt Redis's latches (keeping trips still unsaved); False if Redis is away."""
        try:
            saved = await self.save()
            records = await read_latches(self._redis) if saved else None
        except (RedisError, OSError) as exc:
            log.debug("risk latches: %r", exc)
            records = None
        if records is None:
            if self.redis_ok:
                log.error("risk latches: Redis unreachable; keeping the latches held in memory")
            self.redis_ok = False
            return False
        self.redis_ok = True
        self._book.replace(records, keep=set(self._unsaved))
        return True
