"""The gate's probes and its metrics endpoint (docs/metrics.md), on `CIO_GATE_HEALTH_HOST`:`CIO_GATE_HEALTH_PORT`
(no port, no server).

- ready (`/healthz/ready`): started, not learning its version floor, NATS connected, and a policy Redis confirmed
  recently enough to decide with. 503 otherwise, with the reason: the gate would answer RETRY_SAFE.
- live (`/healthz/live`): no intent stuck in processing longer than `CIO_STUCK_AFTER_S` (what stops the
  heartbeats, gate/runtime/beats.py), and the event loop's last tick not late by that much. A loop blocked right
  now cannot answer at all: the probe times out, a failure all the same.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable

import orjson

from cio_kernel.exposition import CONTENT_TYPE
from gate.runtime.health_server import Answer, HealthServer
from gate.runtime.metrics import DecisionMetrics, GateView, render
from gate.runtime.shared import Shared

_TICK_S = 0.5
_JSON = "application/json"


class GateHealth:
    def __init__(
        self,
        shared: Shared,
        decisions: DecisionMetrics,
        healthy: Callable[[], bool],
        sync_counters: Callable[[], None],
    ) -> None:
        self._shared = shared
        self._healthy = healthy
        self.serving = False  # set by the gate once it takes intents, cleared when it starts stopping
        self.lag_s = 0.0  # how late the loop ran its last tick (real time, whatever the gate's clock)
        self._ticker: asyncio.Task[None] | None = None
        self._view = GateView(
            shared, decisions, sync_counters, self.ready, lambda: self.lag_s, shared.clock.monotonic()
        )
        settings = shared.settings
        self.server: HealthServer | None = None
        if settings.gate_health_port:
            self.server = HealthServer(
                settings.gate_health_host,
                settings.gate_health_port,
                {"/healthz/ready": self._ready_route, "/healthz/live": self._live_route, "/metrics": self._metrics},
            )

    async def start(self) -> None:
        if self.server is None:
            return
        await self.server.start()
        self._ticker = asyncio.create_task(self._tick(), name="loop-tick")

    async def stop(self) -> None:
        self.serving = False
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.server is not None:
            await self.server.stop()

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(_TICK_S)
            self.lag_s = max(0.0, time.monotonic() - before - _TICK_S)

    def ready(self) -> tuple[bool, str]:
        shared = self._shared
        sync = shared.policy_sync
        if not self.serving:
            return False, "not serving (starting or stopping)"
        if sync.learning_floor:
            return False, "learning its policy version floor from peers"
        if shared.links.connected() is None:
            return False, "NATS disconnected"
        if sync.usable(shared.clock.monotonic()) is None:
            return False, "policy stale: Redis has not confirmed it recently" if sync.policy else "no policy"
        return True, "ok"

    def live(self) -> tuple[bool, str]:
        if not self._healthy():
            return False, "an intent is stuck in processing"
        if self.lag_s > self._shared.settings.stuck_after_s:
            return False, f"the event loop was blocked for {self.lag_s:.1f} s"
        return True, "ok"

    def _ready_route(self) -> Answer:
        return _probe(*self.ready())

    def _live_route(self) -> Answer:
        return _probe(*self.live())

    def _metrics(self) -> Answer:
        return 200, CONTENT_TYPE, render(self._view).encode()


def _probe(ok: bool, reason: str) -> Answer:
    return (200 if ok else 503), _JSON, orjson.dumps({"status": "ok" if ok else "fail", "reason": reason})
