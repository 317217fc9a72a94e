"""Deduplication: the same source and title within `CIO_ALERT_DEDUP_WINDOW_S` is one alert. The first is
delivered; repeats are kept, pointing at it (`duplicate_of`), and counted in admin. The window lives in Redis
(`alerting:dedup:<hash>`), so several bridges agree."""

import hashlib
from typing import Any

from cio_kernel.contracts.alert import Alert

KEY_PREFIX = "alerting:dedup:"


def key(alert: Alert) -> str:
    digest = hashlib.sha256(f"{alert.source}\x00{alert.title}".encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}{digest}"


async def first_of(redis: Any, alert: Alert, window_s: float) -> str | None:
    """None when `alert` opens a window (deliver it); otherwise the id of the alert that opened it."""
    if await redis.set(key(alert), alert.alert_id, nx=True, px=max(1, int(window_s * 1000))):
        return None
    first = await redis.get(key(alert))
    return first.decode() if isinstance(first, bytes) else first
