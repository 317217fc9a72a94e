"""A NATS flush that means what it says (nats-py's does not quite)."""

import asyncio

from nats.aio.client import Client as NATS


async def flush_ordered(nc: NATS, within_s: float = 5.0) -> None:
    """`Client.flush`, made to mean what it says: everything queued before it has reached the server.

    nats-py writes the flush's PING straight to the socket, ahead of commands still in its pending buffer, so a
    plain `flush()` can return before preceding SUBs or PUBs were written: a subscription made just before may
    then miss the first message, a notice published just before may be lost when the connection closes. So:
    have the flusher write the buffer first (and wait for it), then PING.
    """
    if nc._flush_queue is not None and nc.is_connected:
        await asyncio.wait_for(nc._flush_pending(force_flush=True), within_s)
    await nc.flush(timeout=within_s)
