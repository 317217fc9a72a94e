"""The MCP endpoint as an ASGI app for `/mcp`: stateless streamable HTTP with JSON answers (each request stands
alone, so any web worker can serve any call), the SDK's bearer-token check, and DNS-rebinding protection for the
hosts Django allows. The SDK's session manager must run for the app to answer; the web server runs without ASGI
lifespan events (`make up`: `--lifespan off`), so it is started on the first request, once, and kept running.

Each HTTP request's client address is resolved here (brakes/addresses.py) for the token brake; when the
brake engaged on a failed bearer token, the SDK's 401 is answered as 429 RATE_LIMITED with Retry-After."""

import asyncio
from typing import Any

import orjson
from django.conf import settings
from mcp.server.transport_security import TransportSecuritySettings

from brakes import addresses
from cio_site.mcp.auth import BearerAttempt, current_attempt
from cio_site.mcp.server import build_server

Scope = dict[str, Any]
Send = Any


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

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        await self._started()
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        attempt = BearerAttempt(addresses.of_scope(scope))
        reset = current_attempt.set(attempt)
        try:
            await self.app(scope, receive, _braked(send, attempt))
        finally:
            current_attempt.reset(reset)


def _braked(send: Send, attempt: BearerAttempt) -> Send:
    """`send`, except that the SDK's 401 for a token the brake refused goes out as a 429 (its body dropped)."""
    replaced = False

    async def braked_send(message: dict[str, Any]) -> None:
        nonlocal replaced
        if replaced:
            return
        refusal = attempt.refusal
        if refusal is None or message["type"] != "http.response.start" or message["status"] != 401:
            await send(message)
            return
        replaced = True
        description = (
            f"too many failed tokens from this address or with this prefix: retry in {refusal.retry_after_s} s"
        )
        body = orjson.dumps({"error": "RATE_LIMITED", "error_description": description})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(refusal.retry_after_s).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return braked_send
