"""The snapshot bridge's NATS shell: every `CIO_SNAPSHOT_EVERY_S`, one round (read every configured symbol's
`/state`, convert, publish one `cio.portfolio.snapshot`), or, when anything in the round fails, nothing published
and an alert instead. Publishing nothing is the fail-safe: the gates' `SNAPSHOT_STALE` / `SNAPSHOT_MISSING` then
hold opening intents under exposure, drawdown and daily-loss limits, which a made-up snapshot would not.

`step()` is one round, so tests take rounds themselves; `run_until_stopped()` repeats it until SIGTERM/SIGINT.
"""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import nats
from nats.aio.client import Client as NATS

from bridges.engine_state.config import BridgeSettings
from bridges.engine_state.convert import EngineState, Tolerance, Unconvertible, to_snapshot
from bridges.engine_state.engine import EngineReadError, StateReader
from cio_kernel.alerting import AlertPublisher
from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.subjects import PORTFOLIO_SNAPSHOT

log = logging.getLogger("bridges.engine_state")
SOURCE = "snapshot-bridge"


@dataclass(frozen=True, slots=True)
class Round:
    """What one step did: a snapshot published, or the failure (`kind`, an alert key) and why."""

    snapshot: PortfolioSnapshot | None
    kind: str | None = None
    message: str = ""


class SnapshotBridge:
    def __init__(
        self,
        settings: BridgeSettings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.symbols = settings.symbols()
        self._clock = clock
        self._monotonic = monotonic
        self.nc: NATS | None = None
        self._http: httpx.AsyncClient | None = None
        self._reader: StateReader | None = None
        self.alerts: AlertPublisher | None = None
        self.published = 0
        self.failed_rounds = 0
        self.permission_violations = 0
        self._failing_since: float | None = None  # monotonic, while rounds fail
        self._failures_in_outage = 0
        self._stop = asyncio.Event()

    async def start(self) -> None:
        s = self.settings
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # the engine is named by CIO_ENGINE_STATE_URL alone, never by a proxy variable
            timeout=httpx.Timeout(s.engine_timeout_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )
        token = s.engine_state_token.get_secret_value() if s.engine_state_token else None
        self._reader = StateReader(self._http, s.engine_state_url, s.engine_timeout_s, s.engine_max_bytes, token)
        self.nc = await self._connect()
        self.alerts = AlertPublisher(self.nc.publish, SOURCE, s.snapshot_alert_every_s, self._monotonic)
        log.info(
            "snapshot bridge: %s for %s every %g s -> %s",
            s.engine_state_url,  # holds no credentials: `checked_state_url` refuses them
            ",".join(self.symbols),
            s.snapshot_every_s,
            PORTFOLIO_SNAPSHOT,
        )

    async def _connect(self) -> NATS:
        """Connect, waiting while NATS is not there yet (nats-py keeps trying the first connection too when
        reconnects are unlimited): a bridge started before NATS, or during its restart, waits for it rather than
        exiting. A stop request ends the wait (`ConnectionAbortedError`)."""
        s = self.settings
        connecting = asyncio.ensure_future(
            nats.connect(
                s.nats_url,
                **nats_credentials(),  # contradictory settings raise here, before any attempt
                name="cio-snapshot-bridge",
                inbox_prefix=s.nats_inbox_prefix,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1.0,
                connect_timeout=2,
                error_cb=self._on_nats_error,
            )
        )
        stopping = asyncio.ensure_future(self._stop.wait())
        done, _ = await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if connecting in done:
            return connecting.result()
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        raise ConnectionAbortedError(f"stopped before NATS at {s.nats_url} answered")

    async def _on_nats_error(self, exc: Exception) -> None:
        # NATS reports a refused publish here, asynchronously: counted, so a misconfigured identity shows.
        if "permissions violation" in str(exc).lower():
            self.permission_violations += 1
        log.warning("NATS: %s", exc)

    def request_stop(self) -> None:
        """End `run_until_stopped` after the round in progress (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def stop(self) -> None:
        self._stop.set()
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self._http is not None:
            await self._http.aclose()

    async def _read_all(self) -> dict[str, EngineState]:
        assert self._reader is not None
        reader = self._reader
        try:
            # A task group: the first failure cancels the other reads (the round is lost anyway).
            async with asyncio.TaskGroup() as group:
                tasks = {symbol: group.create_task(reader.read(symbol)) for symbol in self.symbols}
        except* EngineReadError as failed:
            raise failed.exceptions[0] from None
        return {symbol: task.result() for symbol, task in tasks.items()}

    async def step(self) -> Round:
        """One round. Its time is taken before the first request, so the snapshot never claims to be newer than
        the oldest figure in it."""
        assert self.nc is not None and self.alerts is not None
        ts = datetime.fromtimestamp(self._clock(), UTC)
        try:
            answers = await self._read_all()
            snapshot = to_snapshot(
                answers,
                ts,
                Tolerance(self.settings.snapshot_tolerance_usd, self.settings.snapshot_tolerance_fraction),
            )
        except (EngineReadError, Unconvertible) as exc:
            detail = getattr(exc, "detail", {})
            return await self._failed(exc.kind, exc.message, detail)
        except Exception as exc:  # a fault of ours: still nothing published, and still said
            log.exception("snapshot round failed")
            return await self._failed("internal", f"the bridge failed: {type(exc).__name__}", {})
        await self.nc.publish(PORTFOLIO_SNAPSHOT, snapshot.model_dump_json().encode())
        await flush_ordered(self.nc)
        self.published += 1
        await self._recovered()
        if self.published == 1:
            log.info(
                "first snapshot published: equity %.2f USD, %d positions, drawdown %.4f",
                snapshot.equity_usd,
                len(snapshot.positions),
                snapshot.drawdown_pct,
            )
        return Round(snapshot)

    async def _failed(self, kind: str, message: str, detail: dict[str, object]) -> Round:
        assert self.alerts is not None
        self.failed_rounds += 1
        self._failures_in_outage += 1
        now = self._monotonic()
        if self._failing_since is None:
            self._failing_since = now
        log.warning("no snapshot published (%s): %s", kind, message)
        await self.alerts.raise_alert(
            f"engine_{kind}",
            Severity.WARNING,
            f"snapshot bridge: no portfolio snapshot published ({kind})",
            {"why": message, **detail, "symbols": list(self.symbols)},
        )
        outage_s = now - self._failing_since
        if outage_s >= self.settings.snapshot_critical_after_s:
            await self.alerts.raise_alert(
                "snapshot_outage",
                Severity.CRITICAL,
                # A fixed title: alerting deduplicates by title, and the outage's length is in the detail.
                "snapshot bridge: no portfolio snapshot; gates refuse opening intents under exposure, drawdown "
                "and daily-loss limits",
                {"why": message, "outage_s": round(outage_s, 1), "failed_rounds": self._failures_in_outage},
            )
        if self.nc is not None and self.nc.is_connected:
            await flush_ordered(self.nc)
        return Round(None, kind, message)

    async def _recovered(self) -> None:
        if self._failing_since is None:
            return
        assert self.alerts is not None
        outage_s = self._monotonic() - self._failing_since
        failed = self._failures_in_outage
        self._failing_since, self._failures_in_outage = None, 0
        log.info("snapshots resumed after %.1f s (%d rounds without one)", outage_s, failed)
        await self.alerts.raise_alert(
            "snapshot_recovered",
            Severity.INFO,
            "snapshot bridge: portfolio snapshots resumed",
            {"outage_s": round(outage_s, 1), "failed_rounds": failed},
        )
        if self.nc is not None:
            await flush_ordered(self.nc)

    async def run_until_stopped(self, handle_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
        except ConnectionAbortedError as exc:
            log.info("snapshot bridge stopped: %s", exc)
            await self.stop()
            return
        try:
            while not self._stop.is_set():
                began = loop.time()
                try:
                    await self.step()
                except Exception:  # a bug in a round must not end the bridge; the next round tries again
                    log.exception("snapshot round failed")
                wait = max(0.0, self.settings.snapshot_every_s - (loop.time() - began))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
        finally:
            await self.stop()
            log.info("snapshot bridge stopped: %d published, %d rounds without one", self.published, self.failed_rounds)
