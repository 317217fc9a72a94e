"""Publishing an activation to the gates: Redis `policy:active` (check-and-set) and `cio.strategist.update`.

NATS is connected before Redis is written, so an unreachable NATS fails the activation before anything
changed; Redis is the commit point (gates poll it, so a version written there is live within seconds even if
the NATS notice were lost).
"""

import asyncio

import nats
import redis.asyncio as aioredis
from django.conf import settings

from gate.contracts.latch import LatchNotice, LatchRecord
from gate.contracts.policy_update import PolicyUpdate
from gate.policy.document import PolicyDocument
from gate.policy.latch_store import read_latches, release_latch
from gate.policy.store import read_active_policy, write_active_policy
from gate.runtime.subjects import GATE_HEARTBEAT_KEY_PREFIX, RISK_LATCH, STRATEGIST_UPDATE
from gate.runtime.wire import flush_ordered


class CacheUnavailableError(Exception):
    pass


class NewerVersionActiveError(Exception):
    pass


class NoticeNotSentError(Exception):
    """Redis holds the new version (so it is live: gates confirm it on their next poll) but the NATS notice
    could not be sent after all."""


async def _ignore(exc: Exception) -> None:
    return None


async def _publish(document: PolicyDocument, timeout_s: float) -> None:
    try:
        # A finite attempt count: with 0, nats-py retries forever and ignores the connect timeout.
        nc = await nats.connect(
            settings.NATS_URL,
            connect_timeout=timeout_s,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            name="cio-control-plane",
            error_cb=_ignore,  # the failure is raised below with its cause; no traceback per attempt
            inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
        )
    except Exception as exc:
        raise CacheUnavailableError(f"NATS is unreachable: {exc!r}") from exc
    redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        try:
            written = await write_active_policy(redis, document)
        except Exception as exc:
            raise CacheUnavailableError(f"Redis is unreachable: {exc!r}") from exc
        if not written:
            current = await read_active_policy(redis)
            raise NewerVersionActiveError(
                f"Redis already holds v{current.version if current else '?'}; v{document.version} was not written"
            )
        update = PolicyUpdate(version=document.version, checksum=document.checksum)
        try:
            await nc.publish(STRATEGIST_UPDATE, update.model_dump_json().encode())
            await flush_ordered(nc, timeout_s)
        except Exception as exc:
            raise NoticeNotSentError(f"v{document.version} is in Redis but the update notice failed: {exc!r}") from exc
    finally:
        await redis.aclose()
        await nc.close()


def publish_active_policy(document: PolicyDocument) -> None:
    asyncio.run(_publish(document, settings.CIO_ACTIVATION_TIMEOUT_S))


async def _read_heartbeats() -> list[bytes]:
    redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{GATE_HEARTBEAT_KEY_PREFIX}*", count=100)]
        return [value for value in await redis.mget(keys) if value is not None] if keys else []
    finally:
        await redis.aclose()


def read_gate_heartbeats() -> list[bytes]:
    return asyncio.run(_read_heartbeats())


def _short_redis() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


async def _read_latches() -> dict[str, LatchRecord]:
    redis = _short_redis()
    try:
        return await read_latches(redis)
    finally:
        await redis.aclose()


def read_risk_latches() -> dict[str, LatchRecord]:
    return asyncio.run(_read_latches())


async def _release(latch: str, at: float, by: str, reason: str) -> tuple[LatchRecord | None, str]:
    redis = _short_redis()
    try:
        try:
            released = await release_latch(redis, latch, at, by, reason)
        except Exception as exc:
            raise CacheUnavailableError(f"Redis is unreachable: {exc!r}") from exc
    finally:
        await redis.aclose()
    if released is None:
        return None, "not sent"
    # Gates re-read Redis every few seconds anyway; the notice only makes the release immediate.
    notice = LatchNotice(latch_id=latch, event="released", at=at, by=by)
    try:
        nc = await nats.connect(
            settings.NATS_URL,
            connect_timeout=settings.CIO_ACTIVATION_TIMEOUT_S,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            name="cio-control-plane",
            error_cb=_ignore,
            inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
        )
        try:
            await nc.publish(RISK_LATCH, notice.model_dump_json().encode())
            await flush_ordered(nc, settings.CIO_ACTIVATION_TIMEOUT_S)
        finally:
            await nc.close()
    except Exception as exc:
        return released, f"failed: {exc!r}"
    return released, "sent"


def release_risk_latch(latch: str, at: float, by: str, reason: str) -> tuple[LatchRecord | None, str]:
    """Release a latch in Redis (the commit point) and tell the gates; (released record or None, notice outcome)."""
    return asyncio.run(_release(latch, at, by, reason))
