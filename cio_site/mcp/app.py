"""The MCP endpoint as an ASGI app for `/mcp`: stateless streamable HTTP with JSON answers (each request stands
alone, so any web worker can serve any call), the SDK's bearer-token check, and DNS-rebinding protection for the
hosts Django allows. The SDK's session manager must run for the app to answer; the web server runs without ASGI
lifespan events (`make up`: `--lifespan off`), so it is started on the first request, once, and kept running."""

import asyncio
from typing import Any

from django.conf import settings
from mcp.server.transport_security import TransportSecuritySettings

from cio_site.mcp.server import build_server

Scope = dict[str, Any]


def _security() -> TransportSecuritySettings:
    hosts = [h for h in settings.ALLOWED_HOSTS if h and h != "*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection="*" not in settings.ALLOWED_HOSTS,
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[f"{scheme}://{h}{port}" for h in hosts for scheme in ("http", "https") for port in ("", ":*")],
    )


class McpApp:
    def __init__(self) -> None:
        self.server = build_server()
        self.app = self.server.streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=True, transport_security=_security()
        )
        self._running: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

    async def _run_session_manager(self, running: asyncio.Event) -> None:
        async with self.server.session_manager.run():
            running.set()
            await asyncio.Event().wait()  # until the process ends

    async def _started(self) -> None:
        if self._running is None:
            self._running = asyncio.Event()
            self._runner = asyncio.create_task(self._run_session_manager(self._running), name="mcp-sessions")
        await self._running.wait()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self._started()
        await self.app(scope, receive, send)
