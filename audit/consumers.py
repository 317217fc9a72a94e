"""Websocket consumers (Django Channels)."""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from audit.live_feed import GROUP


class DecisionFeedConsumer(AsyncJsonWebsocketConsumer):
    """Streams decisions as the ingest stores them, to signed-in staff only (the admin's own session)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "group": GROUP})

    async def disconnect(self, code: int) -> None:
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def decisions(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "decisions", "decisions": message["decisions"]})
