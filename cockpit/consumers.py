"""The cockpit's websocket: the live decisions feed's consumer (staff only, the layer's messages only hints to read
the audit store, the dispatch allow-list), plus the panels pushed every `CIO_COCKPIT_PUSH_S` (cockpit.feed) and a
number on every message, so the page notices anything it missed."""

import asyncio
import logging
from typing import Any

from django.conf import settings

from audit.consumers import DecisionFeedConsumer
from cockpit.feed import PANELS, GapDetector

log = logging.getLogger(__name__)


class CockpitConsumer(DecisionFeedConsumer):
    """Each message to the page carries `seq`, consecutive per socket, from the `hello` on. A gap in the ingest's
    numbering of layer messages is passed on as a `gap` message; either way the page reloads its snapshot."""

    _seq = 0

    async def connect(self) -> None:
        self._gaps = GapDetector()
        await super().connect()  # the feed's rule is the page's (core.roles.may_look)
        if getattr(self, "_renewal", None) is not None:  # accepted (staff): start pushing
            self._pusher = asyncio.create_task(self._push())

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        self._seq += 1
        await super().send_json({**content, "seq": self._seq}, close)

    async def _push(self) -> None:
        every = float(settings.CIO_COCKPIT_PUSH_S)
        while True:
            try:
                await self.send_json({"type": "panels", **await PANELS.latest(every)})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the socket is going: disconnect cancels this task
                log.warning("cockpit: a push failed: %r", exc)
            await asyncio.sleep(every)

    async def disconnect(self, code: int) -> None:
        pusher = getattr(self, "_pusher", None)
        if pusher is not None:
            pusher.cancel()
        await super().disconnect(code)

    async def decisions(self, message: dict[str, Any]) -> None:
        if self._gaps.gap(message):
            await self.send_json({"type": "gap"})
        await super().decisions(message)
