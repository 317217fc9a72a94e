"""Run the alerting bridge: `cio.alert.>` → the audit store and a Celery delivery task per channel, with the
direct-email fallback for critical alerts (alerting/bridge.py), until SIGTERM/SIGINT."""

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from alerting.bridge import AlertBridge
from alerting.tasks import dispatch
from audit.store import get_store
from core.nats_listener import listen_until_stopped
from core.redis_clients import async_redis

log = logging.getLogger("alerting.bridge")
ESCALATION_PASS_S = 60.0  # as often as beat's sweep


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stats-every", type=float, default=60.0, help="seconds between counter log lines")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["stats_every"]))

    async def _run(self, stats_every: float) -> None:
        store = get_store()
        await asyncio.to_thread(store.ensure_schema)
        redis = async_redis(settings.CIO_ALERTING_REDIS_URL, 2)
        bridge = AlertBridge(
            store,
            redis,
            dispatch,
            dedup_window_s=settings.CIO_ALERT_DEDUP_WINDOW_S,
            direct_after_s=settings.CIO_ALERT_DIRECT_EMAIL_AFTER_S,
            escalate_every_s=ESCALATION_PASS_S,
        )

        async def finish() -> None:
            await bridge.drain()  # every critical alert still watched gets its fallback now
            await redis.aclose()

        log.info("alerting bridge: cio.alert.> -> audit store and channels (direct email fallback for critical)")
        await listen_until_stopped(
            "alerting bridge", bridge.subscribe, lambda: dict(bridge.counters), log, stats_every, finish
        )
