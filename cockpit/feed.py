"""How the cockpit stays live: the pushes its pages receive and how a lost message is noticed.

The publisher is the web process itself. While at least one cockpit page is open in a process, its consumers ask
`Panels.latest()` every `CIO_COCKPIT_PUSH_S`; the panels are read at most once per interval per process, whatever
the number of pages, and each page gets them over its own socket. Nothing else runs for it (no beat task, no second
writer to the channel layer), nothing is pushed when nobody looks, and a push can only be lost with its socket,
which the page sees. Decisions come faster than that, through the audit ingest's own group (audit.live_feed),
numbered per ingest process: `GapDetector` notices a message Channels dropped and the page reloads its snapshot."""

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async

from cockpit.panels import snapshot

MAX_ORIGINS = 64  # publishers remembered per page: an ingest restart is a new origin; planted ones cannot grow it


class GapDetector:
    """Per page: the last `seq` seen from each `origin`. A message that does not follow its origin's last one is a
    gap (a dropped message, or a number planted in the layer: either way the page reloads, which costs a read)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def gap(self, message: dict[str, Any]) -> bool:
        origin, seq = message.get("origin"), message.get("seq")
        if not isinstance(origin, str) or not isinstance(seq, int) or isinstance(seq, bool) or len(origin) > 64:
            return True  # unnumbered: nothing says nothing was lost before it
        last = self._last.pop(origin, None)
        if len(self._last) >= MAX_ORIGINS:
            self._last.pop(next(iter(self._last)))
        self._last[origin] = seq
        return last is not None and seq != last + 1


class Panels:
    """The panels of this process, read at most once per `every_s` for every page that asks."""

    def __init__(self) -> None:
        self._value: dict[str, Any] | None = None
        self._at = -float("inf")
        self._lock: asyncio.Lock | None = None

    async def latest(self, every_s: float) -> dict[str, Any]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= every_s * 0.9:
                # In a pool thread, not the one Django runs its sync views in: a slow backend (each read bounded
                # by its timeout) delays the pushes, never the pages and forms of this process.
                self._value = await database_sync_to_async(snapshot, thread_sensitive=False)()
                self._at = time.monotonic()
            return self._value


PANELS = Panels()
