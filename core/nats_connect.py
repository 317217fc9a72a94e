"""One short-lived NATS connection of the control plane, under its own identity: the credentials
(`CIO_NATS_USER` + password file), its own reply inbox (the shipped permissions refuse JetStream's answers anywhere
else: docs/access.md), one attempt bounded by `timeout_s`. Long-running listeners use core/nats_listener.py."""

from typing import Any

import nats
from django.conf import settings
from nats.aio.client import Client as NATS

from cio_kernel.nats_credentials import nats_credentials


async def connect_once(name: str, timeout_s: float, **options: Any) -> NATS:
    return await nats.connect(
        settings.NATS_URL,
        **nats_credentials(),
        name=name,
        inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
        connect_timeout=timeout_s,
        allow_reconnect=False,
        max_reconnect_attempts=1,  # with 0, nats-py retries forever and ignores the connect timeout
        **options,
    )
