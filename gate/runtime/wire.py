"""Publishing many NATS messages per call through nats-py's own outbound buffer.

`Client.publish` costs the gate more than its decision: per call it validates subjects with regexes, encodes
the header dict, and creates a flush future. The gate publishes three to four messages per intent to subjects
it built itself (or reply subjects the server assigned), so `NatsWriter` appends the same protocol bytes
(`PUB`/`HPUB`, exactly what `Client.publish` writes) to the client's pending buffer and asks its flusher
once. It relies on three attributes of nats-py's `Client` (`_pending`, `_pending_data_size`,
`_flush_pending`, `_flush_queue`), checked when the writer is made, so an incompatible nats-py fails at start-up, not in
flight; the integration tests run every message through it against a real server.
"""

import asyncio

from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, OutboundBufferLimitError

_NATS_HDR = b"NATS/1.0\r\n"
_REQUIRED = ("_pending", "_pending_data_size", "_flush_pending", "_flush_queue", "_max_pending_size")


def header_block(headers: dict[str, str]) -> bytes:
    """The NATS/1.0 header block for values the gate produced itself (ids, traceparents: no CR or LF)."""
    return _NATS_HDR + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


def traceparent_header(traceparent: str) -> bytes:
    return _NATS_HDR + b"traceparent: " + traceparent.encode() + b"\r\n\r\n"


def _command(subject: str, payload: bytes, headers: bytes, reply: str) -> bytes:
    if headers:
        size = len(headers)
        return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
            subject.encode(),
            reply.encode(),
            size,
            size + len(payload),
            headers,
            payload,
        )
    return b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload)


class NatsWriter:
    __slots__ = ("_held", "_nc")

    def __init__(self, nc: NATS) -> None:
        missing = [name for name in _REQUIRED if not hasattr(nc, name)]
        if missing:
            raise RuntimeError(f"this nats-py has no {', '.join(missing)}: the gate's writer needs nats-py 2.x")
        self._nc = nc
        self._held: list[bytes] = []

    def hold(self, subject: str, payload: bytes, headers: bytes = b"", reply: str = "") -> None:
        """Keep a message back until `release` (so what it depends on can be made durable first)."""
        self._held.append(_command(subject, payload, headers, reply))

    def release(self) -> None:
        """Queue every held message and wake the client's flusher; synchronous, so nothing else can write first."""
        held, self._held = self._held, []
        if not held:
            return
        nc = self._nc
        size = sum(len(command) for command in held)
        self._check_room(size)
        nc._pending.extend(held)
        nc._pending_data_size += size
        if nc._flush_queue is not None and nc._flush_queue.empty():
            nc._flush_queue.put_nowait(asyncio.get_running_loop().create_future())

    def mark(self) -> int:
        """Where the held messages end now: `rewind` to it takes back what was held since (one intent's)."""
        return len(self._held)

    def rewind(self, mark: int) -> None:
        del self._held[mark:]

    def drop_held(self) -> int:
        dropped, self._held = len(self._held), []
        return dropped

    def _check_room(self, size: int) -> None:
        nc = self._nc
        if nc.is_closed:
            raise ConnectionClosedError
        if not nc.is_connected and nc._pending_data_size + size > nc._max_pending_size:
            raise OutboundBufferLimitError  # reconnecting and the buffer is full, as `Client.publish` would say

    def add(self, subject: str, payload: bytes, headers: bytes = b"", reply: str = "") -> None:
        """Queue one message; nothing is sent before `flush`. Raises like `Client.publish` when it cannot queue."""
        nc = self._nc
        if nc.is_closed:
            raise ConnectionClosedError
        command = _command(subject, payload, headers, reply)
        self._check_room(len(command))
        nc._pending.append(command)
        nc._pending_data_size += len(command)

    async def flush(self) -> None:
        """Hand what was queued to the client's flusher (once per batch, not once per message)."""
        nc = self._nc
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()
