"""The stream path: intents nobody waits for, decided from the intake stream (docs/contracts.md, "Producers that
never listen").

Every gate pulls from one durable consumer (`CIO_INTAKE_CONSUMER`), so each stored intent goes to one gate at a
time. A stored intent is looked at once it is `CIO_INTAKE_HOLD_MS` old; one whose fingerprint a gate claimed
(it was a request, answered on the fast path) is acknowledged without a decision. The others are decided with
a decision id derived from the stream and the sequence number (the same on every delivery); the audit event,
signal, notices and the acknowledgement then leave in one turn, after the event is spooled (`Intake.dispatch`).
A RETRY_SAFE decision is not recorded while the intent is fresh: the message is handed back with a delay and
decided again. Past `CIO_INTAKE_FRESH_S` the next decision is the final one: recorded once, never promoted.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.intake_stream import (
    claims_stream_config,
    fingerprint,
    intake_stream_config,
    stream_decision_id,
)
from cio_kernel.numbers import whole_number
from cio_kernel.reason_codes import ReasonCode
from gate.config import GateSettings
from gate.runtime.pipeline import DecisionPipeline, Outcome
from gate.runtime.wire import NatsWriter

log = logging.getLogger(__name__)

_SETTLED_KEPT = 100_000  # stream sequences this gate settled, so a redelivery (a lost ack) is only acked again
_API_TIMEOUT_S = 2.0
_PULL_EXPIRES_S = 5.0
# Intents this gate holds (asked for, waiting for their hold, in hand): enough for the hold at 16 000 intents a second,
# few enough to be settled in a few seconds, well within `ack_wait` (past it, another gate would take them too).
_MAX_IN_GATE = 8192
_GATHER_S = 0.02
_RETRY_CAP_S = 5.0
_ACK = b"+ACK"
_TURN_S = 0.001  # the longest stretch of stored intents decided before requests get a turn


@dataclass(frozen=True, slots=True)
class Stored:
    """What the acknowledgement subject says about a delivered message."""

    sequence: int
    stored_us: int  # the stream's clock, Unix microseconds: with the sequence, names the stored message
    delivered: int

    @property
    def stored_at(self) -> float:
        return self.stored_us / 1e6

    @property
    def key(self) -> tuple[int, int]:
        return self.sequence, self.stored_us


def stored_meta(msg: Msg) -> Stored:
    """Read from the acknowledgement subject (nats-py knows both its forms, with and without a domain)."""
    meta = msg.metadata
    stored = meta.timestamp
    stored_us = (int(stored.replace(tzinfo=UTC).timestamp()) * 1_000_000) + stored.microsecond
    return Stored(sequence=meta.sequence.stream, stored_us=stored_us, delivered=meta.num_delivered)


class IntakeConsumer:
    def __init__(
        self,
        nc: NATS,
        settings: GateSettings,
        pipeline: DecisionPipeline,
        dispatch: Callable[[Outcome, str], None],
        writer: NatsWriter,
        counters: GateCounters,
        wall: Callable[[], float],
        alert: Callable[[str, str, dict[str, object]], Awaitable[None]],
        may_decide: Callable[[], bool] = lambda: True,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=_API_TIMEOUT_S)
        self._settings = settings
        self._pipeline = pipeline
        self._dispatch = dispatch
        self._writer = writer
        self._counters = counters
        self._wall = wall
        self._alert = alert
        self._may_decide = may_decide
        self._hold_s = settings.intake_hold_ms / 1000.0
        claims = settings.intake_claims_stream
        self._claim_prefix = f"$JS.API.DIRECT.GET.{claims}.{settings.intake_claim_subject_prefix}"
        self._settled: OrderedDict[tuple[int, int], None] = OrderedDict()
        # Claims this gate published (fingerprint -> when, wall clock): with one gate, or when the stored copy of
        # a request comes back to the gate that answered it, no lookup is needed.
        self._own_claims: OrderedDict[str, float] = OrderedDict()
        self._own_claims_kept_s = max(5.0, 4 * self._hold_s)
        self.lookups = 0  # claims looked up in the claims stream (another gate may have made them)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = asyncio.Event()
        self._busy.set()  # set while no message is being handled
        self._queue: deque[tuple[Msg, Stored]] = deque()
        self._ready = asyncio.Event()
        self._credit = 0  # messages asked for and not yet delivered
        self._in_hand = 0
        self._missing = False
        self._sub: Subscription | None = None
        self._inbox = ""
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{settings.intake_stream}.{settings.intake_consumer}"
        self._final = Reason(
            code=ReasonCode.INTAKE_EXPIRED,
            message=(
                f"not decided within {settings.intake_fresh_s:g} s of being published (no reply was wanted): "
                "recorded once, never promoted"
            ),
        )

    @property
    def inbox(self) -> str:
        """The subject this gate's pulls are delivered to (NATS answers there, and so can whoever may publish into
        `_INBOX.>`)."""
        return self._inbox

    # -- setup ---------------------------------------------------------------------------------------------------
    async def ensure(self) -> None:
        """Create or update both streams and the shared consumer (what `python -m gate` needs and nothing more)."""
        s = self._settings
        await self._upsert_stream(intake_stream_config(s.intake_stream, s.intake_max_age_s, s.intake_max_bytes))
        await self._upsert_stream(
            claims_stream_config(s.intake_claims_stream, s.intake_claim_subject_prefix, s.intake_max_age_s)
        )
        # Unbounded deliveries would hand a poison message round the gates forever; this many covers a retry every
        # `intake_retry_s` for as long as the stream keeps the intent (the final decision comes long before).
        max_deliver = int(s.intake_max_age_s / s.intake_retry_s) + 50
        config = ConsumerConfig(
            name=s.intake_consumer,
            durable_name=s.intake_consumer,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=s.intake_ack_wait_s,
            max_deliver=max_deliver,
            # Deferred (RETRY_SAFE) intents stay pending while they wait: a minute without a policy must not stop
            # newer intents from being delivered.
            max_ack_pending=100_000,
        )
        await self._js.add_consumer(s.intake_stream, config)

    async def _upsert_stream(self, config: StreamConfig) -> StreamInfo:
        try:
            return await self._js.add_stream(config)
        except BadRequestError:
            pass  # exists with another configuration: bring it to ours
        try:
            return await self._js.update_stream(config)
        except BadRequestError as exc:
            # An edit JetStream refuses (storage type, say): keep the stream as it is and say so.
            assert config.name is not None
            log.error("stream %s keeps its own configuration (%s)", config.name, exc)
            return await self._js.stream_info(config.name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intake-stream")

    async def stop(self) -> None:
        """Stop asking for intents and let the ones in hand finish; what was delivered to this gate and not settled
        goes to another gate after `ack_wait`."""
        self._stopping = True
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._busy.wait(), 5.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        # Handed back now, so another gate takes them at once rather than after `ack_wait`.
        while self._queue:
            msg, _ = self._queue.popleft()
            with contextlib.suppress(Exception):
                await msg.nak()

    # -- pulling -------------------------------------------------------------------------------------------------
    # A continuous pull: requests for `intake_batch` more are sent whenever what is asked for and not yet arrived,
    # plus what waits in this gate, leaves room (nats-py's `fetch` waits for a whole batch, up to its timeout: an
    # intent published alone would wait that long). Intents wait here for their hold, up to `_MAX_IN_GATE`.
    async def _on_delivery(self, msg: Msg) -> None:
        headers = msg.headers
        if not msg.data and headers and "Status" in headers:
            status = headers["Status"]
            if status in ("408", "409"):
                # The request expired or ended: what it still had coming will not come.
                # Only ASCII digits: a header spelled "²" made `int` raise here, which skipped `_ready` and left
                # the credit standing, so the gate asked for nothing until its wait timed out.
                left = whole_number(headers.get("Nats-Pending-Messages"))
                self._credit = max(0, self._credit - left) if left is not None else 0
                if status == "409" and "deleted" in headers.get("Description", "").lower():
                    self._missing = True
            elif status == "503":
                self._credit, self._missing = 0, True  # no consumer answered: the stream or consumer is gone
            self._ready.set()
            return
        self._credit = max(0, self._credit - 1)
        try:
            meta = stored_meta(msg)
        except Exception:
            log.error("intake delivery without a JetStream acknowledgement subject: %r", msg.reply[:200])
            return
        self._queue.append((msg, meta))
        self._ready.set()

    def reconnected(self) -> None:
        """Pull requests do not survive a lost connection: ask again at once."""
        self._credit = 0
        self._ready.set()

    async def _ask(self) -> None:
        """Ask for more when there is room (one request of `intake_batch`, expiring after `_PULL_EXPIRES_S`)."""
        if self._stopping or self._sub is None:
            return
        batch = self._settings.intake_batch
        if self._credit > batch // 2 or self._credit + len(self._queue) + self._in_hand + batch > _MAX_IN_GATE:
            return
        self._credit += batch
        request = orjson.dumps({"batch": batch, "expires": int(_PULL_EXPIRES_S * 1e9)})
        await self._nc.publish(self._next_subject, request, reply=self._inbox)

    async def _run(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_delivery, pending_msgs_limit=_MAX_IN_GATE * 4)
        delay = 0.2
        while not self._stopping:
            try:
                if self._missing:
                    self._missing = False
                    await self._recreate()
                if not self._may_decide():
                    # A gate still learning its version floor would only defer (and back off) a backlog.
                    await asyncio.sleep(0.05)
                    continue
                await self._ask()
                if not self._queue:
                    self._ready.clear()
                    try:
                        await asyncio.wait_for(self._ready.wait(), _PULL_EXPIRES_S + 1.0)
                    except TimeoutError:
                        self._credit = 0  # nothing heard for longer than a request lives: ask again
                    continue
                due = self._queue[0][1].stored_at + self._hold_s - self._wall()
                if due > 0:
                    # A little past the first one's hold, so intents held together are settled together (one
                    # wake-up, one spool write and one socket write for many, between requests).
                    await asyncio.sleep(due + _GATHER_S)
                now = self._wall()
                chunk = []
                while self._queue and self._queue[0][1].stored_at + self._hold_s <= now:
                    chunk.append(self._queue.popleft())
                await self.handle_batch(chunk)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("intake stream: %r; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def handle_batch(self, chunk: list[tuple[Msg, Stored]]) -> None:
        """Settle intents that have been held long enough: their claims looked up together, then one by one."""
        self._busy.clear()
        self._in_hand = len(chunk)
        try:
            # Most of a batch are requests this gate answered itself: settled from its own claims without a task
            # each; only the rest are looked up in the claims stream, together.
            fps = [fingerprint(m.subject, m.data) for m, _ in chunk]
            claims: list[bool | None] = [
                self._own_claim(fp, meta.stored_at) for fp, (_, meta) in zip(fps, chunk, strict=True)
            ]
            unknown = [i for i, claimed in enumerate(claims) if not claimed]
            if unknown:
                looked_up = await asyncio.gather(*(self._claimed(fps[i], chunk[i][1].stored_at) for i in unknown))
                for i, claimed in zip(unknown, looked_up, strict=True):
                    claims[i] = claimed
            turn = time.monotonic()
            for (msg, meta), claimed in zip(chunk, claims, strict=True):
                try:
                    await self._handle(msg, meta, claimed)
                except Exception:
                    log.exception("intake message %d could not be handled; it will be redelivered", meta.sequence)
                if time.monotonic() - turn > _TURN_S:
                    # Requests wait on the same event loop: a backlog is worked off in short stretches.
                    await self._writer.flush()
                    await asyncio.sleep(0)
                    turn = time.monotonic()
            await self._writer.flush()
        finally:
            self._in_hand = 0
            self._busy.set()

    async def _handle(self, msg: Msg, meta: Stored, claimed: bool | None) -> None:
        if meta.key in self._settled:
            self._writer.add(msg.reply, _ACK)  # settled here before: our acknowledgement was lost
            return
        if claimed is None:
            # Whether it was answered is unknown (the claims stream did not answer): decide nothing yet.
            await msg.nak(delay=self._settings.intake_retry_s)
            return
        if claimed:
            self._counters.intake_claimed += 1
            self._settle(meta.key)
            # Queued with the batch's other acknowledgements, one flush for all (a request skipped costs little).
            self._writer.add(msg.reply, _ACK)
            return
        age = self._wall() - meta.stored_at
        final = self._final if age >= self._settings.intake_fresh_s else None
        decision_id = stream_decision_id(self._settings.intake_stream, meta.sequence, meta.stored_us)
        outcome = self._pipeline.process(msg.subject, msg.data, msg.headers, None, decision_id=decision_id, final=final)
        if outcome.decision == "RETRY_SAFE" and final is None:
            self._counters.intake_deferred += 1
            left = self._settings.intake_fresh_s - age
            # Doubling delays: a flood kept out by its strategy's share, or an overloaded gate, is not decided a
            # hundred times over. The last retry comes (just) after freshness ends: the final decision.
            backoff = self._settings.intake_retry_s * 2 ** min(meta.delivered - 1, 16)
            await msg.nak(delay=max(0.0, min(backoff, _RETRY_CAP_S, left + 0.01)))
            return
        if final is not None:
            self._counters.intake_expired += 1
        self._counters.intake_decided += 1
        self._settle(meta.key)
        self._dispatch(outcome, msg.reply)

    def _settle(self, key: tuple[int, int]) -> None:
        self._settled[key] = None
        if len(self._settled) > _SETTLED_KEPT:
            self._settled.popitem(last=False)

    def note_claim(self, fp: str, now: float) -> None:
        """A claim this gate just published (called on the fast path: a dict write, old entries dropped)."""
        claims = self._own_claims
        claims[fp] = now
        claims.move_to_end(fp)
        horizon = now - self._own_claims_kept_s
        while claims:
            oldest = next(iter(claims.values()))
            if oldest >= horizon:
                break
            claims.popitem(last=False)

    def _own_claim(self, fp: str, stored_at: float) -> bool:
        """Whether this gate itself claimed the intent fingerprinted `fp` no earlier than `hold` before it was
        stored."""
        own = self._own_claims.get(fp)
        return own is not None and own >= stored_at - self._hold_s

    async def _claimed(self, fp: str, stored_at: float) -> bool | None:
        """Whether a gate claimed the intent fingerprinted `fp` (a request it answered) no earlier than `hold`
        before the stream stored it, asked of the claims stream; None when it could not be asked."""
        self.lookups += 1
        try:
            reply = await self._nc.request(f"{self._claim_prefix}.{fp}", b"", _API_TIMEOUT_S)
        except Exception as exc:
            log.warning("intake claims lookup failed: %r", exc)
            return None
        headers = reply.headers or {}
        status = headers.get("Status")
        if status == "404":
            return False
        if status:
            log.warning("intake claims lookup answered %s %s", status, headers.get("Description", ""))
            return None
        stamp = headers.get("Nats-Time-Stamp")
        if not stamp:
            return True
        claimed_at = datetime.fromisoformat(stamp).timestamp()
        return claimed_at >= stored_at - self._hold_s

    async def _recreate(self) -> None:
        s = self._settings
        log.error("intake stream %s or its consumer %s is gone; recreating them", s.intake_stream, s.intake_consumer)
        await self._alert(
            "intake_missing",
            f"intake stream {s.intake_stream} or its consumer was missing (recreated); plain publishes sent "
            "meanwhile were lost",
            {},
        )
        await self.ensure()
        self._credit = 0

    # -- watching the stream's limits ------------------------------------------------------------------------------
    async def watch_step(self) -> None:
        """Alert when the stream holds half its limit in bytes, or dropped intents the gates had not taken yet
        (full, or older than its max age: they were never decided)."""
        s = self._settings
        try:
            info = await self._js.stream_info(s.intake_stream)
            consumer = await self._js.consumer_info(s.intake_stream, s.intake_consumer)
            await self._js.stream_info(s.intake_claims_stream)
        except NotFoundError:
            await self._recreate()
            return
        state = info.state
        if state.bytes >= s.intake_max_bytes // 2:
            await self._alert(
                "intake_backlog",
                f"intake stream {s.intake_stream} holds {state.bytes} bytes (limit {s.intake_max_bytes})",
                {"bytes": state.bytes, "messages": state.messages},
            )
        floor = consumer.ack_floor.stream_seq if consumer.ack_floor is not None else 0
        if floor is not None and floor + 1 < state.first_seq:
            await self._alert(
                "intake_dropped",
                f"intake stream {s.intake_stream} dropped intents no gate had settled (sequences up to "
                f"{state.first_seq - 1}): they were never decided",
                {"first_seq": state.first_seq, "ack_floor": floor},
            )
