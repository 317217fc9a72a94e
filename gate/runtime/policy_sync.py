"""Keeps the in-process copy of the active policy in step with Redis `policy:active`.

Loaded at start, on every `cio.strategist.update`, after any NATS or Redis reconnect and every
`policy_refresh_s` as a freshness check. A document is adopted only if its checksum matches its spec and the
control plane's signature verifies (`cio_kernel.policy.signing`); anything else is refused and counted. The copy
counts as *confirmed* only while Redis holds exactly its version and checksum: an older, missing or different
document is an anomaly (logged, counted, never adopted), and a copy unconfirmed for `policy_max_age_s` is
stale (→ RETRY_SAFE, `POLICY_STALE`). A document is re-read from Redis every refresh, but parsed and verified
only when its bytes change.

Nothing below the gate's version floor (`gate.runtime.policy_floor`: the highest version it knows was activated,
kept on disk, raised by what it adopts, by its peers' heartbeats and by the control plane's signed notices) is
ever adopted or confirms anything: a genuinely signed but older document is a replayed policy, refused and
counted as a rollback. A brand-new gate (no floor on disk) adopts nothing while it learns its floor
(`learning_floor`, set by the service for `CIO_POLICY_FLOOR_WAIT_S`). The floor is checked on adoption and on
confirmation, never per intent.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicyDocument, PolicySeal
from cio_kernel.policy.signing import PolicyVerifier
from gate.policy.compiled import CompiledPolicy
from gate.runtime.policy_floor import PolicyFloor

log = logging.getLogger(__name__)

# The control plane bounds a spec at 128 KiB of compact JSON (policies.models.MAX_SPEC_BYTES); with its envelope
# a genuine document stays well under this.
MAX_DOCUMENT_BYTES = 256 * 1024
FLOOR_WRITE_DELAY_S = 0.2


class PolicySync:
    def __init__(
        self,
        redis: aioredis.Redis,
        refresh_s: float,
        max_age_s: float,
        verifier: PolicyVerifier | None,
        monotonic: Callable[[], float] = time.monotonic,
        on_adopt: Callable[[CompiledPolicy], None] | None = None,
        floor: PolicyFloor | None = None,
    ) -> None:
        self._redis = redis
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._verifier = verifier
        self._monotonic = monotonic
        self._on_adopt = on_adopt
        self.verifier = verifier
        self._lock = asyncio.Lock()
        self.policy: CompiledPolicy | None = None
        self.confirmed_at: float | None = None  # monotonic time Redis last confirmed our copy
        self.redis_ok = False
        self.loads = 0
        self.refused = 0  # documents refused: unreadable, checksum mismatch, unsigned or badly signed
        self.anomalies = 0  # reads where Redis did not hold our version and checksum
        self.rollbacks = 0  # reads where Redis held a genuinely signed version below the floor (refused)
        self.floor = floor or PolicyFloor(None, "", verifier)
        self.learning_floor = False  # a brand-new gate learning its floor: nothing is adopted meanwhile
        self._persisting: asyncio.Task[None] | None = None
        self._last_raw: bytes | None = None
        self._last_problem: str | None = None
        if verifier is None:
            log.error(
                "no policy public key configured (CIO_POLICY_PUBLIC_KEY or CIO_POLICY_PUBLIC_KEY_FILE): every "
                "policy document will be refused and every intent answered RETRY_SAFE"
            )

    def usable(self, now_monotonic: float) -> CompiledPolicy | None:
        """The policy to decide with, or None when it is missing or stale."""
        if self.policy is None or self.confirmed_at is None:
            return None
        if now_monotonic - self.confirmed_at > self._max_age_s:
            return None
        return self.policy

    def is_stale(self, now_monotonic: float) -> bool:
        return self.policy is not None and self.usable(now_monotonic) is None

    def _problem(self, kind: str, message: str, *args: object) -> None:
        """Log a refusal or an anomaly once per distinct cause (it is re-read every refresh), count every one."""
        if kind == "refused":
            self.refused += 1
        elif kind == "rollback":
            self.rollbacks += 1
        else:
            self.anomalies += 1
        text = message % args
        if text != self._last_problem:
            log.error("policy %s: %s", kind, text)
            self._last_problem = text

    async def load(self, reason: str) -> bool:
        """Read `policy:active`; adopt it when newer and trustworthy. Returns whether Redis answered."""
        async with self._lock:
            try:
                raw = await self._redis.get(ACTIVE_POLICY_KEY)
            except (RedisError, OSError) as exc:
                if self.redis_ok:
                    log.error("policy load (%s): Redis unreachable: %r", reason, exc)
                self.redis_ok = False
                return False
            self.redis_ok = True
            if self.learning_floor:
                return True  # nothing is adopted before the floor is known (`end_floor_wait`)
            current = self.policy
            floor = self.floor.version
            if raw is None:
                if current is not None:
                    self._problem("anomaly", "%s is gone; v%d is not confirmed", ACTIVE_POLICY_KEY, current.version)
                return True
            raw = bytes(raw)
            if len(raw) > MAX_DOCUMENT_BYTES:  # no control-plane policy is this large: refuse without parsing it
                self._problem(
                    "refused", "%s is %d bytes, over the %d-byte limit", ACTIVE_POLICY_KEY, len(raw), MAX_DOCUMENT_BYTES
                )
                return True
            if raw == self._last_raw and current is not None and current.version >= floor:
                self.confirmed_at = self._monotonic()  # the very document we adopted: nothing to parse again
                return True
            # Parsing, checksumming and verifying a large policy takes a while: off the event loop.
            document = await asyncio.to_thread(self._trusted, raw, reason)
            if document is None:
                return True
            floor = self.floor.version  # again: a peer's heartbeat may have raised it while the document was parsed
            if document.version < floor:
                self._problem(
                    "rollback",
                    "Redis holds v%d (%s), below this gate's floor v%d (%s): an older policy put back, refused",
                    document.version,
                    document.checksum[:19],
                    floor,
                    self.floor.source,
                )
                return True
            if current is None or document.version > current.version:
                self.policy, self._last_raw, self._last_problem = CompiledPolicy(document), raw, None
                self.confirmed_at = self._monotonic()
                self.loads += 1
                log.info("policy v%d active (%s, checksum %s)", document.version, reason, document.checksum[:19])
                if self._on_adopt is not None:
                    self._on_adopt(self.policy)
                seal = document.seal()
                if seal is not None:
                    self._raise_floor(seal, "adopted", verified=True)
            elif document.version == current.version and document.checksum == current.checksum:
                self._last_raw = raw
                self.confirmed_at = self._monotonic()
            else:
                self._problem(
                    "anomaly",
                    "Redis holds v%d (%s), not our v%d (%s); not confirmed",
                    document.version,
                    document.checksum[:19],
                    current.version,
                    current.checksum[:19],
                )
            return True

    def _trusted(self, raw: bytes, reason: str) -> PolicyDocument | None:
        try:
            document = PolicyDocument.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)[:3]
            self._problem("refused", "%s is not a policy document (%s): %s", ACTIVE_POLICY_KEY, reason, errors)
            return None
        if not document.checksum_matches():
            self._problem("refused", "v%d's checksum does not match its spec", document.version)
            return None
        if not document.verified_by(self._verifier):
            self._problem(
                "refused",
                "v%d is not signed by a trusted control-plane key (signed_by=%s)",
                document.version,
                document.signed_by,
            )
            return None
        return document

    # -- the version floor ----------------------------------------------------------------------------------------
    def offer_floor(self, seal: PolicySeal, source: str, verified: bool = False) -> bool:
        """A seal from a peer's heartbeat or the control plane's notice (`verified`: the caller checked its
        signature); True when it raised the floor (a newer version was activated: re-read Redis)."""
        return self._raise_floor(seal, source, verified)

    def _raise_floor(self, seal: PolicySeal, source: str, verified: bool) -> bool:
        if not self.floor.raise_to(seal, source, verified):
            return False
        if source != "adopted":
            log.info("policy floor v%d (from %s)", seal.version, source)
        if self._persisting is None or self._persisting.done():
            self._persisting = asyncio.create_task(self._persist_floor(), name="policy-floor")
        return True

    async def _persist_floor(self) -> None:
        """Write the floor to disk off the event loop, a moment after it rose: an fsync commits the file system's
        journal, which can hold up the audit spool's appends, and the decisions right after a policy switch are
        the ones that must not wait. Rises in between are written together."""
        await asyncio.sleep(FLOOR_WRITE_DELAY_S)
        while self.floor.unwritten:
            try:
                await asyncio.to_thread(self.floor.persist)
            except OSError as exc:
                log.error(
                    "policy floor v%d could not be written: %r (a restart may have to learn it again)",
                    self.floor.version,
                    exc,
                )
                return

    async def flush_floor(self) -> None:
        """Write what is not written yet, now (at shutdown)."""
        if self._persisting is not None and not self._persisting.done():
            self._persisting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._persisting
        if self.floor.unwritten:
            await asyncio.to_thread(self.floor.persist)

    async def end_floor_wait(self, reason: str) -> bool:
        """A brand-new gate has learned what it could: decide from now on, with what Redis holds if it is not below
        the floor. Returns whether Redis answered."""
        self.learning_floor = False
        if self.floor.seal is None:
            log.warning(
                "no peer or control-plane notice vouched for any policy version (%s): taking what Redis holds",
                reason,
            )
        else:
            log.info("policy floor v%d learned from %s (%s)", self.floor.version, self.floor.source, reason)
        return await self.load(reason)

    def refresh_delay_s(self) -> float:
        # Retry quickly while Redis is away, so a reconnect is noticed within a fraction of a second.
        return self._refresh_s if self.redis_ok else 0.25

    async def refresh_step(self) -> bool:
        """One freshness check against Redis; whether the copy is confirmed afterwards."""
        await self.load("refresh")
        return self.confirmed_at is not None and self.redis_ok
