"""Reading the trade engine's `GET /state?symbol=` over HTTP: one answer per symbol, bounded in time and size.

Failures are `EngineReadError` with a `kind` (an alert key): `unreachable` (no connection), `timeout`,
`http_error` (any status but 200: the engine's 500 `{"detail": "Failed to retrieve engine state: ..."}`, a 422, a
redirect, which is never followed), `too_large`, and `malformed` (from `convert.parse_state`)."""

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import orjson

from bridges.engine_state.convert import EngineState, Unconvertible, parse_state
from cio_kernel.numbers import whole_number

# An error body is read this far for the alert (the engine's message), never further.
_ERROR_BODY_BYTES = 2048


class EngineReadError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def checked_state_url(url: str) -> str:
    """The state endpoint's URL, refused when it carries credentials, a query or a fragment (credentials go in
    CIO_ENGINE_STATE_TOKEN, never in a URL that ends up in logs and alerts)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("CIO_ENGINE_STATE_URL must be an http(s) URL of the engine's /state endpoint")
    if parts.username is not None or parts.password is not None:
        raise ValueError("CIO_ENGINE_STATE_URL must not carry credentials: use CIO_ENGINE_STATE_TOKEN")
    if parts.query or parts.fragment:
        raise ValueError("CIO_ENGINE_STATE_URL takes no query or fragment: the bridge adds ?symbol=")
    return url


def _error_detail(body: bytes) -> str:
    """The engine's `detail` (FastAPI's error shape) when there is one, else the start of the body."""
    try:
        detail = orjson.loads(body).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else body.decode(errors="replace")
    return " ".join(text.split())[:200]


@dataclass
class StateReader:
    client: httpx.AsyncClient
    url: str
    timeout_s: float
    max_bytes: int
    token: str | None = None

    async def read(self, symbol: str) -> EngineState:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            # One deadline for the whole exchange: httpx's own timeouts are per phase, so a server dripping a
            # byte at a time would otherwise hold a round for ever.
            async with asyncio.timeout(self.timeout_s):
                return await self._read(symbol, headers)
        except (TimeoutError, httpx.TimeoutException):
            raise EngineReadError(
                "timeout", f"the engine did not answer for {symbol} within {self.timeout_s:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise EngineReadError(
                "unreachable", f"the engine's state API is unreachable: {type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:  # e.g. a body that does not decode as its Content-Encoding says
            raise EngineReadError(
                "http_error", f"the engine's answer for {symbol} is unreadable: {type(exc).__name__}"
            ) from None

    async def _read(self, symbol: str, headers: dict[str, str]) -> EngineState:
        async with self.client.stream("GET", self.url, params={"symbol": symbol}, headers=headers) as response:
            if response.status_code != 200:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= _ERROR_BODY_BYTES:
                        break
                detail = _error_detail(body[:_ERROR_BODY_BYTES])
                raise EngineReadError(
                    "http_error", f"the engine answered HTTP {response.status_code} for {symbol}: {detail}"
                )
            declared = whole_number(response.headers.get("Content-Length"))
            if declared is not None and declared > self.max_bytes:
                raise EngineReadError("too_large", f"the engine's answer for {symbol} is over {self.max_bytes} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise EngineReadError(
                        "too_large", f"the engine's answer for {symbol} is over {self.max_bytes} bytes"
                    )
        try:
            return parse_state(bytes(body))
        except Unconvertible as exc:
            raise EngineReadError(exc.kind, f"{symbol}: {exc.message}") from None
