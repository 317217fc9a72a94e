"""Redis clients for the control plane's processes (web, management commands, Celery workers), from Django's
settings: at the component's URL, or through Sentinel when `CIO_REDIS_SENTINELS` is set (cio_kernel.redis_clients,
docs/redis-ha.md)."""

from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from cio_kernel.redis_clients import async_client, sync_client


def async_redis(url: str, timeout_s: float | None = None, **kwargs: Any) -> aioredis.Redis:
    """`url`: the component's own (`settings.REDIS_URL`, `CIO_STRATEGIST_REDIS_URL`, ...); `timeout_s` bounds
    both connecting and each reply."""
    if timeout_s is not None:
        kwargs |= {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    return async_client(url, settings.CIO_REDIS_SENTINEL, **kwargs)


def sync_redis(url: str, timeout_s: float | None = None, **kwargs: Any) -> redis.Redis:
    if timeout_s is not None:
        kwargs |= {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    return sync_client(url, settings.CIO_REDIS_SENTINEL, **kwargs)
