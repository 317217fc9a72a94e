"""Talking to a running gate the way a strategy, the control plane or an auditor would."""

import asyncio
import inspect
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from cio_kernel.audit_chain import ChainLink
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.spec import PolicySpec
from tests.factories import signed_document


async def activate(redis: aioredis.Redis, nc: NATS, spec: PolicySpec, version: int) -> PolicyDocument:
    """What the control plane does on activation, signed with the tests' control-plane key."""
    document = signed_document(spec, version)
    await publish_policy(redis, nc, document)
    return document


class ManualClock:
    """A monotonic clock that moves only when the test says so (freshness without sleeping). Wall time is real,
    or, given `wall`, starts there and moves with the monotonic clock only."""

    def __init__(self, wall: float | None = None) -> None:
        self.now = 1_000.0
        self._wall = wall

    def time(self) -> float:
        return time.time() if self._wall is None else self._wall + self.now - 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def wait_for_policy(gate: Any, version: int, timeout_s: float = 5.0) -> None:
    await wait_until(
        lambda: gate.policy_sync.policy is not None and gate.policy_sync.policy.version >= version,
        timeout_s,
        f"the gate loading policy v{version}",
    )


async def wait_until(condition: Any, timeout_s: float = 5.0, what: str = "condition") -> None:
    """Poll a cheap in-process or server-side condition until it holds (waiting on the event, not a guess)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                result = condition()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                # A poll interval while Redis, NATS or a gate works; the timeout only bounds a failing test.
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout_s}s") from None


async def request(
    nc: NATS,
    body: dict[str, Any] | bytes,
    subject: str = "intent.trading.BTCUSDT",
    headers: dict[str, str] | None = None,
) -> tuple[DecisionEnvelope, Msg]:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    msg = await nc.request(subject, payload, timeout=5, headers=headers)
    return DecisionEnvelope.model_validate_json(msg.data), msg


class Collector:
    """Subscribes to a subject and keeps every message it sees. A gate sends a promoted signal before its reply
    on one connection, so once the reply is in, an empty collector of signals proves that none was sent."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self._event = asyncio.Event()

    async def cb(self, msg: Msg) -> None:
        self.messages.append(msg)
        self._event.set()

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Msg]:
        async with asyncio.timeout(timeout_s):
            while len(self.messages) < count:
                self._event.clear()
                await self._event.wait()
        return self.messages


async def collect(nc: NATS, subject: str) -> Collector:
    collector = Collector()
    await nc.subscribe(subject, cb=collector.cb)
    await flush_ordered(nc)
    return collector


MARKER = b"marker"


async def after_step(gate: Any, collector: Collector, subject: str) -> list[Msg]:
    """What the gate published on `subject` since the collector started, up to a marker sent after the step on the
    gate's own connection (NATS keeps one publisher's order): silence proven without waiting to see nothing."""
    await gate.links.nc.publish(subject, MARKER)
    await flush_ordered(gate.links.nc)
    while not any(m.data == MARKER for m in collector.messages):
        await collector.wait_for(len(collector.messages) + 1)
    seen = [m for m in collector.messages if m.data != MARKER]
    collector.messages.clear()
    return seen


def _producer_id(body: dict[str, Any]) -> Any:
    return body.get("signal_id") or body.get("intent_id")


async def promoted_before_marker(nc: NATS, signals: Collector, subject: str, marker: dict[str, Any]) -> list[Msg]:
    """The signals promoted before `marker`, an intent the policy approves, published now on `subject` into the
    intake stream. Call it once the intake consumer has settled (nothing left to deliver or to acknowledge) with one
    gate running: that gate takes the stream in order and promotes on one connection, so once the marker's signal
    is in, a promotion of anything it handled earlier is in too. Silence proven without waiting to see nothing."""
    await nc.publish(subject, orjson.dumps(marker))
    marker_id = _producer_id(marker)

    def promoted() -> bool:
        return any(_producer_id(orjson.loads(m.data)) == marker_id for m in signals.messages)

    await wait_until(promoted, 10.0, "the marker intent promoted")
    return [m for m in signals.messages if _producer_id(orjson.loads(m.data)) != marker_id]


@dataclass(frozen=True)
class AuditRecord:
    msg_id: str
    subject: str
    event: AuditEvent
    link: ChainLink | None
    payload: bytes


async def audit_events(nc: NATS, stream: str = "CIO_AUDIT", expected: int | None = None) -> list[AuditRecord]:
    """Every event in the audit stream, read with an ephemeral ordered consumer."""
    js = nc.jetstream()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        info = await js.stream_info(stream)
        if expected is None or info.state.messages >= expected or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)  # JetStream (a separate server) is still storing what was published
    total = info.state.messages
    events: list[AuditRecord] = []
    if total == 0:
        return events
    sub = await js.subscribe("cio.audit.decision.>", stream=stream, ordered_consumer=True)
    try:
        while len(events) < total:
            msg = await sub.next_msg(timeout=5)
            msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
            event = AuditEvent.model_validate_json(msg.data)
            events.append(AuditRecord(msg_id, msg.subject, event, ChainLink.from_headers(msg.headers), msg.data))
    finally:
        await sub.unsubscribe()
    return events
