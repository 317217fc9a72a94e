"""What the gate does on a clock, off the decision path: heartbeats (NATS, Redis and the fleet's), answers to
pings, signed audit checkpoints, alerts, and the latch refresh. Each job is one step a test can drive; `jobs`
says how often each one runs."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from nats.aio.msg import Msg

from cio_kernel import heartbeat_seal, subjects
from cio_kernel.alerting import AlertPublisher
from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.heartbeat import FleetHeartbeat, GateHeartbeat
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.policy.spec import TradingState
from cio_kernel.redis_keys import GATE_HEARTBEAT_KEY_PREFIX
from gate.decision.latches import applies_today
from gate.runtime.alert_watch import AlertWatch
from gate.runtime.shared import Shared

log = logging.getLogger(__name__)

# A periodic job: how long to wait before each run (re-read each time), the step, and the first wait if not that.
Job = tuple[Callable[[], float], Callable[[], Awaitable[object]], float | None]


class Beats:
    def __init__(
        self,
        shared: Shared,
        redis: aioredis.Redis,
        audit_signer: PolicySigner | None,
        busy_since: Callable[[], float | None],
        observe_latches: Callable[[], None],
    ) -> None:
        settings, clock = shared.settings, shared.clock
        self._settings = settings
        self._policy_sync = shared.policy_sync
        self._latch_sync = shared.latch_sync
        self._state = shared.state
        self._counters = shared.counters
        self._clock = clock
        self._links = shared.links
        self._redis = redis
        self._audit_signer = audit_signer
        self._busy_since = busy_since
        self._observe_latches = observe_latches
        self._started_monotonic = clock.monotonic()
        self.storing: asyncio.Task[None] | None = None
        self.alert_watch = AlertWatch(settings.alert_timeouts_per_minute)
        self.alerts = AlertPublisher(
            self._publish_alert, f"gate:{settings.gate_id}", settings.alert_every_s, clock.monotonic
        )

    def jobs(self) -> list[Job]:
        settings = self._settings
        return [
            (self._latch_refresh_delay_s, self.latch_refresh_step, None),
            (lambda: settings.heartbeat_interval_s, self.heartbeat_step, None),
            (lambda: settings.fleet_heartbeat_interval_s, self.fleet_heartbeat_step, 0.0),
            (lambda: settings.heartbeat_interval_s, self.alert_step, None),
            (lambda: settings.audit_checkpoint_interval_s, self.checkpoint_step, None),
        ]

    # -- alerts ------------------------------------------------------------------------------------------------
    async def _publish_alert(self, subject: str, payload: bytes) -> None:
        nc = self._links.connected()
        if nc is None:
            raise ConnectionError("NATS is not connected")
        await nc.publish(subject, payload)

    async def raise_alert(self, key: str, severity: Severity, title: str, detail: dict[str, Any]) -> None:
        if self._settings.gate_shadow:
            # Nobody is paged for a gate nothing depends on, and no Strategist cycle starts on its account.
            log.warning("shadow gate: alert not raised (%s): %s", severity.value, title)
            return
        try:
            alert = await self.alerts.raise_alert(key, severity, title, {"gate_id": self._settings.gate_id, **detail})
        except Exception as exc:
            log.warning("alert %s not raised: %r", key, exc)
            return
        if alert is not None:
            self._counters.alerts_raised += 1
            log.warning("alert raised (%s): %s", severity.value, title)

    async def alert_step(self) -> int:
        """Raise what `AlertWatch` finds in this gate's state now; returns how many alerts left."""
        self.sync_counters()
        now = self._clock.monotonic()
        # A brand-new gate learning its floor has no policy on purpose, for a bounded time: not an alert.
        usable = self._policy_sync.usable(now) is not None or self._policy_sync.learning_floor
        findings = self.alert_watch.observe(self._counters, self._policy_sync.redis_ok, usable, now)
        before = self._counters.alerts_raised
        for finding in findings:
            await self.raise_alert(finding.key, finding.severity, finding.title, finding.detail)
        return self._counters.alerts_raised - before

    # -- latches -----------------------------------------------------------------------------------------------
    def _latch_refresh_delay_s(self) -> float:
        return self._settings.policy_refresh_s if self._latch_sync.redis_ok else 0.25

    async def latch_refresh_step(self) -> None:
        await self._latch_sync.refresh()
        self._observe_latches()  # a newly loaded, tighter policy latches on the snapshot already held

    # -- heartbeats and health ---------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """False when an intent has been in flight for too long: a stuck gate must stop beating."""
        since = self._busy_since()
        return since is None or self._clock.monotonic() - since < self._settings.stuck_after_s

    def sync_counters(self) -> None:
        """Copy what the outbox and the policy sync count into the gate's counters."""
        outbox = self._links.outbox
        if outbox is not None:
            self._counters.audit_pending = outbox.pending
            self._counters.audit_published = outbox.counters.published
            self._counters.audit_failures = outbox.counters.failures
        self._counters.policy_refused = self._policy_sync.refused
        self._counters.policy_anomalies = self._policy_sync.anomalies
        self._counters.policy_rollbacks = self._policy_sync.rollbacks
        self._counters.latches_refused = self._latch_sync.refused
        self._counters.latches_unverified = self._latch_sync.unverified

    def heartbeat(self) -> GateHeartbeat:
        policy = self._policy_sync.policy
        self.sync_counters()
        outbox = self._links.outbox
        chain, chain_seq = outbox.chain_head if outbox is not None else (None, 0)
        now = self._clock.time()
        latches = [r for r in self._state.latches.active() if applies_today(r, policy, now)] if policy else []
        state = None
        if policy is not None:
            state = policy.global_rules.trading_state
            if state is TradingState.ACTIVE and any(r.scope == "global" for r in latches):
                state = TradingState.REDUCING
        override = self._state.overrides.get(("global", ""))
        if override is not None and (state is None or override[0].severity > state.severity):
            state = override[0]  # a gate without a policy still says what it holds (the break glass reads it)
        return GateHeartbeat(
            gate_id=self._settings.gate_id,
            ts=datetime.fromtimestamp(now, UTC),
            policy_version=policy.version if policy else None,
            trading_state=state.value if state else None,
            notice_version=override[1] if override is not None else None,
            uptime_s=round(self._clock.monotonic() - self._started_monotonic, 3),
            counters=self._counters.model_copy(),
            latches=sorted(r.id for r in latches),
            audit_chain=chain,
            audit_seq=chain_seq,
            heartbeat_timeout_s=self._settings.bot_heartbeat_timeout_s,
            policy_floor=self._policy_sync.floor.seal,
            ttl_s=self._heartbeat_ttl_s(),
        )

    def _heartbeat_ttl_s(self) -> int:
        return max(3, int(self._settings.heartbeat_interval_s * 5))

    def _sealed(self, beat: GateHeartbeat) -> bytes:
        """The beat's wire bytes, signed with the gates' audit key when this gate has it (off the decision path:
        once a second, and on a ping)."""
        return heartbeat_seal.seal(beat.model_dump(mode="json"), self._audit_signer)

    def fleet_heartbeat(self) -> FleetHeartbeat:
        beat = self.heartbeat()
        governing = self._policy_sync.usable(self._clock.monotonic()) is not None
        return FleetHeartbeat(
            **beat.model_dump(),
            status="GOVERNANCE_ACTIVE" if governing else "DEGRADED",
            timestamp=beat.ts.timestamp(),
            version=self._settings.version,
        )

    async def on_ping(self, msg: Msg) -> None:
        if msg.reply and self.healthy() and not self._settings.gate_shadow:  # the canary counts who answers
            nc = self._links.nc
            assert nc is not None
            await nc.publish(msg.reply, self._sealed(self.heartbeat()))

    async def heartbeat_step(self) -> bool:
        """Publish one heartbeat on `cio.gate.heartbeat` and store it in Redis; False when a stuck or
        disconnected gate stays silent."""
        payload = self._sealed(self.heartbeat())
        published = await self._beat(subjects.GATE_HEARTBEAT, payload)
        # The control plane shows live gates from Redis; a slow Redis must never delay the NATS beat.
        if published and (self.storing is None or self.storing.done()):
            self.storing = asyncio.create_task(self._store_heartbeat(payload))
        return published

    async def _store_heartbeat(self, payload: bytes) -> None:
        key = f"{GATE_HEARTBEAT_KEY_PREFIX}{self._settings.gate_id}"
        with contextlib.suppress(Exception):
            await self._redis.set(key, payload, ex=self._heartbeat_ttl_s())

    async def checkpoint_step(self) -> bool:
        """Sign and publish the audit chain's head when it moved (off the decision path); True when published."""
        checkpointer = self._links.checkpointer
        if checkpointer is None or self._links.connected() is None:
            return False
        return await checkpointer.step()

    async def fleet_heartbeat_step(self) -> bool:
        """Publish one fleet heartbeat on `cio.heartbeat`; False when the gate stays silent."""
        return await self._beat(subjects.FLEET_HEARTBEAT, self._sealed(self.fleet_heartbeat()))

    async def _beat(self, subject: str, payload: bytes) -> bool:
        nc = self._links.connected()
        # A shadow gate never beats: the trade engine would take `cio.heartbeat` for its CIO alive when the old one
        # died; bots, the canary and the control plane would count it as a gate serving (docs/deploy.md).
        if nc is None or not self.healthy() or self._settings.gate_shadow:
            return False
        try:
            await nc.publish(subject, payload)
        except Exception as exc:
            log.warning("heartbeat on %s failed: %r", subject, exc)
            return False
        return True
