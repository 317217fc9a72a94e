"""The gate's I/O shell: NATS subscriptions, publishing what the pipeline decides, heartbeats, shutdown."""

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
import orjson
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import BadRequestError
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from cio_kernel import heartbeat_seal, subjects
from cio_kernel.alerting import AlertPublisher
from cio_kernel.audit_stream import audit_stream_config
from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.heartbeat import FleetHeartbeat, GateCounters, GateHeartbeat
from cio_kernel.contracts.identity import IdentityError
from cio_kernel.contracts.intake_claim import IntakeClaim
from cio_kernel.contracts.latch import LatchNotice, LatchRecord
from cio_kernel.contracts.policy_update import PolicyUpdate
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.contracts.promotion import PromotionNotice
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.intake_stream import fingerprint
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicySeal
from cio_kernel.policy.signing import PolicyVerifier
from cio_kernel.policy.spec import TradingState
from cio_kernel.redis_keys import GATE_HEARTBEAT_KEY_PREFIX
from gate.config import GateSettings
from gate.decision.latches import applies_today
from gate.decision.state import GateState
from gate.runtime.alert_watch import AlertWatch
from gate.runtime.arrival_clock import ArrivalClock
from gate.runtime.audit_checkpoints import AuditCheckpointer, load_signer
from gate.runtime.audit_outbox import AuditOutbox
from gate.runtime.clock import Clock, SystemClock
from gate.runtime.intake_consumer import IntakeConsumer
from gate.runtime.latch_keep import LatchKeep
from gate.runtime.latch_sync import LatchSync
from gate.runtime.pipeline import DecisionPipeline, Outcome
from gate.runtime.policy_floor import PolicyFloor
from gate.runtime.policy_sync import PolicySync
from gate.runtime.telemetry import DecisionTracer, build_tracer_provider
from gate.runtime.wire import NatsWriter, traceparent_header

log = logging.getLogger(__name__)
_LATCH_NOTICE_GAP_S = 0.05
# Signature checks of peers' higher floors per second. Peers send their floor every beat, but only one above this
# gate's is checked, so real traffic needs a handful; more comes from a holder of a gate's NATS password sending
# ever higher forged floors, and is skipped (a genuine floor is in the peer's next beat, and in Redis).
_PEER_FLOOR_CHECKS_PER_S = 50

_ACK = b"+ACK"  # a JetStream acknowledgement's body
_TURN_S = 0.002  # the longest stretch of intents handled before the event loop gets a turn


@dataclass
class _Intake:
    """One intake subscription and the clock that tells how long its messages waited in the client."""

    sub: Subscription | None = None
    clock: ArrivalClock = field(default_factory=ArrivalClock)


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
    def __init__(self, settings: GateSettings, clock: Clock | None = None, run_loops: bool = True) -> None:
        """`run_loops=False` starts no periodic work (heartbeats, refreshes): a test drives each step itself."""
        self.settings = settings
        self._run_loops = run_loops
        self.clock: Clock = clock or SystemClock()
        self.counters = GateCounters()
        self.state = GateState(dedupe_id_ttl_s=settings.dedupe_id_ttl_s)
        self._redis = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=5
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
        self.latch_sync = LatchSync(
            self._redis,
            self.state.latches,
            settings.gate_id,
            self._announce_latch,
            signer=self._audit_signer,
            releases=verifier,
            keep=LatchKeep(settings.audit_spool_dir, settings.gate_id),
        )
        self._tracer_provider: TracerProvider | None = build_tracer_provider("petrosa-cio-gate", settings.gate_id)
        tracer = DecisionTracer(self._tracer_provider, settings.trace_sample_ratio)
        self.pipeline = DecisionPipeline(
            settings, self.policy_sync, self.state, tracer, self.counters, clock=self.clock
        )
        self._shed_after_s = min(settings.shed_after_ms, settings.decision_budget_ms) / 1000.0
        self._nc: NATS | None = None
        self._writer: NatsWriter | None = None
        self._outbox: AuditOutbox | None = None
        self.checkpointer: AuditCheckpointer | None = None
        self._intent_subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started_monotonic = self.clock.monotonic()
        self._inflight_since: float | None = None
        self._stopping = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._recreating: asyncio.Task[None] | None = None
        self._turn_scheduled = False
        self._turn_started = 0.0
        self._storing: asyncio.Task[None] | None = None
        # Latch notices are hints to re-read Redis; any number arriving while a re-read runs need one more, not one
        # each (whoever may publish them could otherwise keep this gate re-reading back to back).
        self._latch_follow: asyncio.Task[None] | None = None
        self._latch_wanted = False
        self.latch_notice_reads = 0  # re-reads made for notices (however many notices arrived)
        self.peer_floor_checks = 0  # peers' higher floors whose signature was checked
        self._floor_window = (0.0, 0)  # (monotonic second, checks made in it)
        self.alert_watch = AlertWatch(settings.alert_timeouts_per_minute)
        self.alerts = AlertPublisher(
            self._publish_alert, f"gate:{settings.gate_id}", settings.alert_every_s, self.clock.monotonic
        )
        self._nats_lost_at: float | None = None
        self._learning: asyncio.Task[None] | None = None
        # Plain publishes are decided from the intake stream once it is set up (docs/contracts.md); until then,
        # and with the stream turned off, on the fast path as they arrive.
        self.intake: IntakeConsumer | None = None
        self._claim_prefix = f"{settings.intake_claim_subject_prefix}."
        self._claim_payload = IntakeClaim(gate_id=settings.gate_id).model_dump_json().encode()

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._nc = await self._connect_nats()
        self._writer = NatsWriter(self._nc)
        await self._ensure_audit_stream()
        self._outbox = AuditOutbox(
            self._nc,
            self.settings.audit_spool_dir,
            self.settings.gate_id,
            self.settings.audit_ack_timeout_s,
            batch_window_s=self.settings.audit_batch_window_ms / 1000.0,
            on_no_stream=self._recreate_audit_stream,
        )
        await self._outbox.start()
        if self.settings.intake_stream_enabled:
            intake = IntakeConsumer(
                self._nc,
                self.settings,
                self.pipeline,
                self._dispatch,
                self._writer,
                self.counters,
                time.time,  # compared with the NATS server's timestamps, not with the gate's (testable) clock
                self._intake_alert,
                may_decide=lambda: not self.policy_sync.learning_floor,
            )
            await intake.ensure()
            self.intake = intake
        if self._audit_signer is not None:
            self.checkpointer = AuditCheckpointer(
                self._nc,
                self._audit_signer,
                self.settings.gate_id,
                lambda: self._outbox.chain_tip if self._outbox is not None else ("", 0, ""),
                self.settings.audit_checkpoint_stream,
                self.settings.audit_checkpoint_subject_prefix,
                self.clock.time,
                replayed=dict(self._outbox.replayed_heads),
            )
            await self.checkpointer.ensure_stream()
        nc = self._nc
        # The floor on this volume first: nothing may be adopted before it is known (a notice can arrive at once).
        floor = self.policy_sync.floor
        await asyncio.to_thread(floor.load)
        # Brand-new (no floor on this volume): learn it from peers and the control plane before deciding.
        self.policy_sync.learning_floor = floor.seal is None and self.settings.policy_floor_wait_s > 0
        # Peers' heartbeats and the control plane's notices carry signed floors: heard before the first load.
        await nc.subscribe(subjects.STRATEGIST_UPDATE, cb=self._on_policy_update)
        await nc.subscribe(subjects.GATE_HEARTBEAT, cb=self._on_peer_heartbeat)
        await flush_ordered(nc)
        if self.policy_sync.learning_floor:
            self._learning = asyncio.create_task(self._learn_floor(), name="policy-floor-wait")
        else:
            await self.policy_sync.load("start")
        await self.latch_sync.load_kept()
        await self.latch_sync.refresh()
        await nc.subscribe(subjects.RISK_LATCH, cb=self._on_latch_notice)
        await nc.subscribe(subjects.TRADING_STATE, cb=self._on_trading_state_notice)
        await nc.subscribe(subjects.PORTFOLIO_SNAPSHOT, cb=self._on_snapshot)
        await nc.subscribe(subjects.GATE_PING, cb=self._on_ping)
        await nc.subscribe(subjects.GATE_PROMOTION, cb=self._on_peer_promotion, pending_msgs_limit=200_000)
        for subject in subjects.INTENT_SUBJECTS:
            intake = _Intake()
            intake.sub = sub = await nc.subscribe(
                subject,
                queue=self.settings.queue_group,
                cb=functools.partial(self._on_intent, intake),
                pending_msgs_limit=200_000,
                pending_bytes_limit=256 * 1024 * 1024,
            )
            self._intent_subs.append(sub)
        await flush_ordered(nc)
        if self.intake is not None:
            with contextlib.suppress(Exception):
                # Before deciding anything: intents the stream dropped while no gate ran are alerted now.
                await self.intake.watch_step()
            self.intake.start()
        if self._run_loops:
            # Each periodic job is one step (what a test drives directly) repeated by `_every`.
            self._tasks = [
                asyncio.create_task(_every(self.policy_sync.refresh_delay_s, self.policy_sync.refresh_step)),
                asyncio.create_task(_every(self._latch_refresh_delay_s, self.latch_refresh_step)),
                asyncio.create_task(_every(lambda: self.settings.heartbeat_interval_s, self.heartbeat_step)),
                asyncio.create_task(
                    _every(lambda: self.settings.fleet_heartbeat_interval_s, self.fleet_heartbeat_step, first=0.0)
                ),
                asyncio.create_task(_every(lambda: self.settings.heartbeat_interval_s, self.alert_step)),
                asyncio.create_task(_every(lambda: self.settings.audit_checkpoint_interval_s, self.checkpoint_step)),
            ]
            if self.intake is not None:
                self._tasks.append(asyncio.create_task(_every(lambda: 5.0, self.intake.watch_step)))
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

    async def _learn_floor(self) -> None:
        """Peers beat every second with their floor; the control plane's notice of an activation ends the wait
        early (`_on_policy_update`). Then decide with what Redis holds, unless it is below what was learned."""
        await asyncio.sleep(self.settings.policy_floor_wait_s)
        if self.policy_sync.learning_floor:
            await self.policy_sync.end_floor_wait(f"after {self.settings.policy_floor_wait_s:g} s")

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
        if self.intake is not None:
            await self.intake.stop()
        for sub in self._intent_subs:
            with contextlib.suppress(Exception):
                await sub.drain()
        self._intent_subs.clear()
        if self._nc is not None and self._nc.is_connected:
            with contextlib.suppress(Exception):
                await flush_ordered(self._nc, 2)
        if self._outbox is not None:
            flushed = await self._outbox.drain(self.settings.shutdown_timeout_s)
            log.info(
                "audit outbox %s (%d published)",
                "flushed" if flushed else "left spooled",
                self._outbox.counters.published,
            )
            await self._outbox.close()
        if self._storing is not None:
            self._tasks.append(self._storing)
        if self._learning is not None:
            self._tasks.append(self._learning)
        if self._latch_follow is not None:
            self._tasks.append(self._latch_follow)
        with contextlib.suppress(Exception):
            await self.policy_sync.flush_floor()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.checkpoint_step()  # vouch for the last events (spooled ones too: a successor replays them)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        await self._redis.aclose()
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        log.info("gate %s stopped: %s", self.settings.gate_id, self.heartbeat().counters.model_dump())

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
        assert self._nc is not None
        js = self._nc.jetstream()
        config = audit_stream_config(
            self.settings.audit_stream,
            self.settings.audit_subject_prefix,
            self.settings.audit_duplicate_window_s,
            self.settings.audit_max_age_s,
            self.settings.audit_max_bytes,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.stream_info(self.settings.audit_stream)  # exists with another config: use it as it is

    def _recreate_audit_stream(self) -> None:
        """JetStream lost the stream (a NATS restart on empty storage): recreate it; the outbox retries meanwhile."""
        if self._recreating is None or self._recreating.done():
            log.error("audit stream %s is gone; recreating it", self.settings.audit_stream)
            self._recreating = asyncio.create_task(self._ensure_audit_stream(), name="audit-stream")

    # -- NATS callbacks --------------------------------------------------------------------------------------
    async def _on_intent(self, intake: "_Intake", msg: Msg) -> None:
        arrived = self.clock.monotonic()
        reply_to = msg.reply or None
        if reply_to is None and self.intake is not None:
            return  # nobody waits for it: decided from the intake stream, which stored it too
        self._inflight_since = arrived
        queued_s = intake.clock.waited(intake.sub.delivered, arrived) if intake.sub else 0.0
        try:
            assert self._writer is not None
            if reply_to is not None and self.intake is not None:
                # The stream stored this request too: the claim (sent in this turn, with the reply) tells the
                # stream path to skip it. Before deciding, so a request shed or failing is claimed all the same.
                fp = fingerprint(msg.subject, msg.data)
                self._writer.hold(self._claim_prefix + fp, self._claim_payload)
                self.intake.note_claim(fp, time.time())
            if queued_s > self._shed_after_s:
                # Overloaded: answer at once without parsing, so the queue drains and every request is answered.
                outcome = self.pipeline.shed(msg.subject, msg.data, msg.headers, reply_to, queued_s)
            else:
                outcome = self.pipeline.process(msg.subject, msg.data, msg.headers, reply_to, queued_s=queued_s)
            self._dispatch(outcome, None, arrived)
        except Exception:
            log.exception("intent on %s could not be handled", msg.subject)
        finally:
            self._inflight_since = None
        if arrived - self._turn_started > _TURN_S:
            # nats-py hands over every queued message without yielding; let the event loop run now and then so
            # replies leave, heartbeats beat and the socket is read. Reading it moves a backlog from the kernel
            # into the client's queue, where the arrival clock sees how long intents wait (and sheds them).
            await asyncio.sleep(0)

    def _dispatch(self, outcome: Outcome, ack: str | None, arrived: float | None = None) -> None:
        """Send what a decision produced. Durable first (spool write), then promote, then answer (and, for an
        intent taken from the intake stream, acknowledge it): an APPROVED reply means the signal was sent.
        Everything decided in this turn of the event loop is spooled with one write and sent with one flush."""
        assert self._writer is not None and self._outbox is not None
        self._outbox.stage(outcome.audit_subject, outcome.decision_id, outcome.audit_payload)
        writer = self._writer
        if outcome.signal is not None:
            signal = outcome.signal
            writer.hold(signal.subject, signal.payload, traceparent_header(signal.headers["traceparent"]))
        if outcome.promotion is not None:
            writer.hold(subjects.GATE_PROMOTION, outcome.promotion)
        traceparent = traceparent_header(outcome.traceparent)
        if outcome.reply is not None:
            writer.hold(outcome.reply.subject, outcome.reply.payload, traceparent)
        writer.hold(outcome.decision_subject, outcome.envelope, traceparent)
        if ack is not None:
            writer.hold(ack, _ACK)
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self._turn_started = self.clock.monotonic() if arrived is None else arrived
            asyncio.get_running_loop().call_soon(self._end_of_turn)

    async def _intake_alert(self, key: str, title: str, detail: dict[str, object]) -> None:
        await self._raise(key, Severity.WARNING, title, dict(detail))

    def _end_of_turn(self) -> None:
        """Spool this turn's audit events (one write), then release its signals, notices and replies."""
        self._turn_scheduled = False
        assert self._writer is not None and self._outbox is not None
        try:
            self._outbox.commit_staged()
        except Exception:
            dropped = self._writer.drop_held()
            log.exception("audit spool write failed: %d messages withheld (nothing unaudited leaves the gate)", dropped)
            return
        try:
            self._writer.release()
        except Exception:
            log.exception("could not hand this turn's messages to NATS")

    async def _on_policy_update(self, msg: Msg) -> None:
        sync = self.policy_sync
        try:
            update = PolicyUpdate.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed %s message; reloading the policy anyway", subjects.STRATEGIST_UPDATE)
            await sync.load("update")
            return
        seal = update.seal
        if sync.learning_floor:
            if seal is not None and seal.version >= sync.floor.version and seal.verified_by(sync.verifier):
                # The control plane just activated this version: nothing newer exists, the wait is over.
                sync.offer_floor(seal, "the control plane's notice", verified=True)
                await sync.end_floor_wait("the control plane's notice")
            return
        current = sync.policy
        if current is None or update.version > current.version:
            await sync.load("update")
        if seal is not None and seal.version > sync.floor.version:
            # Redis did not give us the version the notice proves was activated (an older one was put back in
            # between): it is our floor all the same. Verified after the load, off the path of a policy pickup.
            sync.offer_floor(seal, "the control plane's notice")

    async def _on_peer_heartbeat(self, msg: Msg) -> None:
        """A peer's floor above ours means a newer version was activated: keep it, and re-read Redis. Only the
        floor is looked at, and only a higher one is verified (every peer beats every second)."""
        try:
            beat = orjson.loads(msg.data)
            floor = beat.get("policy_floor")
            if not isinstance(floor, dict) or not isinstance(floor.get("version"), int):
                return
            if floor["version"] <= self.policy_sync.floor.version:
                return
            seal = PolicySeal.model_validate(floor)
        except (orjson.JSONDecodeError, AttributeError, ValidationError):
            return
        second = float(int(time.monotonic()))
        start, checks = self._floor_window
        if start != second:
            start, checks = second, 0
        if checks >= _PEER_FLOOR_CHECKS_PER_S:
            return
        self._floor_window = (start, checks + 1)
        self.peer_floor_checks += 1
        peer = str(beat.get("gate_id"))[:100]
        if self.policy_sync.offer_floor(seal, f"gate {peer}") and not self.policy_sync.learning_floor:
            await self.policy_sync.load("peer-floor")

    async def _on_snapshot(self, msg: Msg) -> None:
        try:
            snapshot = PortfolioSnapshot.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning(
                "ignoring an invalid portfolio snapshot: %s",
                exc.errors(include_url=False, include_input=False)[:3],
            )
            return
        if self.state.apply_snapshot(snapshot):
            self._observe_latches()

    def _observe_latches(self) -> None:
        """Trip latches the current snapshot breaches under the current policy (stored in the background)."""
        policy, snapshot = self.policy_sync.policy, self.state.portfolio
        if policy is None or snapshot is None:
            return
        if self.latch_sync.observe(snapshot, policy.document.spec, self.clock.time()):
            self._spawn(self.latch_sync.save(), "latch-save")

    def _spawn(self, coro: "Coroutine[Any, Any, Any]", name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _announce_latch(self, record: LatchRecord) -> None:
        if self._nc is None or not self._nc.is_connected:
            return  # peers read it from Redis on their next refresh
        notice = LatchNotice(latch_id=record.id, event="tripped", at=record.tripped_at, by=self.settings.gate_id)
        with contextlib.suppress(Exception):
            await self._nc.publish(subjects.RISK_LATCH, notice.model_dump_json().encode())

    async def _on_trading_state_notice(self, msg: Msg) -> None:
        """A kill switch sent while Redis is away: applied at once if the control plane signed it and no policy
        this gate holds carries it yet (tightening needs no confirmation from Redis)."""
        try:
            notice = TradingStateNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignoring an invalid %s message", subjects.TRADING_STATE)
            return
        if not notice.verified_by(self.policy_sync.verifier):
            self.counters.notices_refused += 1
            log.error(
                "refused a %s notice not signed by the control plane (signed_by=%s)",
                subjects.TRADING_STATE,
                notice.signed_by,
            )
            return
        policy = self.policy_sync.policy
        if policy is not None and policy.version >= notice.version:
            return  # already part of the policy this gate runs
        try:
            key = notice.scope_key  # however the notice spells it, the override holds for the whole identity
        except IdentityError as exc:
            self.counters.notices_refused += 1
            log.error("refused a signed %s notice naming no %s: %s", subjects.TRADING_STATE, notice.scope, exc)
            return
        if self.state.override_state(notice.scope, key, notice.state, notice.version):
            label = notice.scope if notice.scope == "global" else f"{notice.scope} {notice.key}"
            log.warning(
                "trading state %s: %s by %s (notice for v%d): %s",
                label,
                notice.state.value,
                notice.by,
                notice.version,
                notice.reason,
            )

    async def _on_latch_notice(self, msg: Msg) -> None:
        try:
            notice = LatchNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed %s message; re-reading the latches anyway", subjects.RISK_LATCH)
        else:
            if notice.by == self.settings.gate_id:
                return
        self._latch_wanted = True
        if self._latch_follow is None or self._latch_follow.done():
            self._latch_follow = asyncio.create_task(self._follow_latch_notices())

    async def _follow_latch_notices(self) -> None:
        while True:
            self._latch_wanted = False
            self.latch_notice_reads += 1
            await self.latch_sync.refresh()
            if not self._latch_wanted:
                return
            await asyncio.sleep(_LATCH_NOTICE_GAP_S)  # notices keep coming: at most ~20 re-reads a second

    def _latch_refresh_delay_s(self) -> float:
        return self.settings.policy_refresh_s if self.latch_sync.redis_ok else 0.25

    async def latch_refresh_step(self) -> None:
        await self.latch_sync.refresh()
        self._observe_latches()  # a newly loaded, tighter policy latches on the snapshot already held

    async def _on_peer_promotion(self, msg: Msg) -> None:
        try:
            notice = PromotionNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignoring an invalid %s message", subjects.GATE_PROMOTION)
            return
        policy = self.policy_sync.policy
        if notice.gate_id == self.settings.gate_id or policy is None:
            return
        rate_rules = policy.limits_for(notice.strategy_key, notice.symbol).rate_rules
        self.state.record(
            notice.strategy_key,
            notice.symbol,
            notice.action,
            notice.intent_id,
            rate_rules,
            notice.notional_usd,
            notice.ts,
        )
        self.counters.peer_promotions += 1

    async def _on_ping(self, msg: Msg) -> None:
        if msg.reply and self._healthy():
            assert self._nc is not None
            await self._nc.publish(msg.reply, self._sealed(self.heartbeat()))

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
        if self.intake is not None:
            self.intake.reconnected()
        await self.policy_sync.load("nats-reconnect")
        await self.latch_sync.refresh()
        if self._nats_lost_at is not None:  # the alert can only leave now that NATS is back
            lost_s = round(self.clock.monotonic() - self._nats_lost_at, 3)
            self._nats_lost_at = None
            await self._raise(
                "nats_lost", Severity.WARNING, f"gate lost NATS for {lost_s:g} s (reconnected)", {"lost_s": lost_s}
            )

    # -- alerts ------------------------------------------------------------------------------------------------
    async def _publish_alert(self, subject: str, payload: bytes) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError("NATS is not connected")
        await self._nc.publish(subject, payload)

    async def _raise(self, key: str, severity: Severity, title: str, detail: dict[str, Any]) -> None:
        try:
            alert = await self.alerts.raise_alert(key, severity, title, {"gate_id": self.settings.gate_id, **detail})
        except Exception as exc:
            log.warning("alert %s not raised: %r", key, exc)
            return
        if alert is not None:
            self.counters.alerts_raised += 1
            log.warning("alert raised (%s): %s", severity.value, title)

    async def alert_step(self) -> int:
        """Raise what `AlertWatch` finds in this gate's state now; returns how many alerts left."""
        self._sync_counters()
        now = self.clock.monotonic()
        # A brand-new gate learning its floor has no policy on purpose, for a bounded time: not an alert.
        usable = self.policy_sync.usable(now) is not None or self.policy_sync.learning_floor
        findings = self.alert_watch.observe(self.counters, self.policy_sync.redis_ok, usable, now)
        before = self.counters.alerts_raised
        for finding in findings:
            await self._raise(finding.key, finding.severity, finding.title, finding.detail)
        return self.counters.alerts_raised - before

    # -- heartbeats and health ------------------------------------------------------------------------------
    def _healthy(self) -> bool:
        """False when an intent has been in flight for too long: a stuck gate must stop beating."""
        since = self._inflight_since
        return since is None or self.clock.monotonic() - since < self.settings.stuck_after_s

    def _sync_counters(self) -> None:
        """Copy what the outbox and the policy sync count into the gate's counters."""
        if self._outbox is not None:
            self.counters.audit_pending = self._outbox.pending
            self.counters.audit_published = self._outbox.counters.published
            self.counters.audit_failures = self._outbox.counters.failures
        self.counters.policy_refused = self.policy_sync.refused
        self.counters.policy_anomalies = self.policy_sync.anomalies
        self.counters.policy_rollbacks = self.policy_sync.rollbacks
        self.counters.latches_refused = self.latch_sync.refused
        self.counters.latches_unverified = self.latch_sync.unverified

    def heartbeat(self) -> GateHeartbeat:
        policy = self.policy_sync.policy
        self._sync_counters()
        chain, chain_seq = self._outbox.chain_head if self._outbox is not None else (None, 0)
        now = self.clock.time()
        latches = [r for r in self.state.latches.active() if applies_today(r, policy, now)] if policy else []
        state = None
        if policy is not None:
            state = policy.global_rules.trading_state
            if state is TradingState.ACTIVE and any(r.scope == "global" for r in latches):
                state = TradingState.REDUCING
        override = self.state.overrides.get(("global", ""))
        if override is not None and (state is None or override[0].severity > state.severity):
            state = override[0]  # a gate without a policy still says what it holds (the break glass reads it)
        return GateHeartbeat(
            gate_id=self.settings.gate_id,
            ts=datetime.fromtimestamp(now, UTC),
            policy_version=policy.version if policy else None,
            trading_state=state.value if state else None,
            notice_version=override[1] if override is not None else None,
            uptime_s=round(self.clock.monotonic() - self._started_monotonic, 3),
            counters=self.counters.model_copy(),
            latches=sorted(r.id for r in latches),
            audit_chain=chain,
            audit_seq=chain_seq,
            heartbeat_timeout_s=self.settings.bot_heartbeat_timeout_s,
            policy_floor=self.policy_sync.floor.seal,
            ttl_s=self._heartbeat_ttl_s(),
        )

    def _heartbeat_ttl_s(self) -> int:
        return max(3, int(self.settings.heartbeat_interval_s * 5))

    def _sealed(self, beat: GateHeartbeat) -> bytes:
        """The beat's wire bytes, signed with the gates' audit key when this gate has it (off the decision path:
        once a second, and on a ping)."""
        return heartbeat_seal.seal(beat.model_dump(mode="json"), self._audit_signer)

    def fleet_heartbeat(self) -> FleetHeartbeat:
        beat = self.heartbeat()
        governing = self.policy_sync.usable(self.clock.monotonic()) is not None
        return FleetHeartbeat(
            **beat.model_dump(),
            status="GOVERNANCE_ACTIVE" if governing else "DEGRADED",
            timestamp=beat.ts.timestamp(),
            version=self.settings.version,
        )

    async def heartbeat_step(self) -> bool:
        """Publish one heartbeat on `cio.gate.heartbeat` and store it in Redis; False when a stuck or
        disconnected gate stays silent."""
        payload = self._sealed(self.heartbeat())
        published = await self._beat(subjects.GATE_HEARTBEAT, payload)
        # The control plane shows live gates from Redis; a slow Redis must never delay the NATS beat.
        if published and (self._storing is None or self._storing.done()):
            self._storing = asyncio.create_task(self._store_heartbeat(payload))
        return published

    async def _store_heartbeat(self, payload: bytes) -> None:
        key = f"{GATE_HEARTBEAT_KEY_PREFIX}{self.settings.gate_id}"
        with contextlib.suppress(Exception):
            await self._redis.set(key, payload, ex=self._heartbeat_ttl_s())

    async def checkpoint_step(self) -> bool:
        """Sign and publish the audit chain's head when it moved (off the decision path); True when published."""
        if self.checkpointer is None or self._nc is None or not self._nc.is_connected:
            return False
        return await self.checkpointer.step()

    async def fleet_heartbeat_step(self) -> bool:
        """Publish one fleet heartbeat on `cio.heartbeat`; False when the gate stays silent."""
        return await self._beat(subjects.FLEET_HEARTBEAT, self._sealed(self.fleet_heartbeat()))

    async def _beat(self, subject: str, payload: bytes) -> bool:
        if self._nc is None or not self._nc.is_connected or not self._healthy():
            return False
        try:
            await self._nc.publish(subject, payload)
        except Exception as exc:
            log.warning("heartbeat on %s failed: %r", subject, exc)
            return False
        return True
