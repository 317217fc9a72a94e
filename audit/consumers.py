"""Websocket consumers (Django Channels)."""

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from audit.live_feed import GROUP, MAX_IDS
from audit.presentation import decision_summary
from audit.store import get_store
from core import roles

log = logging.getLogger(__name__)
_REJOIN_S = 3600.0
_MAX_ID_LEN = 64  # a decision id's column width: anything longer is not one


def announced_ids(message: dict[str, Any]) -> list[str]:
    """The decision ids a channel-layer message names, as far as they can be ids at all (at most `MAX_IDS`)."""
    ids = message.get("ids")
    if not isinstance(ids, list):
        return []
    return [i for i in ids[:MAX_IDS] if isinstance(i, str) and 0 < len(i) <= _MAX_ID_LEN]


@database_sync_to_async
def stored_summaries(ids: list[str]) -> list[dict[str, Any]]:
    return [decision_summary(record) for record in get_store().get_decisions(ids)]


class _FromClient(dict[str, Any]):
    """A message the ASGI server delivered from the page's own socket. Channel-layer messages arrive as plain
    dicts (unpacked from Redis), so no holder of the layer can make one of these."""


_CLIENT_EVENTS = frozenset({"websocket.connect", "websocket.receive", "websocket.disconnect"})
_LAYER_EVENTS = frozenset({"decisions"})


class DecisionFeedConsumer(AsyncJsonWebsocketConsumer):
    """Streams decisions as the ingest stores them, to signed-in staff with the viewer permission (the admin's own
    session and rule). The group message only names decision ids; what the page shows is read from the audit store
    here, so a message planted in the channel layer shows nothing the store does not hold."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def from_client() -> _FromClient:
            return _FromClient(await receive())

        await super().__call__(scope, from_client, send)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels dispatches the layer's messages and the socket's alike, by their `type`, to any method of that
        name (`send.json`, `websocket.disconnect`, `close`…), and an unknown type kills the consumer: from the
        layer only `decisions` is taken, and socket events only from the socket; the rest is ignored."""
        allowed = _CLIENT_EVENTS if isinstance(message, _FromClient) else _LAYER_EVENTS
        if message.get("type") in allowed:
            await super().dispatch(message)

    async def connect(self) -> None:
        if not await database_sync_to_async(roles.may_look)(self.scope.get("user")):  # what the admin's pages ask
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "group": GROUP})
        self._renewal = asyncio.create_task(self._stay_in_group())

    async def _stay_in_group(self) -> None:
        # channels_redis forgets a group member after `group_expiry` (a day): a page left open longer would keep
        # its socket but silently receive nothing. Re-joining well inside that keeps it following.
        while True:
            await asyncio.sleep(_REJOIN_S)
            try:
                await self.channel_layer.group_add(GROUP, self.channel_name)
            except Exception as exc:  # Redis away: the next round tries again; the page's own socket says the rest
                log.warning("live feed: could not renew a page's group membership: %r", exc)

    async def disconnect(self, code: int) -> None:
        renewal = getattr(self, "_renewal", None)
        if renewal is not None:
            renewal.cancel()
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def decisions(self, message: dict[str, Any]) -> None:
        ids = announced_ids(message)
        if not ids:
            return
        summaries = await stored_summaries(ids)
        if summaries:
            await self.send_json({"type": "decisions", "decisions": summaries})
