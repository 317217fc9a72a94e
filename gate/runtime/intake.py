"""The gate's hot path: intents taken on the intake subjects, decided by the pipeline, sent once per loop turn.

Requests are decided as they arrive; plain publishes from the intake stream once it is set up (`IntakeConsumer`,
docs/contracts.md), and on the fast path until then or with the stream turned off. Whatever a turn decided is
spooled with one write and sent with one flush (`dispatch`, `_end_of_turn`). An exception while handling one
request answers it RETRY_SAFE/GATE_INTERNAL_ERROR, audited, with nothing of its own decision sent.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg

from cio_kernel import subjects
from cio_kernel.contracts.intake_claim import IntakeClaim
from cio_kernel.intake_stream import fingerprint
from gate.runtime.arrival_clock import ArrivalClock
from gate.runtime.intake_consumer import IntakeConsumer
from gate.runtime.pipeline import DecisionPipeline, Outcome
from gate.runtime.shadow import shadowed
from gate.runtime.shared import Shared
from gate.runtime.subscriptions import Subscribe
from gate.runtime.wire import traceparent_header

log = logging.getLogger(__name__)

_ACK = b"+ACK"  # a JetStream acknowledgement's body
_TURN_S = 0.002  # the longest stretch of intents handled before the event loop gets a turn


@dataclass
class _Lane:
    """One intake subscription and the clock that tells how long its messages waited in the client."""

    entry: Subscribe | None = None
    clock: ArrivalClock = field(default_factory=ArrivalClock)


class Intake:
    def __init__(
        self,
        shared: Shared,
        pipeline: DecisionPipeline,
        alert: Callable[[str, str, dict[str, object]], Awaitable[None]],
    ) -> None:
        settings = shared.settings
        self._settings = settings
        self._pipeline = pipeline
        self._counters = shared.counters
        self._clock = shared.clock
        self._links = shared.links
        self._policy_sync = shared.policy_sync
        self._alert = alert
        self._shadow = settings.gate_shadow
        self._shed_after_s = min(settings.shed_after_ms, settings.decision_budget_ms) / 1000.0
        self._claim_prefix = f"{settings.intake_claim_subject_prefix}."
        self._claim_payload = IntakeClaim(gate_id=settings.gate_id).model_dump_json().encode()
        self._turn_scheduled = False
        self._turn_started = 0.0
        self.inflight_since: float | None = None  # when the intent being handled now arrived (stuck-gate check)
        self.failures = 0  # requests answered GATE_INTERNAL_ERROR (or left unanswered when even that failed)
        # Plain publishes are decided from the intake stream once it is set up; until then, and with the stream
        # turned off, on the fast path as they arrive.
        self.stream: IntakeConsumer | None = None
        self.entries = [self._entry(subject) for subject in subjects.INTENT_SUBJECTS]

    def _entry(self, subject: str) -> Subscribe:
        lane = _Lane()
        lane.entry = Subscribe(
            f"intent {subject}",
            subject,
            functools.partial(self._on_intent, lane),
            queue=self._settings.intake_queue_group,
            pending_msgs_limit=200_000,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        return lane.entry

    async def open_stream(self) -> None:
        """Set up the intake stream and its consumer (before subscribing: requests claim what it stores)."""
        assert self._links.nc is not None and self._links.writer is not None
        stream = IntakeConsumer(
            self._links.nc,
            self._settings,
            self._pipeline,
            self.dispatch,
            self._links.writer,
            self._counters,
            time.time,  # compared with the NATS server's timestamps, not with the gate's (testable) clock
            self._alert,
            may_decide=lambda: not self._policy_sync.learning_floor,
        )
        await stream.ensure()
        self.stream = stream

    async def start_stream(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(Exception):
                # Before deciding anything: intents the stream dropped while no gate ran are alerted now.
                await self.stream.watch_step()
            self.stream.start()

    async def _on_intent(self, lane: _Lane, msg: Msg) -> None:
        arrived = self._clock.monotonic()
        reply_to = msg.reply or None
        stream = self.stream
        if reply_to is None and stream is not None:
            return  # nobody waits for it: decided from the intake stream, which stored it too
        self.inflight_since = arrived
        sub = lane.entry.sub if lane.entry is not None else None
        queued_s = lane.clock.waited(sub.delivered, arrived) if sub is not None else 0.0
        writer, outbox = self._links.writer, self._links.outbox
        marks: tuple[int, int] | None = None
        counted = self._counters.received
        try:
            assert writer is not None and outbox is not None
            if reply_to is not None and stream is not None:
                # The stream stored this request too: the claim (sent in this turn, with the reply) tells the
                # stream path to skip it. Before deciding, so a request shed or failing is claimed all the same.
                fp = fingerprint(msg.subject, msg.data)
                writer.hold(self._claim_prefix + fp, self._claim_payload)
                stream.note_claim(fp, time.time())
            marks = writer.mark(), outbox.mark()
            if queued_s > self._shed_after_s:
                # Overloaded: answer at once without parsing, so the queue drains and every request is answered.
                outcome = self._pipeline.shed(msg.subject, msg.data, msg.headers, reply_to, queued_s)
            else:
                outcome = self._pipeline.process(msg.subject, msg.data, msg.headers, reply_to, queued_s=queued_s)
            self.dispatch(outcome, None, arrived)
        except Exception:
            self._failed(msg, reply_to, queued_s, marks, self._counters.received != counted, arrived)
        finally:
            self.inflight_since = None
        if arrived - self._turn_started > _TURN_S:
            # nats-py hands over every queued message without yielding; let the event loop run now and then so
            # replies leave, heartbeats beat and the socket is read. Reading it moves a backlog from the kernel
            # into the client's queue, where the arrival clock sees how long intents wait (and sheds them).
            await asyncio.sleep(0)

    def _failed(
        self,
        msg: Msg,
        reply_to: str | None,
        queued_s: float,
        marks: tuple[int, int] | None,
        counted: bool,
        arrived: float,
    ) -> None:
        """Called while handling an exception: take back what this intent held (a signal among it, perhaps), and
        answer RETRY_SAFE, audited like any decision."""
        self.failures += 1
        writer, outbox = self._links.writer, self._links.outbox
        if marks is None or writer is None or outbox is None:
            # Unclaimed, the stream path decides this request later: an answer now could contradict it.
            log.exception("intent on %s could not be claimed; left to the intake stream, unanswered", msg.subject)
            return
        log.exception("intent on %s could not be handled; answered RETRY_SAFE", msg.subject)
        try:
            writer.rewind(marks[0])
            outbox.rewind(marks[1])
            outcome = self._pipeline.failed(msg.subject, msg.data, msg.headers, reply_to, queued_s, counted)
            self.dispatch(outcome, None, arrived)
        except Exception:
            writer.rewind(marks[0])
            outbox.rewind(marks[1])
            log.exception("intent on %s: its RETRY_SAFE answer failed too; left unanswered", msg.subject)

    def dispatch(self, outcome: Outcome, ack: str | None, arrived: float | None = None) -> None:
        """Send what a decision produced. Durable first (spool write), then promote, then answer (and, for an
        intent taken from the intake stream, acknowledge it): an APPROVED reply means the signal was sent.
        Everything decided in this turn of the event loop is spooled with one write and sent with one flush."""
        writer, outbox = self._links.writer, self._links.outbox
        assert writer is not None and outbox is not None
        if self._shadow:
            outcome = shadowed(outcome)  # audited, and nothing else leaves
        outbox.stage(outcome.audit_subject, outcome.decision_id, outcome.audit_payload)
        if outcome.signal is not None:
            signal = outcome.signal
            writer.hold(signal.subject, signal.payload, traceparent_header(signal.headers["traceparent"]))
        if outcome.promotion is not None:
            writer.hold(subjects.GATE_PROMOTION, outcome.promotion)
        traceparent = traceparent_header(outcome.traceparent)
        if outcome.reply is not None:
            writer.hold(outcome.reply.subject, outcome.reply.payload, traceparent)
        if outcome.decision_subject:
            writer.hold(outcome.decision_subject, outcome.envelope, traceparent)
        if ack is not None:
            writer.hold(ack, _ACK)
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self._turn_started = self._clock.monotonic() if arrived is None else arrived
            asyncio.get_running_loop().call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        """Spool this turn's audit events (one write), then release its signals, notices and replies."""
        self._turn_scheduled = False
        writer, outbox = self._links.writer, self._links.outbox
        assert writer is not None and outbox is not None
        try:
            outbox.commit_staged()
        except Exception:
            dropped = writer.drop_held()
            log.exception("audit spool write failed: %d messages withheld (nothing unaudited leaves the gate)", dropped)
            return
        try:
            writer.release()
        except Exception:
            log.exception("could not hand this turn's messages to NATS")
