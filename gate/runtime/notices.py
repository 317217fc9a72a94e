"""What the gate hears besides intents: policy updates, latch and trading-state notices, peers' promotions and
heartbeats (for their signed policy floors), and portfolio snapshots. Each handler updates the gate's state; none
of them answers anyone."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

import orjson
from nats.aio.msg import Msg
from pydantic import ValidationError

from cio_kernel import subjects
from cio_kernel.contracts.identity import IdentityError
from cio_kernel.contracts.latch import LatchNotice, LatchRecord
from cio_kernel.contracts.policy_update import PolicyUpdate
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.contracts.promotion import PromotionNotice
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.policy.document import PolicySeal
from gate.runtime.shared import Shared

log = logging.getLogger(__name__)
_LATCH_NOTICE_GAP_S = 0.05
# Signature checks of peers' higher floors per second. Peers send their floor every beat, but only one above this
# gate's is checked, so real traffic needs a handful; more comes from a holder of a gate's NATS password sending
# ever higher forged floors, and is skipped (a genuine floor is in the peer's next beat, and in Redis).
_PEER_FLOOR_CHECKS_PER_S = 50


class Notices:
    def __init__(self, shared: Shared) -> None:
        self._settings = shared.settings
        self._policy_sync = shared.policy_sync
        self._latch_sync = shared.latch_sync
        self._state = shared.state
        self._counters = shared.counters
        self._clock = shared.clock
        self._links = shared.links
        self._background: set[asyncio.Task[Any]] = set()
        # Latch notices are hints to re-read Redis; any number arriving while a re-read runs need one more, not one
        # each (whoever may publish them could otherwise keep this gate re-reading back to back).
        self.latch_follow: asyncio.Task[None] | None = None
        self._latch_wanted = False
        self.latch_notice_reads = 0  # re-reads made for notices (however many notices arrived)
        self.peer_floor_checks = 0  # peers' higher floors whose signature was checked
        self._floor_window = (0.0, 0)  # (monotonic second, checks made in it)
        self.learning: asyncio.Task[None] | None = None

    def learn_floor(self) -> None:
        """A brand-new gate (no floor on its volume) learns the floor from peers and the control plane first."""
        self.learning = asyncio.create_task(self._learn_floor(), name="policy-floor-wait")

    async def _learn_floor(self) -> None:
        """Peers beat every second with their floor; the control plane's notice of an activation ends the wait
        early (`on_policy_update`). Then decide with what Redis holds, unless it is below what was learned."""
        await asyncio.sleep(self._settings.policy_floor_wait_s)
        if self._policy_sync.learning_floor:
            await self._policy_sync.end_floor_wait(f"after {self._settings.policy_floor_wait_s:g} s")

    async def on_policy_update(self, msg: Msg) -> None:
        sync = self._policy_sync
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

    async def on_peer_heartbeat(self, msg: Msg) -> None:
        """A peer's floor above ours means a newer version was activated: keep it, and re-read Redis. Only the
        floor is looked at, and only a higher one is verified (every peer beats every second)."""
        try:
            beat = orjson.loads(msg.data)
            floor = beat.get("policy_floor")
            if not isinstance(floor, dict) or not isinstance(floor.get("version"), int):
                return
            if floor["version"] <= self._policy_sync.floor.version:
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
        if self._policy_sync.offer_floor(seal, f"gate {peer}") and not self._policy_sync.learning_floor:
            await self._policy_sync.load("peer-floor")

    async def on_snapshot(self, msg: Msg) -> None:
        try:
            snapshot = PortfolioSnapshot.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning(
                "ignoring an invalid portfolio snapshot: %s",
                exc.errors(include_url=False, include_input=False)[:3],
            )
            return
        if self._state.apply_snapshot(snapshot):
            self.observe_latches()

    def observe_latches(self) -> None:
        """Trip latches the current snapshot breaches under the current policy (stored in the background)."""
        policy, snapshot = self._policy_sync.policy, self._state.portfolio
        if policy is None or snapshot is None:
            return
        if self._latch_sync.observe(snapshot, policy.document.spec, self._clock.time()):
            self._spawn(self._latch_sync.save(), "latch-save")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def announce_latch(self, record: LatchRecord) -> None:
        nc = self._links.connected()
        if nc is None:
            return  # peers read it from Redis on their next refresh
        notice = LatchNotice(latch_id=record.id, event="tripped", at=record.tripped_at, by=self._settings.gate_id)
        with contextlib.suppress(Exception):
            await nc.publish(subjects.RISK_LATCH, notice.model_dump_json().encode())

    async def on_trading_state_notice(self, msg: Msg) -> None:
        """A kill switch sent while Redis is away: applied at once if the control plane signed it and no policy
        this gate holds carries it yet (tightening needs no confirmation from Redis)."""
        try:
            notice = TradingStateNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignoring an invalid %s message", subjects.TRADING_STATE)
            return
        if not notice.verified_by(self._policy_sync.verifier):
            self._counters.notices_refused += 1
            log.error(
                "refused a %s notice not signed by the control plane (signed_by=%s)",
                subjects.TRADING_STATE,
                notice.signed_by,
            )
            return
        policy = self._policy_sync.policy
        if policy is not None and policy.version >= notice.version:
            return  # already part of the policy this gate runs
        try:
            key = notice.scope_key  # however the notice spells it, the override holds for the whole identity
        except IdentityError as exc:
            self._counters.notices_refused += 1
            log.error("refused a signed %s notice naming no %s: %s", subjects.TRADING_STATE, notice.scope, exc)
            return
        if self._state.override_state(notice.scope, key, notice.state, notice.version):
            label = notice.scope if notice.scope == "global" else f"{notice.scope} {notice.key}"
            log.warning(
                "trading state %s: %s by %s (notice for v%d): %s",
                label,
                notice.state.value,
                notice.by,
                notice.version,
                notice.reason,
            )

    async def on_latch_notice(self, msg: Msg) -> None:
        try:
            notice = LatchNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed %s message; re-reading the latches anyway", subjects.RISK_LATCH)
        else:
            if notice.by == self._settings.gate_id:
                return
        self._latch_wanted = True
        if self.latch_follow is None or self.latch_follow.done():
            self.latch_follow = asyncio.create_task(self._follow_latch_notices())

    async def _follow_latch_notices(self) -> None:
        while True:
            self._latch_wanted = False
            self.latch_notice_reads += 1
            await self._latch_sync.refresh()
            if not self._latch_wanted:
                return
            await asyncio.sleep(_LATCH_NOTICE_GAP_S)  # notices keep coming: at most ~20 re-reads a second

    async def on_peer_promotion(self, msg: Msg) -> None:
        try:
            notice = PromotionNotice.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignoring an invalid %s message", subjects.GATE_PROMOTION)
            return
        policy = self._policy_sync.policy
        if notice.gate_id == self._settings.gate_id or policy is None:
            return
        rate_rules = policy.limits_for(notice.strategy_key, notice.symbol).rate_rules
        self._state.record(
            notice.strategy_key,
            notice.symbol,
            notice.action,
            notice.intent_id,
            rate_rules,
            notice.notional_usd,
            notice.ts,
        )
        self._counters.peer_promotions += 1
