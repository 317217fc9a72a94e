"""Every NATS subscription the gate makes, declared as one entry of one table.

An entry names its subject, queue group, handler and pending limits; `SubscriptionTable.subscribe` applies the
entries of a stage in one loop. Each entry counts what it received and what its handler failed on, and every
handler failure goes through one mapping: logged with the entry's name, counted, and the subscription keeps
delivering (nats-py would otherwise hand the exception to the connection's error callback, nameless).
"""

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import (
    DEFAULT_SUB_PENDING_BYTES_LIMIT,
    DEFAULT_SUB_PENDING_MSGS_LIMIT,
    Subscription,
)

log = logging.getLogger(__name__)


class Stage(Enum):
    """When an entry is subscribed. Signed floors arrive on peers' heartbeats and the control plane's notices:
    those are heard before the first policy load (`FLOOR`); everything else once the policy and the latches are
    loaded (`SERVE`)."""

    FLOOR = "floor"
    SERVE = "serve"


@dataclass(slots=True, eq=False)
class Subscribe:
    name: str
    subject: str
    handler: Callable[[Msg], Awaitable[None]]
    queue: str = ""
    stage: Stage = Stage.SERVE
    pending_msgs_limit: int = DEFAULT_SUB_PENDING_MSGS_LIMIT
    pending_bytes_limit: int = DEFAULT_SUB_PENDING_BYTES_LIMIT
    received: int = field(default=0, init=False)
    errors: int = field(default=0, init=False)
    sub: Subscription | None = field(default=None, init=False)

    async def deliver(self, msg: Msg) -> None:
        """The one error mapping: a failing handler costs this message, never the subscription."""
        self.received += 1
        try:
            await self.handler(msg)
        except Exception:
            self.errors += 1
            log.exception("subscription %s: handling a message on %s failed", self.name, msg.subject)


class SubscriptionTable:
    def __init__(self, entries: Iterable[Subscribe]) -> None:
        self.entries = list(entries)
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"subscription names must be unique: {names}")

    async def subscribe(self, nc: NATS, stage: Stage) -> None:
        for entry in self.entries:
            if entry.stage is stage:
                entry.sub = await nc.subscribe(
                    entry.subject,
                    queue=entry.queue,
                    cb=entry.deliver,
                    pending_msgs_limit=entry.pending_msgs_limit,
                    pending_bytes_limit=entry.pending_bytes_limit,
                )

    async def drain(self, entries: Iterable[Subscribe]) -> None:
        for entry in entries:
            if entry.sub is not None:
                with contextlib.suppress(Exception):
                    await entry.sub.drain()
                entry.sub = None

    def counts(self) -> dict[str, tuple[int, int]]:
        """(received, errors) by entry name: for the log and the process, not for any wire model."""
        return {entry.name: (entry.received, entry.errors) for entry in self.entries}
