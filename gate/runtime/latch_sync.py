"""Keeps the gate's latches (`GateState.latches`) in step with Redis and with the other gates.

A snapshot that breaches a latchable limit trips the latch in memory at once (the next intent already sees
it), then the latch is stored in Redis, signed with the gates' audit key, and announced on `cio.risk.latch`.
Stored latches are read at start, every refresh, after reconnects and on every notice (a notice is only a hint to
re-read). A latch tripped while Redis is away stays in memory and is stored when Redis answers again: nothing is
released by an outage.

What Redis holds is judged on each read (cio_kernel/policy/latch_store.py): a release counts only when the policy
key verifies it, and an active latch this gate holds is never lifted by a record that lost it or by an earlier
trip's release put back (it is stored again). Signatures are checked here, on refresh, never per intent: the
decision path reads the in-process `LatchBook`. What was refused is counted (`latches_refused`, critical alert;
`latches_unverified` for trips no gate key verifies, held all the same).

Until it has read the latches once, a gate does not know which hold, so it holds the global drawdown latch
(`NOT_READ_BY`: never stored nor kept, lifted by the first complete read): a gate that starts while the hash
cannot be read (Redis answers the policy but the hash is too large to read, or the read times out) trades
reducing-only rather than as if no latch held.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cio_kernel.contracts.latch import LatchRecord, latch_id
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.latch_store import read_latches, store_tripped
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.policy.spec import PolicySpec
from gate.decision.latches import LatchBook, trip_latches
from gate.runtime.latch_keep import LatchKeep

log = logging.getLogger(__name__)

NOT_READ_BY = "(latches not read yet)"  # `tripped_by` of the latch a gate holds until it has read Redis's


class LatchSync:
    def __init__(
        self,
        redis: aioredis.Redis,
        book: LatchBook,
        gate_id: str,
        announce: Callable[[LatchRecord], Awaitable[None]] | None = None,
        signer: PolicySigner | None = None,
        releases: PolicyVerifier | None = None,
        keep: LatchKeep | None = None,
        store: bool = True,
    ) -> None:
        """`signer`: the gates' audit key, which signs this gate's trips (and verifies its peers'); `releases`: the
        policy key(s), the only ones a release verifies with (None: no release is ever taken, the latches hold).
        `store=False` (a shadow gate): its own trips are held in memory only, never stored in Redis or announced,
        so no serving gate inherits a latch only a risk officer could release; Redis's latches are still read."""
        self._redis = redis
        self._book = book
        self._gate_id = gate_id
        self._announce = announce
        self._store = store
        self._signer = signer
        self._trips = PolicyVerifier([signer.public_raw]) if signer is not None else None
        self._releases = releases
        self._keep = keep or LatchKeep(None, gate_id)
        self._unsaved: dict[str, LatchRecord] = {}
        self._reported: dict[str, str] = {}  # problems already counted, so each is counted once while it lasts
        self.redis_ok = False
        self._not_read: LatchRecord | None = LatchRecord.unreadable(latch_id("drawdown", "global")).model_copy(
            update={"tripped_by": NOT_READ_BY}
        )
        book.put(self._not_read)
        self.refused = 0  # records refused or overruled: a release nobody signed, unreadable, an old release put back
        self.unverified = 0  # trips no gate key verifies (held all the same)

    def observe(self, snapshot: PortfolioSnapshot, spec: PolicySpec, now: float) -> list[LatchRecord]:
        """Trip what the snapshot breaches (in memory, synchronously); the caller then calls `save`."""
        tripped = [r.signed_trip(self._signer) for r in trip_latches(self._book, snapshot, spec, now, self._gate_id)]
        for record in tripped:
            self._book.put(record)
            log.error(
                "risk latch %s tripped: observed %g, limit %g; reducing-only until a risk officer releases it",
                record.id,
                record.observed,
                record.limit,
            )
            self._unsaved[record.id] = record
        return tripped

    async def load_kept(self) -> int:
        """At start, before the first read of Redis: hold the latches kept on the spool volume (Redis then lifts
        one only with a release that covers it). Returns how many."""
        kept = await asyncio.to_thread(self._keep.load)
        for record in kept:
            current = self._book.get(record.id)
            if current is None or current.snapshot_ts < record.snapshot_ts:
                self._book.put(record)
        return len(kept)

    async def _persist(self) -> None:
        active = [record for record in self._book.active() if record is not self._not_read]
        if not self._keep.changed(active):
            return
        try:
            await asyncio.to_thread(self._keep.persist, active)
        except OSError as exc:
            log.error("risk latches not kept on the spool volume (%r); held in memory", exc)

    @property
    def unsaved(self) -> int:
        return len(self._unsaved)

    async def save(self) -> bool:
        """Store the latches tripped here and not stored yet, announcing each; False when Redis is away."""
        if not self._store:
            return True  # held in memory (kept over Redis's reads as unsaved), never stored
        for latch, record in list(self._unsaved.items()):
            try:
                stored = await store_tripped(self._redis, record, self._trips, self._releases)
            except (RedisError, OSError) as exc:
                log.warning("risk latch %s not stored yet (Redis: %r); held in memory and retried", latch, exc)
                return False
            # Not stored: Redis already holds it, or a human released it after this snapshot. Either way the
            # next read of Redis settles what this gate holds.
            self._unsaved.pop(latch, None)
            if stored and self._announce is not None:
                await self._announce(record)
        await self._persist()
        return True

    async def refresh(self) -> bool:
        """Store pending trips, then adopt Redis's latches (keeping trips still unsaved); False if Redis is away."""
        try:
            saved = await self.save()
            read = await read_latches(self._redis, self._trips, self._releases) if saved else None
        except (RedisError, OSError) as exc:
            log.debug("risk latches: %r", exc)
            read = None
        if read is not None and not read.complete:
            self._count(dict(read.problems), read.refused)
            read = None
        if read is None:
            if self.redis_ok:
                log.error("risk latches: Redis unreachable or unreadable; keeping the latches held in memory")
            self.redis_ok = False
            return False
        self.redis_ok = True
        if self._not_read is not None:
            self._book.discard(self._not_read)
            self._not_read = None
        problems = dict(read.problems)
        put_back = self._book.replace(read.records, keep=set(self._unsaved))
        for record in put_back:
            log.error(
                "risk latch %s: Redis lost it or holds an earlier trip's release over it; held and stored again",
                record.id,
            )
            problems[f"{record.id} put back"] = "held by this gate, lifted in Redis without a release covering it"
            self._unsaved[record.id] = record
        self._count(problems, read.refused)
        if put_back:
            await self.save()  # at once: other readers (gates starting, the control plane) see the latch again
        await self._persist()
        return True

    def _count(self, problems: dict[str, str], refused: set[str]) -> None:
        for key, problem in problems.items():
            if self._reported.get(key) == problem:
                continue
            if key in refused or key.endswith(" put back"):
                self.refused += 1
            else:
                self.unverified += 1
        self._reported = problems
