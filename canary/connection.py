"""The canary's one way to reach NATS: a single attempt, bounded in time (it runs when things are broken, so it
must answer rather than retry), with the identity's own reply inbox (docs/access.md).

Its identity: `CIO_CANARY_NATS_USER` with `CIO_CANARY_NATS_PASSWORD_FILE` (or `CIO_CANARY_NATS_PASSWORD`) when
set, else the shared `CIO_NATS_USER` and its password. A shell that sourced `make up`'s `.cio/env.sh` holds an
operator's identity in the shared variables and the canary's in its own (docs/devstack.md). The break glass
(`canary/halt.py`) uses the shared variables only: it runs under the `release` identity."""

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping

import nats
from nats.aio.client import Client as NATS

from cio_kernel.nats_credentials import PASSWORD_ENV, PASSWORD_FILE_ENV, USER_ENV, nats_credentials

OWN = {
    USER_ENV: "CIO_CANARY_NATS_USER",
    PASSWORD_ENV: "CIO_CANARY_NATS_PASSWORD",
    PASSWORD_FILE_ENV: "CIO_CANARY_NATS_PASSWORD_FILE",
}


def canary_credentials(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`nats.connect`'s `user` and `password` for the canary: its own variables when its user is set."""
    if environ.get(OWN[USER_ENV]):
        return nats_credentials({shared: environ.get(own, "") for shared, own in OWN.items()})
    return nats_credentials(environ)


async def connect_once(
    nats_url: str,
    inbox_prefix: str,
    timeout_s: float,
    name: str,
    error_cb: Callable[[Exception], Awaitable[None]],
    credentials: dict[str, str] | None = None,
) -> NATS:
    """`credentials` default to the shared variables' (the break glass runs under its own `release` identity)."""
    return await asyncio.wait_for(
        nats.connect(
            nats_url,
            **(nats_credentials() if credentials is None else credentials),
            connect_timeout=timeout_s,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            inbox_prefix=inbox_prefix,
            name=name,
            error_cb=error_cb,
        ),
        timeout_s * 2,
    )
