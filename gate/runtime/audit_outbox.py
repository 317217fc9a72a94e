"""Audit events leave the decision path through a local spool and a background JetStream publisher.

`submit` writes the event to an append-only spool segment with one `write(2)` (so it survives a crash of this
process) and queues it; the publisher sends it to `CIO_AUDIT` with `Nats-Msg-Id = decision_id` and deletes a
segment once every event in it is acknowledged. On start-up, segments left by this or a dead gate (one whose
spool lock is free) are replayed; JetStream's duplicate window and the audit store's unique `decision_id` make
the replay idempotent. Nothing on the decision path waits for NATS or for the disk to sync.

Every event is also linked into this gate's hash chain (`cio_kernel.audit_chain`) as it is spooled: the spool
line keeps the link, the publish carries it in headers, and the chain's head is kept in the spool folder, so a
restarted gate continues where it stopped.

Events that accumulate within `batch_window_s` are written to the socket together (one wake-up, one write),
each with its own reply subject on one ack inbox. JetStream atomic batches (one PubAck per batch) were measured
and rejected: nats-server 2.15 spends about 1.2 ms of CPU per batch, more than the PubAcks they save on a
machine where the gate and NATS share the cores.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cio_kernel.audit_chain import GENESIS, ChainLink, chain_id, is_chain_id, is_link_hash
from cio_kernel.numbers import whole_number
from gate.runtime.wire import NatsWriter

log = logging.getLogger(__name__)

_SEGMENT_MAX_EVENTS = 20_000
_SEGMENT_MAX_AGE_S = 10.0
_RETRY_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)
_MAX_IN_FLIGHT = 20_000


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int | None
    opened_at: float
    written: int = 0
    outstanding: int = 0

    @property
    def closed(self) -> bool:
        return self.fd is None


@dataclass(slots=True)
class _Item:
    subject: str
    decision_id: str
    payload: bytes
    segment: _Segment
    link: bytes  # the chain link's header lines (empty for an event spooled before chains existed)
    attempts: int = 0


@dataclass(slots=True)
class _InFlight:
    item: _Item
    sent_at: float


@dataclass
class OutboxCounters:
    published: int = 0
    failures: int = 0
    replayed: int = 0


@dataclass
class AuditOutbox:
    nc: NATS
    spool_root: Path
    gate_id: str
    ack_timeout_s: float = 5.0
    batch_window_s: float = 0.01
    on_no_stream: Callable[[], None] | None = None  # JetStream answered "no stream": the stream must be recreated
    counters: OutboxCounters = field(default_factory=OutboxCounters)

    def __post_init__(self) -> None:
        self._dir = self.spool_root / _safe_name(self.gate_id)
        self._ready: deque[_Item] = deque()  # spooled, not yet sent (or due for a retry)
        self._wake = asyncio.Event()
        self._segment: _Segment | None = None
        self._lock_fd: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._seq = 0
        self._inflight: dict[int, _InFlight] = {}
        self._ack_seq = 0
        self._ack_prefix: str | None = None
        self._room = asyncio.Event()
        self._writer = NatsWriter(self.nc)
        self._staged: list[tuple[str, str, bytes]] = []
        self._head_path = self._dir / "chain-head"
        self._head_fd: int | None = None
        self._chain = ""
        self._chain_seq = 0
        self._chain_prev = GENESIS
        # Heads of other chains found in replayed segments (a dead gate's spool adopted, or an older epoch of this
        # gate's): chain -> (seq, hash) of the last event seen, for this gate to sign (audit_checkpoints.py).
        self.replayed_heads: dict[str, tuple[int, str]] = {}

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def chain_head(self) -> tuple[str, int]:
        """This gate's audit chain and the sequence number of its latest event (0 before the first)."""
        return self._chain, self._chain_seq

    @property
    def chain_tip(self) -> tuple[str, int, str]:
        """The chain, the sequence number of its latest spooled event and that event's link hash: what the
        gate's signed checkpoints vouch for (gate/runtime/audit_checkpoints.py)."""
        return self._chain, self._chain_seq, self._chain_prev

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(
                f"audit spool {self._dir} is held by another running gate with id {self.gate_id!r}: "
                f"give every gate its own CIO_GATE_ID"
            ) from exc
        self._load_chain_head()
        for segment_path in self._orphaned_segments():
            self._replay(segment_path)
        self._head_fd = os.open(self._head_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._write_chain_head()
        self._ack_prefix = self.nc.new_inbox()
        await self.nc.subscribe(
            f"{self._ack_prefix}.*",
            cb=self._on_ack,
            pending_msgs_limit=1_000_000,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        self._task = asyncio.create_task(self._publish_loop(), name="audit-outbox")

    def submit(self, subject: str, decision_id: str, payload: bytes) -> None:
        """Spool one event now (one `write(2)`) and queue it for publishing."""
        self.stage(subject, decision_id, payload)
        self.commit_staged()

    def stage(self, subject: str, decision_id: str, payload: bytes) -> None:
        """Hold an event for the next `commit_staged`, which writes every staged event with one `write(2)`."""
        self._staged.append((subject, decision_id, payload))

    def mark(self) -> int:
        """Where the staged events end now: `rewind` to it takes back what was staged since (one intent's)."""
        return len(self._staged)

    def rewind(self, mark: int) -> None:
        del self._staged[mark:]

    def commit_staged(self) -> None:
        """Make the staged events durable in the spool, then queue them for publishing. Raises if the spool
        cannot be written; the caller must then not send what depends on these events."""
        staged, self._staged = self._staged, []
        if not staged:
            return
        segment = self._current_segment()
        assert segment.fd is not None
        chain, seq, prev = self._chain, self._chain_seq, self._chain_prev
        lines = []
        items = []
        for subject, decision_id, payload in staged:
            link = ChainLink.first_after(chain, seq, prev, subject, payload)
            seq, prev = link.seq, link.hash
            lines.append(b"%s %s %s\n" % (subject.encode(), link.token(), payload))
            items.append(_Item(subject, decision_id, payload, segment, link.header_lines()))
        view = memoryview(b"".join(lines))
        while view:
            view = view[os.write(segment.fd, view) :]
        self._chain_seq, self._chain_prev = seq, prev
        segment.written += len(staged)
        self._write_chain_head()
        for item in items:
            self._enqueue(item)

    async def drain(self, within_s: float) -> bool:
        """Wait until every submitted event is acknowledged; True when the spool is empty."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            log.warning("audit outbox: %d events still unacknowledged; they stay spooled for replay", self._pending)
            return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._segment is not None:
            self._close_segment(self._segment)
        if self._head_fd is not None:
            os.close(self._head_fd)
            self._head_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- spool ----------------------------------------------------------------------------------------------
    def _current_segment(self) -> _Segment:
        segment = self._segment
        now = time.monotonic()
        if segment is not None and (
            segment.written >= _SEGMENT_MAX_EVENTS or now - segment.opened_at >= _SEGMENT_MAX_AGE_S
        ):
            self._close_segment(segment)
            segment = None
        if segment is None:
            self._seq += 1
            path = self._dir / f"seg-{time.time_ns():020d}-{self._seq:06d}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            segment = self._segment = _Segment(path, fd, now)
        return segment

    def _close_segment(self, segment: _Segment) -> None:
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None
        if self._segment is segment:
            self._segment = None
        if segment.outstanding == 0:
            segment.path.unlink(missing_ok=True)

    def _orphaned_segments(self) -> list[Path]:
        """Our own leftovers plus those of gates whose lock is free (they are no longer running)."""
        found = sorted(self._dir.glob("seg-*.jsonl"))
        for other in self.spool_root.iterdir():
            if other == self._dir or not other.is_dir():
                continue
            lock_fd = os.open(other / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # that gate is alive and owns its spool
            else:
                for path in sorted(other.glob("seg-*.jsonl")):
                    target = self._dir / f"adopted-{other.name}-{path.name}"
                    path.rename(target)
                    found.append(target)
                with contextlib.suppress(OSError):
                    (other / "lock").unlink()
                    other.rmdir()
            finally:
                os.close(lock_fd)
        return found

    def _replay(self, path: Path) -> None:
        segment = _Segment(path, None, time.monotonic())
        with path.open("rb") as handle:
            for line in handle:
                subject, _, rest = line.rstrip(b"\n").partition(b" ")
                link: ChainLink | None = None
                if rest.startswith(b"{"):
                    payload = rest  # spooled before audit chains existed
                else:
                    token, _, payload = rest.partition(b" ")
                    link = ChainLink.from_token(token)
                try:
                    decision_id = orjson.loads(payload)["decision_id"]
                    if link is not None and not link.matches(subject.decode(), payload):
                        raise ValueError("chain link does not match the event")
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.error("audit spool %s: skipping a torn line (%d bytes)", path.name, len(line))
                    continue
                if link is not None and link.chain == self._chain and link.seq > self._chain_seq:
                    # Spooled after the head was last written (a crash in between): continue after it.
                    self._chain_seq, self._chain_prev = link.seq, link.hash
                elif link is not None and link.chain != self._chain:
                    known = self.replayed_heads.get(link.chain)
                    if known is None or link.seq > known[0]:
                        self.replayed_heads[link.chain] = (link.seq, link.hash)
                header = link.header_lines() if link is not None else b""
                self._enqueue(_Item(subject.decode(), decision_id, payload, segment, header))
                self.counters.replayed += 1
        if segment.outstanding == 0:
            path.unlink(missing_ok=True)
        else:
            log.info("audit spool: replaying %d events from %s", segment.outstanding, path.name)

    # -- the chain head ----------------------------------------------------------------------------------------
    def _load_chain_head(self) -> None:
        """Continue this gate's chain from the head in its spool folder, or start a new epoch without one."""
        try:
            chain, seq_text, prev = self._head_path.read_text().split()
            seq = whole_number(seq_text)  # ASCII digits only, as written (`int` also takes " 7", "+7", "٧")
            if seq is None or not is_chain_id(chain) or not is_link_hash(prev):
                raise ValueError(chain)
        except (OSError, ValueError):
            self._chain, self._chain_seq, self._chain_prev = chain_id(self.gate_id, time.time_ns()), 0, GENESIS
            if self._head_path.exists():
                log.error("audit chain head %s is unreadable: starting a new chain %s", self._head_path, self._chain)
            return
        self._chain, self._chain_seq, self._chain_prev = chain, seq, prev

    def _write_chain_head(self) -> None:
        # Fixed width, so one pwrite replaces the whole head in place.
        assert self._head_fd is not None
        record = f"{self._chain} {self._chain_seq} {self._chain_prev}\n".encode().ljust(256)
        os.pwrite(self._head_fd, record, 0)

    # -- publishing -----------------------------------------------------------------------------------------
    def _enqueue(self, item: _Item) -> None:
        item.segment.outstanding += 1
        self._pending += 1
        self._idle.clear()
        self._queue_item(item)

    def _acknowledge(self, item: _Item) -> None:
        segment = item.segment
        segment.outstanding -= 1
        if segment.closed and segment.outstanding == 0:
            segment.path.unlink(missing_ok=True)
        self._pending -= 1
        self.counters.published += 1
        if self._pending == 0:
            self._idle.set()

    async def _publish_loop(self) -> None:
        """Pipelined JetStream publishing: every event goes out with its own reply subject on one ack inbox and is
        settled when its PubAck arrives (or retried when it does not). Lighter than a future per publish."""
        assert self._ack_prefix is not None
        sweeper = asyncio.create_task(self._sweep_unacknowledged())
        try:
            while True:
                if not self._ready:
                    self._wake.clear()
                    await self._wake.wait()
                # Let events accumulate for a moment: one wake-up, one socket write and one burst of PubAcks for
                # many decisions keeps the event loop free for intents (audit latency is not critical).
                await asyncio.sleep(self.batch_window_s)
                batch, self._ready = self._ready, deque()
                for item in batch:
                    while len(self._inflight) >= _MAX_IN_FLIGHT:
                        await self._writer.flush()
                        self._room.clear()
                        await self._room.wait()
                    self._send(item)
                await self._writer.flush()
        finally:
            sweeper.cancel()

    def _send(self, item: _Item) -> None:
        self._ack_seq += 1
        seq = self._ack_seq
        self._inflight[seq] = _InFlight(item, time.monotonic())
        try:
            headers = b"NATS/1.0\r\nNats-Msg-Id: " + item.decision_id.encode() + b"\r\n" + item.link + b"\r\n"
            self._writer.add(item.subject, item.payload, headers, f"{self._ack_prefix}.{seq}")
        except Exception as exc:
            self._inflight.pop(seq, None)
            self._failed(item, exc)

    async def _on_ack(self, msg: Msg) -> None:
        sent = self._inflight.pop(int(msg.subject.rpartition(".")[2]), None)
        if sent is None:
            return  # already timed out and re-queued; JetStream deduplicates the retry
        if len(self._inflight) < _MAX_IN_FLIGHT:
            self._room.set()
        item = sent.item
        if msg.headers and msg.headers.get("Status") == "503":
            if self.on_no_stream is not None:
                self.on_no_stream()
            self._failed(item, RuntimeError(f"no stream accepts {item.subject}"))
            return
        data = msg.data
        if data.startswith(b'{"stream":') and b'"error"' not in data:
            self._acknowledge(item)  # the common case, without parsing it: `{"stream":..,"seq":..}`
            return
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            reply = {"error": {"description": "unreadable PubAck"}}
        if not isinstance(reply, dict) or "error" in reply or reply.get("stream") is None:
            error = reply.get("error") if isinstance(reply, dict) else reply
            self._failed(item, RuntimeError(f"JetStream refused the event: {error}"))
        else:
            self._acknowledge(item)

    def _failed(self, item: _Item, exc: BaseException) -> None:
        item.attempts += 1
        self.counters.failures += 1
        if item.attempts in (1, 10) or item.attempts % 100 == 0:
            log.warning("audit publish of %s failed (attempt %d): %r", item.decision_id, item.attempts, exc)
        delay = _RETRY_BACKOFF_S[min(item.attempts, len(_RETRY_BACKOFF_S)) - 1]
        asyncio.get_running_loop().call_later(delay, self._queue_item, item)

    def _queue_item(self, item: _Item) -> None:
        self._ready.append(item)
        if len(self._ready) == 1:
            self._wake.set()

    async def _sweep_unacknowledged(self) -> None:
        """A PubAck that never comes (NATS restarted, message dropped) must not pin an event forever."""
        while True:
            await asyncio.sleep(min(self.ack_timeout_s / 2, 0.5))
            cutoff = time.monotonic() - self.ack_timeout_s
            expired = [seq for seq, sent in self._inflight.items() if sent.sent_at < cutoff]
            for seq in expired:
                self._failed(self._inflight.pop(seq).item, TimeoutError(f"no PubAck within {self.ack_timeout_s}s"))
            if expired:
                self._room.set()


def _safe_name(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value) or "gate"
