"""The gate's wiring: connects, builds its three rooms (intake, notices, beats), subscribes them through one table,
runs the periodic jobs, and shuts down in order.

- `Intake` (gate/runtime/intake.py): the hot path, intents in, decisions out, one flush per event-loop turn;
- `Notices` (gate/runtime/notices.py): policy updates, latch and trading-state notices, peers, snapshots;
- `Beats` (gate/runtime/beats.py): heartbeats, pings, audit checkpoints, alerts, the latch refresh.
"""

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.js.errors import BadRequestError
from opentelemetry.sdk.trace import TracerProvider

from cio_kernel import subjects
from cio_kernel.audit_stream import audit_stream_config, retention_shortfall
from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.heartbeat import FleetHeartbeat, GateCounters, GateHeartbeat
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.signing import PolicyVerifier
from cio_kernel.redis_clients import async_client
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.audit_checkpoints import AuditCheckpointer, load_signer
from gate.runtime.audit_outbox import AuditOutbox
from gate.runtime.beats import Beats
from gate.runtime.clock import Clock, SystemClock
from gate.runtime.intake import Intake
from gate.runtime.latch_keep import LatchKeep
from gate.runtime.latch_sync import LatchSync
from gate.runtime.notices import Notices
from gate.runtime.pipeline import DecisionPipeline
from gate.runtime.policy_floor import PolicyFloor
from gate.runtime.policy_sync import PolicySync
from gate.runtime.probes import GateHealth
from gate.runtime.shadow import record_promotions
from gate.runtime.shared import Links, Shared
from gate.runtime.subscriptions import Stage, Subscribe, SubscriptionTable
from gate.runtime.telemetry import DecisionTracer, build_tracer_provider
from gate.runtime.wire import NatsWriter

log = logging.getLogger(__name__)


async def _every(
    delay_s: Callable[[], float], step: Callable[[], Awaitable[object]], first: float | None = None
) -> None:
    """Run `step` forever, `delay_s()` apart (re-read each time: a delay can depend on the state). A failing step
    is logged and retried; it never ends the loop."""
    await asyncio.sleep(delay_s() if first is None else first)
    while True:
        try:
            await step()
        except Exception:
            log.exception("periodic step %s failed", getattr(step, "__qualname__", step))
        await asyncio.sleep(delay_s())


class Gate:
    def __init__(
        self,
        settings: GateSettings,
        clock: Clock | None = None,
        run_loops: bool = True,
        pipeline_type: type[DecisionPipeline] = DecisionPipeline,
    ) -> None:
        """`run_loops=False` starts no periodic work (heartbeats, refreshes): a test drives each step itself.
        `pipeline_type` lets a test decide with a pipeline of its own (one that fails, say)."""
        self.settings = settings
        self._run_loops = run_loops
        self.clock: Clock = clock or SystemClock()
        self.counters = GateCounters()
        self.state = GateState(dedupe_id_ttl_s=settings.dedupe_id_ttl_s)
        # Through Sentinel when configured: a connection lost in a failover is dropped and the next one goes to the
        # primary the Sentinels name; meanwhile the policy held stays usable until `policy_max_age_s`.
        self._redis: aioredis.Redis = async_client(
            settings.redis_url,
            settings.redis_sentinel(),
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            health_check_interval=5,
        )
        verifier = PolicyVerifier.from_config(settings.policy_public_key, settings.policy_public_key_file)
        self.policy_sync = PolicySync(
            self._redis,
            settings.policy_refresh_s,
            settings.policy_max_age_s,
            verifier,
            self.clock.monotonic,
            on_adopt=lambda policy: self.state.drop_overrides(policy.version),
            floor=PolicyFloor(settings.audit_spool_dir, settings.gate_id, verifier),
        )
        self._audit_signer = load_signer(settings.audit_signing_key_file)
        self.links = Links()
        self.latch_sync = LatchSync(
            self._redis,
            self.state.latches,
            settings.gate_id,
            lambda record: self.notices.announce_latch(record),
            signer=self._audit_signer,
            releases=verifier,
            # A shadow gate's own trips die with it: not kept on the volume, not stored (gate/runtime/shadow.py).
            keep=None if settings.gate_shadow else LatchKeep(settings.audit_spool_dir, settings.gate_id),
            store=not settings.gate_shadow,
        )
        self._tracer_provider: TracerProvider | None = build_tracer_provider("petrosa-cio-gate", settings.gate_id)
        tracer = DecisionTracer(self._tracer_provider, settings.trace_sample_ratio)
        self.pipeline = pipeline_type(settings, self.policy_sync, self.state, tracer, self.counters, clock=self.clock)
        shared = Shared(settings, self.clock, self.state, self.counters, self.policy_sync, self.latch_sync, self.links)
        self.notices = Notices(shared)
        self.intake = Intake(
            shared,
            self.pipeline,
            alert=lambda key, title, detail: self.beats.raise_alert(key, Severity.WARNING, title, dict(detail)),
        )
        self.beats = Beats(
            shared,
            self._redis,
            self._audit_signer,
            busy_since=lambda: self.intake.inflight_since,
            observe_latches=self.notices.observe_latches,
        )
        self.subscriptions = SubscriptionTable(self._subscriptions())
        self.health = GateHealth(shared, self.intake.decisions, self.beats.healthy, self.beats.sync_counters)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._recreating: asyncio.Task[None] | None = None
        self._nats_lost_at: float | None = None

    def _subscriptions(self) -> list[Subscribe]:
        """Every subscription the gate makes. Peers' heartbeats and the control plane's notices carry signed
        floors: heard before the first policy load (`Stage.FLOOR`)."""
        notices, floor = self.notices, Stage.FLOOR
        return [
            Subscribe("policy-update", subjects.STRATEGIST_UPDATE, notices.on_policy_update, stage=floor),
            Subscribe("peer-heartbeat", subjects.GATE_HEARTBEAT, notices.on_peer_heartbeat, stage=floor),
            Subscribe("latch-notice", subjects.RISK_LATCH, notices.on_latch_notice),
            Subscribe("trading-state", subjects.TRADING_STATE, notices.on_trading_state_notice),
            Subscribe("snapshot", subjects.PORTFOLIO_SNAPSHOT, notices.on_snapshot),
            Subscribe("ping", subjects.GATE_PING, self.beats.on_ping),
            Subscribe("peer-promotion", subjects.GATE_PROMOTION, notices.on_peer_promotion, pending_msgs_limit=200_000),
            *self.intake.entries,
        ]

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.health.start()  # first: the kubelet sees a live, unready gate while it connects
        links = self.links
        links.nc = nc = await self._connect_nats()
        links.writer = NatsWriter(nc)
        await self._ensure_audit_stream()
        links.outbox = outbox = AuditOutbox(
            nc,
            self.settings.audit_spool_dir,
            self.settings.gate_id,
            self.settings.audit_ack_timeout_s,
            batch_window_s=self.settings.audit_batch_window_ms / 1000.0,
            on_no_stream=self._recreate_audit_stream,
        )
        await outbox.start()
        if self.settings.uses_intake_stream:
            await self.intake.open_stream()
        if self.settings.gate_shadow:
            await record_promotions(nc, self.settings)
        if self._audit_signer is not None:
            links.checkpointer = AuditCheckpointer(
                nc,
                self._audit_signer,
                self.settings.gate_id,
                lambda: outbox.chain_tip,
                self.settings.audit_checkpoint_stream,
                self.settings.audit_checkpoint_subject_prefix,
                self.clock.time,
                replayed=dict(outbox.replayed_heads),
                replicas=self.settings.audit_replicas,
            )
            await links.checkpointer.ensure_stream()
        # The floor on this volume first: nothing may be adopted before it is known (a notice can arrive at once).
        floor = self.policy_sync.floor
        await asyncio.to_thread(floor.load)
        # Brand-new (no floor on this volume): learn it from peers and the control plane before deciding.
        self.policy_sync.learning_floor = floor.seal is None and self.settings.policy_floor_wait_s > 0
        await self.subscriptions.subscribe(nc, Stage.FLOOR)
        await flush_ordered(nc)
        if self.policy_sync.learning_floor:
            self.notices.learn_floor()
        else:
            await self.policy_sync.load("start")
        await self.latch_sync.load_kept()
        await self.latch_sync.refresh()
        await self.subscriptions.subscribe(nc, Stage.SERVE)
        await flush_ordered(nc)
        await self.intake.start_stream()
        if self._run_loops:
            # Each periodic job is one step (what a test drives directly) repeated by `_every`.
            sync = self.policy_sync
            jobs = [(sync.refresh_delay_s, sync.refresh_step, None), *self.beats.jobs()]
            if self.intake.stream is not None:
                jobs.append((lambda: 5.0, self.intake.stream.watch_step, None))
            self._tasks = [asyncio.create_task(_every(delay, step, first)) for delay, step, first in jobs]
        self.health.serving = True
        policy = self.policy_sync.policy
        log.info(
            "gate %s ready on %s (policy %s)",
            self.settings.gate_id,
            self.settings.nats_url,
            f"v{policy.version}"
            if policy
            else f"learning its version floor for {self.settings.policy_floor_wait_s:g} s: answering RETRY_SAFE"
            if self.policy_sync.learning_floor
            else "none: answering RETRY_SAFE",
        )

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        # The process is the gate: everything allocated so far lives for the whole run, so keep it out of every
        # future collection, and collect young objects less often (the hot path allocates plenty, few cycles).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        await self._stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        """Stop taking intents, finish in-flight ones, flush audit publishes, then close."""
        log.info("gate %s stopping: draining intake", self.settings.gate_id)
        self.health.serving = False  # unready at once: no new traffic while draining
        links = self.links
        if self.intake.stream is not None:
            await self.intake.stream.stop()
        await self.subscriptions.drain(self.intake.entries)
        nc = links.connected()
        if nc is not None:
            with contextlib.suppress(Exception):
                await flush_ordered(nc, 2)
        if links.outbox is not None:
            flushed = await links.outbox.drain(self.settings.shutdown_timeout_s)
            log.info(
                "audit outbox %s (%d published)",
                "flushed" if flushed else "left spooled",
                links.outbox.counters.published,
            )
            await links.outbox.close()
        for task in (self.beats.storing, self.notices.learning, self.notices.latch_follow):
            if task is not None:
                self._tasks.append(task)
        with contextlib.suppress(Exception):
            await self.policy_sync.flush_floor()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.checkpoint_step()  # vouch for the last events (spooled ones too: a successor replays them)
        if links.nc is not None:
            with contextlib.suppress(Exception):
                await links.nc.drain()
        await self._redis.aclose()
        await self.health.stop()
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        log.info(
            "gate %s stopped: %s; subscriptions (received, errors): %s; intents answered %s: %d",
            self.settings.gate_id,
            self.heartbeat().counters.model_dump(),
            self.subscriptions.counts(),
            "GATE_INTERNAL_ERROR",
            self.intake.failures,
        )

    async def _connect_nats(self) -> NATS:
        delay = 0.2
        credentials = nats_credentials()  # a contradiction in them is a start-up error, not worth retrying
        while True:
            try:
                return await nats.connect(
                    self.settings.nats_url,
                    **credentials,
                    name=f"cio-gate:{self.settings.gate_id}",
                    no_echo=True,  # its own promotion notices and latch trips are nothing it needs to read back
                    inbox_prefix=self.settings.nats_inbox_prefix,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=self._on_nats_error,
                    reconnected_cb=self._on_nats_reconnected,
                    disconnected_cb=self._on_nats_disconnected,
                    pending_size=64 * 1024 * 1024,
                )
            except Exception as exc:
                if self._stopping.is_set():
                    raise
                log.warning("NATS %s unreachable (%r); retrying in %.1fs", self.settings.nats_url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _ensure_audit_stream(self) -> None:
        """Create `CIO_AUDIT` if missing (an existing stream is used as it is)."""
        assert self.links.nc is not None
        js = self.links.nc.jetstream()
        config = audit_stream_config(
            self.settings.audit_stream,
            self.settings.audit_subject_prefix,
            self.settings.audit_duplicate_window_s,
            self.settings.audit_max_age_s,
            self.settings.audit_max_bytes,
            self.settings.audit_replicas,
        )
        try:
            info = await js.add_stream(config)
        except BadRequestError:
            info = await js.stream_info(self.settings.audit_stream)  # exists with another config: use it as it is
        # The limits in force (perhaps another release's) against the stated rate: say when the size, not the
        # age, decides how long events wait for the audit store (docs/nats-cluster.md, "Sizing CIO_AUDIT").
        actual = info.config
        limited = bool(actual.max_age) and actual.max_bytes is not None and actual.max_bytes > 0
        shortfall = limited and retention_shortfall(
            actual.max_age or 0.0, actual.max_bytes or 0, self.settings.audit_expected_rate_per_day
        )
        if shortfall:
            log.warning("audit stream: %s", shortfall)

    def _recreate_audit_stream(self) -> None:
        """JetStream lost the stream (a NATS restart on empty storage): recreate it; the outbox retries meanwhile."""
        if self._recreating is None or self._recreating.done():
            log.error("audit stream %s is gone; recreating it", self.settings.audit_stream)
            self._recreating = asyncio.create_task(self._ensure_audit_stream(), name="audit-stream")

    # -- the connection --------------------------------------------------------------------------------------
    async def _on_nats_error(self, exc: Exception) -> None:
        # nats-py reports a refused publish or subscribe here, asynchronously; the call itself returned normally.
        if "permissions violation" in str(exc).lower():
            self.counters.permission_violations += 1
            log.error("NATS refused this gate an operation its credentials do not allow: %s", exc)
            return
        log.error("NATS error: %r", exc)

    async def _on_nats_disconnected(self) -> None:
        log.warning("NATS disconnected")
        if self._nats_lost_at is None:
            self._nats_lost_at = self.clock.monotonic()

    async def _on_nats_reconnected(self) -> None:
        log.info("NATS reconnected; re-reading the policy and the risk latches")
        if self.intake.stream is not None:
            self.intake.stream.reconnected()
        await self.policy_sync.load("nats-reconnect")
        await self.latch_sync.refresh()
        if self._nats_lost_at is not None:  # the alert can only leave now that NATS is back
            lost_s = round(self.clock.monotonic() - self._nats_lost_at, 3)
            self._nats_lost_at = None
            await self.beats.raise_alert(
                "nats_lost", Severity.WARNING, f"gate lost NATS for {lost_s:g} s (reconnected)", {"lost_s": lost_s}
            )

    # -- the steps tests and tools drive (the periodic jobs run the same) -------------------------------------
    def heartbeat(self) -> GateHeartbeat:
        return self.beats.heartbeat()

    def fleet_heartbeat(self) -> FleetHeartbeat:
        return self.beats.fleet_heartbeat()

    async def heartbeat_step(self) -> bool:
        return await self.beats.heartbeat_step()

    async def fleet_heartbeat_step(self) -> bool:
        return await self.beats.fleet_heartbeat_step()

    async def alert_step(self) -> int:
        return await self.beats.alert_step()

    async def checkpoint_step(self) -> bool:
        return await self.beats.checkpoint_step()

    async def latch_refresh_step(self) -> None:
        await self.beats.latch_refresh_step()
