"""From JetStream `CIO_AUDIT` into the audit store, exactly once per `decision_id` (`manage.py audit_ingest`).

A durable pull consumer (`cio-audit-ingest`, explicit acks, unlimited redeliveries) hands out batches; a batch
is written to the store in one durable write and only then acknowledged. Every failure leads to a redelivery,
never a loss: a crash before the ack means the batch comes again and the store skips what it already holds
(its unique `decision_id`); a store that is down gets the batch back after a back-off (`nak` with a delay).
Several ingest processes share the consumer, each taking different batches. A message that is not an audit
event is kept in quarantine and acknowledged, so one bad message cannot block the stream.

The gates' signed checkpoints (`CIO_AUDIT_CHECKPOINTS`, docs/audit.md) are copied into the store the same way by
a second durable consumer (`checkpoint_step`): they anchor verification once retention removed older records.

Each unit of work is a step (`step`, `backlog_step`, `checkpoint_step`) that a test can call on its own; `run`
repeats them.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from audit.incidents import RejectionBurstDetector
from audit.records import DecisionRecord, Incident, InvalidEventError, QuarantinedEvent, StoredCheckpoint
from audit.store.base import AuditStore, StoreUnavailableError
from cio_kernel.alerting import AlertPublisher
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX
from cio_kernel.audit_stream import (
    AUDIT_STREAM,
    AUDIT_SUBJECT_PREFIX,
    DEFAULT_EXPECTED_RATE_PER_DAY,
    retention_shortfall,
)
from cio_kernel.contracts.alert import Severity

log = logging.getLogger(__name__)

DURABLE = "cio-audit-ingest"
SUBJECT = f"{AUDIT_SUBJECT_PREFIX}.>"
CHECKPOINT_DURABLE = "cio-audit-checkpoints"
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class IngestCounters:
    batches: int = 0
    received: int = 0
    stored: int = 0
    duplicates: int = 0  # redelivered or replayed events the store already held
    quarantined: int = 0
    store_failures: int = 0
    backlog_warnings: int = 0
    lost_before_ingest: int = 0  # events the stream dropped (its limits) before they were stored
    incidents: int = 0
    checkpoints: int = 0  # signed checkpoints stored (new ones)
    checkpoints_refused: int = 0  # messages on the checkpoint stream that were not checkpoints


@dataclass(frozen=True)
class BacklogStatus:
    pending: int  # events in the stream not yet stored
    oldest_age_s: float | None  # how long the oldest of them has waited
    stream_bytes: int
    max_age_s: float | None  # the stream's limits (None: unlimited)
    max_bytes: int | None
    lost: int  # dropped by the stream before ingest: the limits were exceeded
    warning: str | None


async def measure_backlog(js: JetStreamContext, stream: str, durable: str, now: float | None = None) -> BacklogStatus:
    """The ingest consumer's backlog on `stream` (read-only: the ingest's warnings and the web's metrics)."""
    info = await js.stream_info(stream)
    consumer = await js.consumer_info(stream, durable)
    config, state = info.config, info.state
    max_age = config.max_age if config.max_age else None
    max_bytes = config.max_bytes if config.max_bytes and config.max_bytes > 0 else None
    floor = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
    pending = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
    # The stream's first message is past what the consumer acknowledged: the ones between are gone unstored.
    lost = max(0, state.first_seq - floor - 1)
    oldest_age = None
    if pending:
        try:
            oldest = await js.get_msg(stream, seq=max(floor + 1, state.first_seq), next=True)
            if oldest.time is not None:
                oldest_age = (now if now is not None else time.time()) - oldest.time.timestamp()
        except NotFoundError:
            oldest_age = None
    return BacklogStatus(pending, oldest_age, state.bytes, max_age, max_bytes, lost, None)


@dataclass
class AuditIngest:
    nc: NATS
    store: AuditStore
    stream: str = AUDIT_STREAM
    durable: str = DURABLE
    batch_size: int = 500
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    # Warn when the backlog's oldest event has waited this share of the stream's max age, or the stream holds
    # this share of its max bytes: well before the stream would drop anything.
    warn_fraction: float = 0.5
    on_stored: Callable[[Sequence[DecisionRecord]], Awaitable[None]] | None = None
    bursts: RejectionBurstDetector | None = None  # rejection bursts become incidents (audit/incidents.py)
    # Backlog warnings and lost events become alerts on `cio.alert.<severity>` (at most one of each a minute).
    alerts: AlertPublisher | None = None
    checkpoint_stream: str = CHECKPOINT_STREAM
    checkpoint_durable: str = CHECKPOINT_DURABLE
    # The stated rate (CIO_AUDIT_EXPECTED_RATE_PER_DAY): at start, the stream's limits are checked against it.
    expected_rate_per_day: float = DEFAULT_EXPECTED_RATE_PER_DAY
    counters: IngestCounters = field(default_factory=IngestCounters)

    def __post_init__(self) -> None:
        self._sub: Any = None
        self._checkpoint_sub: Any = None
        self._checkpoint_failures = 0
        # Store calls block (pymongo, the Django ORM): one thread keeps one database connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-store")
        self._failures = 0

    async def start(self) -> None:
        self._sub = await self.nc.jetstream().pull_subscribe(
            SUBJECT,
            durable=self.durable,
            stream=self.stream,
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait_s,
                max_deliver=-1,
                max_ack_pending=max(1000, self.batch_size * 20),
            ),
        )
        await self.retention_check()

    async def retention_check(self) -> str | None:
        """Warn when the stream's size limit cannot hold its age limit at the stated rate: the store may then be
        away for less time than `max_age` suggests before events are lost (docs/nats-cluster.md)."""
        config = (await self.nc.jetstream().stream_info(self.stream)).config
        if not config.max_age or not config.max_bytes or config.max_bytes <= 0:
            return None
        shortfall = retention_shortfall(config.max_age, config.max_bytes, self.expected_rate_per_day)
        if shortfall is not None:
            log.warning("audit ingest: %s", shortfall)
        return shortfall

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def step(self) -> int:
        """Fetch one batch, store it, acknowledge it; returns how many messages it handled (0: none waiting).
        Raises `StoreUnavailableError` after handing the batch back for a later redelivery."""
        assert self._sub is not None, "start() first"
        try:
            messages: list[Msg] = await self._sub.fetch(self.batch_size, timeout=self.fetch_timeout_s)
        except TimeoutError:  # nats.errors.TimeoutError, or the bare one a partly filled fetch raises
            return 0
        records: list[DecisionRecord] = []
        quarantine: list[QuarantinedEvent] = []
        for msg in messages:
            try:
                records.append(DecisionRecord.from_message(msg.subject, msg.data, msg.headers))
            except InvalidEventError as exc:
                quarantine.append(
                    QuarantinedEvent(
                        msg.metadata.sequence.stream,
                        msg.subject,
                        msg.data,
                        dict(msg.headers or {}),
                        str(exc),
                        datetime.now(UTC),
                    )
                )
        try:
            if quarantine:
                await self._call(self.store.quarantine, quarantine)
            stored = await self._call(self.store.insert_decisions, records)
        except StoreUnavailableError:
            self.counters.store_failures += 1
            self._failures += 1
            delay = _BACKOFF_S[min(self._failures, len(_BACKOFF_S)) - 1]
            for msg in messages:
                await msg.nak(delay=delay)
            raise
        self._failures = 0
        for msg in messages:
            await msg.ack()
        self.counters.batches += 1
        self.counters.received += len(messages)
        self.counters.stored += stored
        self.counters.duplicates += len(records) - stored
        self.counters.quarantined += len(quarantine)
        if quarantine:
            log.error("audit ingest: %d messages were not audit events; kept in quarantine", len(quarantine))
        if self.bursts is not None and records:
            for incident in self.bursts.observe(records):
                await self.record_incident(incident)
        if self.on_stored is not None and records:
            try:
                await self.on_stored(records)
            except Exception:
                log.exception("audit ingest: the live feed did not take the batch (the records are stored)")
        return len(messages)

    async def checkpoint_step(self, timeout_s: float | None = None) -> int:
        """Fetch a batch of the gates' signed checkpoints, store them, acknowledge them; returns how many messages it
        handled. Until the first gate has created the checkpoint stream there is nothing to read (0). Raises
        `StoreUnavailableError` after handing the batch back for a later redelivery."""
        if self._checkpoint_sub is None:
            try:
                self._checkpoint_sub = await self.nc.jetstream().pull_subscribe(
                    f"{CHECKPOINT_SUBJECT_PREFIX}.>",
                    durable=self.checkpoint_durable,
                    stream=self.checkpoint_stream,
                    config=ConsumerConfig(
                        durable_name=self.checkpoint_durable,
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=self.ack_wait_s,
                        max_deliver=-1,
                    ),
                )
            except NotFoundError:
                return 0
        try:
            messages: list[Msg] = await self._checkpoint_sub.fetch(
                100, timeout=self.fetch_timeout_s if timeout_s is None else timeout_s
            )
        except TimeoutError:
            return 0
        checkpoints: list[StoredCheckpoint] = []
        refused = 0
        for msg in messages:
            try:
                checkpoints.append(StoredCheckpoint.from_message(msg.data))
            except InvalidEventError:
                refused += 1  # only gates may publish there (deploy/access.py): a bug, not an attack to hide
        try:
            stored = await self._call(self.store.insert_checkpoints, checkpoints)
        except StoreUnavailableError:
            self._checkpoint_failures += 1
            delay = _BACKOFF_S[min(self._checkpoint_failures, len(_BACKOFF_S)) - 1]
            for msg in messages:
                await msg.nak(delay=delay)
            raise
        self._checkpoint_failures = 0
        for msg in messages:
            await msg.ack()
        self.counters.checkpoints += stored
        self.counters.checkpoints_refused += refused
        if refused:
            log.error("audit ingest: %d messages on %s were not checkpoints", refused, self.checkpoint_stream)
        return len(messages)

    async def _checkpoint_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await self.checkpoint_step()
            except StoreUnavailableError as exc:
                log.error("audit ingest: %s; the checkpoints will be redelivered", exc)
                handled = -1
            except (nats.errors.Error, ConnectionError) as exc:
                log.warning("audit ingest: fetching from %s failed: %r; retrying", self.checkpoint_stream, exc)
                handled = -1
            if handled < 0 or self._checkpoint_sub is None:
                await _sleep_unless(stop, 2.0)  # a failure, or no stream yet: no hurry, checkpoints wait in it

    async def record_incident(self, incident: Incident | None) -> None:
        """Store an incident (once per id); a failure is logged: incidents are memory, not the trail itself."""
        if incident is None:
            return
        try:
            if await self._call(self.store.insert_incident, incident):
                self.counters.incidents += 1
                log.warning("audit ingest: incident %s: %s", incident.kind, incident.title)
        except Exception as exc:
            log.error("audit ingest: incident %s not recorded: %r", incident.incident_id, exc)

    async def backlog_step(self, now: float | None = None) -> BacklogStatus:
        """How far behind the ingest is, against the stream's limits; logs and counts a warning in time."""
        status = await measure_backlog(self.nc.jetstream(), self.stream, self.durable, now)
        pending, oldest_age, lost = status.pending, status.oldest_age_s, status.lost
        max_age, max_bytes = status.max_age_s, status.max_bytes
        warning = None
        if lost > self.counters.lost_before_ingest:
            warning = (
                f"{lost} audit events were dropped by {self.stream}'s limits before they were stored: the store was "
                f"away longer than the stream keeps events (audit_verify shows the gaps)"
            )
            self.counters.lost_before_ingest = lost
            log.critical("audit ingest: %s", warning)
            await self._alert(
                "audit_lost", Severity.CRITICAL, "audit events dropped before they were stored", warning, {"lost": lost}
            )
        else:
            if max_age and oldest_age is not None and oldest_age > self.warn_fraction * max_age:
                warning = (
                    f"the oldest unstored audit event has waited {oldest_age:.0f} s of the {max_age:.0f} s "
                    f"{self.stream} keeps events: restore the audit store before events are dropped"
                )
            elif max_bytes and pending and status.stream_bytes > self.warn_fraction * max_bytes:
                warning = (
                    f"{self.stream} holds {status.stream_bytes:,} of its {max_bytes:,} bytes with {pending} events "
                    "unstored: restore the audit store before events are dropped"
                )
            if warning is not None:
                self.counters.backlog_warnings += 1
                log.error("audit ingest: %s", warning)
                await self._alert(
                    "audit_backlog",
                    Severity.WARNING,
                    "audit stream backlog near its limit",
                    warning,
                    {"pending": pending, "oldest_age_s": oldest_age, "bytes": status.stream_bytes},
                )
        return replace(status, warning=warning)

    async def _alert(self, key: str, severity: Severity, title: str, why: str, detail: dict[str, Any]) -> None:
        if self.alerts is None:
            return
        try:
            await self.alerts.raise_alert(key, severity, title, {"stream": self.stream, "why": why, **detail})
        except Exception as exc:
            log.warning("audit ingest: alert %s not raised: %r", key, exc)

    async def run(self, stop: asyncio.Event, backlog_every_s: float = 30.0) -> None:
        """Steps until `stop` is set: batches as fast as they come, the backlog check every `backlog_every_s`, and
        the checkpoints beside them (their own task: they come about once a second per gate)."""
        checkpoints = asyncio.create_task(self._checkpoint_loop(stop), name="audit-checkpoints")
        try:
            await self._run_events(stop, backlog_every_s)
        finally:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints

    async def _run_events(self, stop: asyncio.Event, backlog_every_s: float) -> None:
        next_backlog = 0.0
        while not stop.is_set():
            try:
                handled = await self.step()
            except StoreUnavailableError as exc:
                log.error("audit ingest: %s; the batch will be redelivered", exc)
                handled = 0
                await _sleep_unless(stop, _BACKOFF_S[min(self._failures, len(_BACKOFF_S)) - 1])
            except (nats.errors.Error, ConnectionError) as exc:
                # NATS away or reconnecting: nothing was acknowledged, so nothing is lost; try again shortly.
                log.warning("audit ingest: fetching from %s failed: %r; retrying", self.stream, exc)
                handled = 0
                await _sleep_unless(stop, 1.0)
            if time.monotonic() >= next_backlog:
                next_backlog = time.monotonic() + backlog_every_s
                try:
                    await self.backlog_step()
                except Exception as exc:
                    log.warning("audit ingest: backlog check failed: %r", exc)
            if handled == 0:
                await asyncio.sleep(0)

    async def close(self) -> None:
        for sub in (self._sub, self._checkpoint_sub):
            if sub is None:
                continue
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("audit ingest: unsubscribe failed: %r", exc)
        with contextlib.suppress(Exception):
            await self._call(self.store.release_thread)
        self._executor.shutdown(wait=True)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
