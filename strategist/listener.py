"""The Strategist's ears: it keeps the latest regime per symbol and the latest portfolio summary in Redis (only
allow-listed fields, `inputs.py`) and turns what it hears into triggers: a regime shift, a portfolio health
breach, a burst of rejections, a critical alert or a burst of warnings. A trigger starts a cycle through
`enqueue` unless one of its kind did within the debounce window (a Redis key, so several listeners agree).

Inputs are stored sealed (`inputs.py`) and the previous entry is taken only when its seal verifies. A debounce key
holds a sealed token with the window as its expiry (`owned_keys.py`): one found without an expiry, with a longer
one or not ours is broken and counted, so no key can silence triggers for longer than one window. `celery_enqueue`
records each trigger as a `CycleRequest` before queueing the task, which carries only the row's id.

Runs as `manage.py strategist_listen`. Its NATS identity may only read these subjects (deploy/access.py)."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
from strategist import anomalies, owned_keys, triggers
from strategist.inputs import (
    PORTFOLIO,
    PORTFOLIO_KEY,
    REGIME,
    REGIME_KEY,
    Checked,
    PortfolioSummary,
    RegimeEntry,
    Sealed,
    sealed,
    unseal,
)

log = logging.getLogger(__name__)

DEBOUNCE_KEY_PREFIX = "strategist:debounce:"  # + trigger kind
DEBOUNCE_PURPOSE = "debounce"


def debounce_purpose(kind: str) -> str:
    # One purpose per kind: a genuine token read from one kind's window must not hold another kind's (a quiet
    # kind's window copied over a regime shift's would swallow the shift: the detectors are edge-triggered).
    return f"{DEBOUNCE_PURPOSE}.{kind}"


_ANY_AGE = float("inf")  # no age limit on "before" unless the settings give one (`strategist_listen` does)
REJECTED_SUBJECT = f"{AUDIT_SUBJECT_PREFIX}.rejected"
QUEUE = "cio-strategist"


@dataclass(frozen=True)
class ListenerSettings:
    debounce_s: float
    drawdown_at: float
    concentration_at: float
    rejection_burst: tuple[int, float]
    alert_burst: tuple[int, float]
    # How old the previous entry may be to count as "before" (the cycles' own limits under `make up`); older is
    # taken as absent, so a stressed report after a silence fires as a first report does.
    regime_max_age_s: float = float("inf")
    portfolio_max_age_s: float = float("inf")


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
        # When this listener last stored each input: Redis may hold nothing older (the `strategist` password can
        # write back an earlier sealed entry, e.g. an old "extreme" one so that a new extreme report is no shift).
        self._stored: dict[tuple[str, str], datetime] = {}

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
        before = await self._previous(REGIME, update.symbol, raw, RegimeEntry, self._config.regime_max_age_s)
        after = RegimeEntry.of(update)
        now = self._stamp(REGIME, update.symbol)
        await self._redis.hset(REGIME_KEY, update.symbol, sealed(REGIME, update.symbol, after, now))
        await self.fire(triggers.regime_shift(update.symbol, before, after))
        self.counters["regime"] += 1

    async def on_snapshot(self, msg: Msg) -> None:
        snapshot = self._parse(PortfolioSnapshot, msg)
        if snapshot is None:
            return
        raw = await self._redis.get(PORTFOLIO_KEY)
        before = await self._previous(PORTFOLIO, PORTFOLIO, raw, PortfolioSummary, self._config.portfolio_max_age_s)
        after = PortfolioSummary.of(snapshot)
        now = self._stamp(PORTFOLIO, PORTFOLIO)
        await self._redis.set(PORTFOLIO_KEY, sealed(PORTFOLIO, PORTFOLIO, after, now))
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

    def _stamp(self, kind: str, name: str) -> datetime:
        now = datetime.now(UTC)
        self._stored[(kind, name)] = now
        return now

    async def _previous(self, kind: str, name: str, raw: Any, model: Any, max_age_s: float = _ANY_AGE) -> Any:
        """The entry stored before, when it is ours, not older than what this listener last stored there, and
        within `max_age_s`; one that is not ours or older than our own last write is counted and taken as absent."""
        checked = Checked()
        before = unseal(kind, name, raw, model, datetime.now(UTC), max_age_s, checked)
        last = self._stored.get((kind, name))
        if before is not None and last is not None and Sealed.model_validate_json(raw).stored_at < last:
            checked.refuse(kind, "an earlier entry of ours written back (older than our last write)")
            before = None
        if checked.refused:
            self.counters[f"refused_{kind}"] += 1
            await asyncio.to_thread(anomalies.record, anomalies.INPUT_REFUSED, {"input": kind, "seen_by": "listener"})
        return before

    async def fire(self, trigger: triggers.Trigger | None) -> bool:
        """Start a cycle for `trigger` unless one of its kind started within the debounce window."""
        if trigger is None:
            return False
        key = f"{DEBOUNCE_KEY_PREFIX}{trigger.kind}"
        window_ms = max(1, int(self._config.debounce_s * 1000))
        purpose = debounce_purpose(trigger.kind)
        token = owned_keys.token(purpose, window_ms)
        if not await self._take(key, purpose, token, window_ms):
            self.counters[f"debounced_{trigger.kind}"] += 1
            return False
        try:
            await self._enqueue(trigger)
        except Exception:
            # Not started: the next occurrence may try again at once (only our own token is removed).
            await self._redis.eval(owned_keys.COMPARE_AND_DELETE, 1, key, token)
            log.exception("could not start a %s cycle", trigger.kind)
            return False
        self.counters[f"triggered_{trigger.kind}"] += 1
        log.info("trigger %s: cycle requested (%s)", trigger.kind, trigger.detail)
        return True

    async def _take(self, key: str, purpose: str, token: str, window_ms: int) -> bool:
        """Take the debounce window; a key found held by nobody legitimate is broken (and counted) first."""
        for _ in range(3):
            if await self._redis.set(key, token, nx=True, px=window_ms):
                return True
            held, pttl = await self._redis.get(key), await self._redis.pttl(key)
            if held is None or pttl == -2:
                continue  # lapsed meanwhile
            why = owned_keys.illegitimate(purpose, held, pttl, window_ms)
            if why is None:
                return False
            if await self._redis.eval(owned_keys.COMPARE_AND_DELETE, 1, key, held):
                self.counters["debounce_broken"] += 1
                log.error("broke an illegitimate debounce key %s: %s", key, why)
                await asyncio.to_thread(anomalies.record, anomalies.DEBOUNCE_ILLEGITIMATE, {"key": key, "reason": why})
        return False

    def _parse(self, model: Any, msg: Msg) -> Any:
        try:
            return model.model_validate_json(msg.data)
        except ValidationError as exc:
            self.counters[f"invalid_{msg.subject}"] += 1
            log.warning("ignored an invalid message on %s (%d field errors)", msg.subject, exc.error_count())
            return None


def celery_enqueue() -> Enqueue:
    """Record the trigger as a `CycleRequest`, then send the cycle task naming only that row (off the event loop:
    the database and the Celery client are blocking)."""
    from strategist import cycle_requests
    from strategist.tasks import run_cycle

    def record_and_send(trigger: triggers.Trigger) -> None:
        request = cycle_requests.record(trigger.kind, trigger.detail, via=cycle_requests.LISTENER)
        run_cycle.apply_async(kwargs={"trigger": trigger.kind, "request": request})

    async def enqueue(trigger: triggers.Trigger) -> None:
        await asyncio.to_thread(record_and_send, trigger)

    return enqueue
