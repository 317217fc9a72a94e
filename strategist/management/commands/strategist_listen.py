"""Listen for the Strategist's inputs and triggers (`cio.market.regime`, `cio.portfolio.snapshot`, rejected
decisions, `cio.alert.>`) until SIGTERM/SIGINT; see strategist/listener.py."""

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from core.nats_listener import listen_until_stopped
from core.redis_clients import async_redis
from strategist.listener import Listener, ListenerSettings, celery_enqueue
from strategist.triggers import parse_burst

log = logging.getLogger("strategist.listener")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stats-every", type=float, default=60.0, help="seconds between counter log lines")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["stats_every"]))

    async def _run(self, stats_every: float) -> None:
        redis = async_redis(settings.CIO_STRATEGIST_REDIS_URL)
        listener = Listener(
            redis,
            celery_enqueue(),
            ListenerSettings(
                debounce_s=settings.CIO_STRATEGIST_DEBOUNCE_S,
                drawdown_at=settings.CIO_STRATEGIST_DRAWDOWN_TRIGGER,
                concentration_at=settings.CIO_STRATEGIST_CONCENTRATION_TRIGGER,
                rejection_burst=parse_burst(settings.CIO_STRATEGIST_REJECTION_BURST),
                alert_burst=parse_burst(settings.CIO_STRATEGIST_ALERT_BURST),
                regime_max_age_s=float(settings.CIO_STRATEGIST_REGIME_MAX_AGE_S),
                portfolio_max_age_s=float(settings.CIO_STRATEGIST_PORTFOLIO_MAX_AGE_S),
            ),
        )
        log.info("strategist listener: regime, portfolio, rejections and alerts -> triggers")
        await listen_until_stopped(
            "strategist listener", listener.subscribe, lambda: dict(listener.counters), log, stats_every, redis.aclose
        )
