"""The Strategist's ears: it keeps the latest regime per symbol and the latest portfolio summary in Redis (only
allow-listed fields, `inputs.py`) and turns what it hears into triggers: a regime shift, a portfolio health
breach, a burst of rejections, a critical alert or a burst of warnings. A trigger starts a cycle through
`enqueue` unless one of its kind did within the debounce window (a Redis key, so several listeners agree).

Runs as `manage.py strategist_listen`. Its NATS identity may only read these subjects (deploy/access.py)."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from cio_kernel.audit_stream import AUDIT_SUBJECT_PREFIX
from cio_kernel.contracts.alert import Alert
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.contracts.regime import RegimeUpdate
from cio_kernel.subjects import ALERTS, MARKET_REGIME, PORTFOLIO_SNAPSHOT
from policies.strategist import triggers
from policies.strategist.inputs import PORTFOLIO_KEY, REGIME_KEY, PortfolioSummary, RegimeEntry

log = logging.getLogger(__name__)

DEBOUNCE_KEY_PREFIX = "strategist:debounce:"  # + trigger kind
REJECTED_SUBJECT = f"{AUDIT_SUBJECT_PREFIX}.rejected"
QUEUE = "cio-strategist"


@dataclass(frozen=True)
class ListenerSettings:
    debounce_s: float
    drawdown_at: float
    concentration_at: float
    rejection_burst: tuple[int, float]
    alert_burst: tuple[int, float]


Enqueue = Callable[[triggers.Trigger], Awaitable[None]]


class Listener:
    def __init__(
        self,
        redis: aioredis.Redis,
        enqueue: Enqueue,
        config: ListenerSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._enqueue = enqueue
        self._config = config
        self._clock = clock
        self._rejections = triggers.BurstDetector(triggers.REJECTION_BURST, *config.rejection_burst)
        self._warnings = triggers.BurstDetector(triggers.ALERT, *config.alert_burst)
        self.counters: Counter[str] = Counter()

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(MARKET_REGIME, queue=QUEUE, cb=self.on_regime)
        await nc.subscribe(PORTFOLIO_SNAPSHOT, queue=QUEUE, cb=self.on_snapshot)
        await nc.subscribe(REJECTED_SUBJECT, queue=QUEUE, cb=self.on_rejected)
        await nc.subscribe(ALERTS, queue=QUEUE, cb=self.on_alert)

    async def on_regime(self, msg: Msg) -> None:
        update = self._parse(RegimeUpdate, msg)
        if update is None:
            return
        raw = await self._redis.hget(REGIME_KEY, update.symbol)
        before = RegimeEntry.model_validate_json(raw) if raw else None
        after = RegimeEntry.of(update)
        await self._redis.hset(REGIME_KEY, update.symbol, after.model_dump_json())
        await self.fire(triggers.regime_shift(update.symbol, before, after))
        self.counters["regime"] += 1

    async def on_snapshot(self, msg: Msg) -> None:
        snapshot = self._parse(PortfolioSnapshot, msg)
        if snapshot is None:
            return
        raw = await self._redis.get(PORTFOLIO_KEY)
        before = PortfolioSummary.model_validate_json(raw) if raw else None
        after = PortfolioSummary.of(snapshot)
        await self._redis.set(PORTFOLIO_KEY, after.model_dump_json())
        config = self._config
        await self.fire(triggers.portfolio_breach(before, after, config.drawdown_at, config.concentration_at))
        self.counters["snapshot"] += 1

    async def on_rejected(self, msg: Msg) -> None:
        await self.fire(self._rejections.observe(self._clock()))
        self.counters["rejected"] += 1

    async def on_alert(self, msg: Msg) -> None:
        alert = self._parse(Alert, msg)
        if alert is None:
            return
        await self.fire(triggers.alert_trigger(alert, self._warnings, self._clock()))
        self.counters["alert"] += 1

    async def fire(self, trigger: triggers.Trigger | None) -> bool:
        """Start a cycle for `trigger` unless one of its kind started within the debounce window."""
        if trigger is None:
            return False
        key = f"{DEBOUNCE_KEY_PREFIX}{trigger.kind}"
        if not await self._redis.set(key, "1", nx=True, px=max(1, int(self._config.debounce_s * 1000))):
            self.counters[f"debounced_{trigger.kind}"] += 1
            return False
        try:
            await self._enqueue(trigger)
        except Exception:
            await self._redis.delete(key)  # not started: the next occurrence may try again at once
            log.exception("could not start a %s cycle", trigger.kind)
            return False
        self.counters[f"triggered_{trigger.kind}"] += 1
        log.info("trigger %s: cycle requested (%s)", trigger.kind, trigger.detail)
        return True

    def _parse(self, model: Any, msg: Msg) -> Any:
        try:
            return model.model_validate_json(msg.data)
        except ValidationError as exc:
            self.counters[f"invalid_{msg.subject}"] += 1
            log.warning("ignored an invalid message on %s (%d field errors)", msg.subject, exc.error_count())
            return None


def celery_enqueue() -> Enqueue:
    """Send the cycle task to the broker (off the event loop: the Celery client is blocking)."""
    from policies.strategist.tasks import run_cycle

    async def enqueue(trigger: triggers.Trigger) -> None:
        await asyncio.to_thread(run_cycle.apply_async, kwargs={"trigger": trigger.kind, "detail": trigger.detail})

    return enqueue
