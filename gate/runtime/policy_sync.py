"""Keeps the in-process copy of the active policy in step with Redis `policy:active`.

Loaded at start, on every `cio.strategist.update`, after any NATS or Redis reconnect and every
`policy_refresh_s` as a freshness check. An older or equal version is ignored; a document whose checksum does
not match its spec is refused. The copy counts as stale (→ RETRY_SAFE) once Redis could not confirm it for
`policy_max_age_s`.
"""

import asyncio
import logging
import time

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from gate.policy.compiled import CompiledPolicy
from gate.policy.document import ACTIVE_POLICY_KEY, PolicyDocument

log = logging.getLogger(__name__)


class PolicySync:
    def __init__(self, redis: aioredis.Redis, refresh_s: float, max_age_s: float) -> None:
        self._redis = redis
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self.policy: CompiledPolicy | None = None
        self.confirmed_at: float | None = None  # monotonic time Redis last confirmed our copy
        self.redis_ok = False
        self.loads = 0

    def usable(self, now_monotonic: float) -> CompiledPolicy | None:
        """The policy to decide with, or None when it is missing or stale."""
        if self.policy is None or self.confirmed_at is None:
            return None
        if now_monotonic - self.confirmed_at > self._max_age_s:
            return None
        return self.policy

    def is_stale(self, now_monotonic: float) -> bool:
        return self.policy is not None and self.usable(now_monotonic) is None

    async def load(self, reason: str) -> bool:
        """Read `policy:active`; adopt it when newer. Returns whether Redis answered."""
        async with self._lock:
            try:
                raw = await self._redis.get(ACTIVE_POLICY_KEY)
            except (RedisError, OSError) as exc:
                if self.redis_ok:
                    log.error("policy load (%s): Redis unreachable: %r", reason, exc)
                self.redis_ok = False
                return False
            self.redis_ok = True
            if raw is None:
                if self.policy is not None:
                    log.error(
                        "policy load (%s): %s is gone from Redis; keeping v%d",
                        reason,
                        ACTIVE_POLICY_KEY,
                        self.policy.version,
                    )
                self.confirmed_at = time.monotonic() if self.policy is not None else None
                return True
            try:
                document = PolicyDocument.model_validate_json(raw)
            except ValidationError as exc:
                log.error(
                    "policy load (%s): %s is invalid, keeping the current policy: %s",
                    reason,
                    ACTIVE_POLICY_KEY,
                    exc.errors(include_url=False, include_input=False),
                )
                return True
            if not document.checksum_matches():
                log.error("policy load (%s): v%d checksum mismatch, refused", reason, document.version)
                return True
            current = self.policy
            if current is None or document.version > current.version:
                self.policy = CompiledPolicy(document)
                self.loads += 1
                log.info("policy v%d active (%s, checksum %s)", document.version, reason, document.checksum[:19])
            elif document.version < current.version:
                log.warning(
                    "policy load (%s): Redis holds v%d, older than our v%d; ignored",
                    reason,
                    document.version,
                    current.version,
                )
            self.confirmed_at = time.monotonic()
            return True

    async def refresh_forever(self) -> None:
        while True:
            # Retry quickly while Redis is away, so a reconnect is noticed within a fraction of a second.
            await asyncio.sleep(self._refresh_s if self.redis_ok else 0.25)
            await self.load("refresh")
