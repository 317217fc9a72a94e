"""Run the alerting bridge: `cio.alert.>` → the audit store and a Celery delivery task per channel, with the
direct-email fallback for critical alerts (audit/alerting/bridge.py), until SIGTERM/SIGINT."""

import asyncio
import contextlib
import logging
import signal
from typing import Any

import nats
import redis.asyncio as aioredis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from audit.alerting.bridge import AlertBridge
from audit.alerting.dispatch import dispatch
from audit.store import get_store

log = logging.getLogger("alerting.bridge")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stats-every", type=float, default=60.0, help="seconds between counter log lines")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["stats_every"]))

    async def _run(self, stats_every: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        store = get_store()
        await asyncio.to_thread(store.ensure_schema)
        redis = aioredis.Redis.from_url(settings.CIO_ALERTING_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        bridge = AlertBridge(
            store,
            redis,
            dispatch,
            dedup_window_s=settings.CIO_ALERT_DEDUP_WINDOW_S,
            direct_after_s=settings.CIO_ALERT_DIRECT_EMAIL_AFTER_S,
        )
        nc = await nats.connect(
            settings.NATS_URL,
            name="cio-alerting-bridge",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1.0,
            inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
        )
        await bridge.subscribe(nc)
        await nc.flush()
        log.info("alerting bridge: cio.alert.> -> audit store and channels (direct email fallback for critical)")
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), stats_every)
                log.info("alerting bridge: %s", dict(bridge.counters))
        finally:
            with contextlib.suppress(Exception):
                await nc.drain()
            await bridge.drain()
            await redis.aclose()
