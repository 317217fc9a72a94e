"""Reading the gates' heartbeats as the control plane and the canary see them: `gate:heartbeat:<gate_id>` in
Redis, written by each gate every second with a short TTL (a stopped gate vanishes within seconds)."""

import logging

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError

from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.redis_keys import GATE_HEARTBEAT_KEY_PREFIX

log = logging.getLogger(__name__)


async def read_gate_heartbeats(redis: aioredis.Redis) -> list[GateHeartbeat]:
    """The latest heartbeat of every live gate, by gate id; unreadable entries are skipped."""
    keys = [key async for key in redis.scan_iter(match=f"{GATE_HEARTBEAT_KEY_PREFIX}*", count=100)]
    values = await redis.mget(keys) if keys else []
    beats = []
    for value in values:
        if value is None:
            continue
        try:
            beats.append(GateHeartbeat.model_validate(orjson.loads(value)))
        except (ValidationError, orjson.JSONDecodeError):
            log.warning("skipping an unreadable gate heartbeat in Redis")
    return sorted(beats, key=lambda beat: beat.gate_id)
