"""The canary's one way to reach NATS: a single attempt, bounded in time (it runs when things are broken, so it
must answer rather than retry), with the identity's own reply inbox (docs/access.md)."""

import asyncio
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NATS

from cio_kernel.nats_credentials import nats_credentials


async def connect_once(
    nats_url: str, inbox_prefix: str, timeout_s: float, name: str, error_cb: Callable[[Exception], Awaitable[None]]
) -> NATS:
    return await asyncio.wait_for(
        nats.connect(
            nats_url,
            **nats_credentials(),
            connect_timeout=timeout_s,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            inbox_prefix=inbox_prefix,
            name=name,
            error_cb=error_cb,
        ),
        timeout_s * 2,
    )
