"""The shape every long-running NATS listener of the control plane shares (`strategist_listen`,
`alert_bridge`): connect with this process's identity, subscribe, log counters every `stats_every` seconds until
SIGTERM/SIGINT, then drain NATS and let the listener finish its own work."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from django.conf import settings
from nats.aio.client import Client as NATS

from cio_kernel.nats_credentials import nats_credentials


async def listen_until_stopped(
    name: str,
    subscribe: Callable[[NATS], Awaitable[None]],
    counters: Callable[[], dict[str, Any]],
    log: logging.Logger,
    stats_every: float = 60.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nc = await nats.connect(
        settings.NATS_URL,
        **nats_credentials(),
        name=f"cio-{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1.0,
        inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
    )
    await subscribe(nc)
    await nc.flush()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), stats_every)
            log.info("%s: %s", name, counters())
    finally:
        with contextlib.suppress(Exception):
            await nc.drain()
        if on_stop is not None:
            await on_stop()
