"""A tiny HTTP/1.1 server for the kubelet's probes and Prometheus' scrapes (docs/metrics.md): GET only, one request
per connection, a bounded request head read within a timeout; anything else is answered 4xx and closed. It runs
on the gate's event loop, so a blocked loop cannot answer: the probe times out, which the kubelet counts as a
failure, as it should."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from http import HTTPStatus

log = logging.getLogger(__name__)

# What a route returns: the status, the content type, the body.
Answer = tuple[int, str, bytes]
Route = Callable[[], Answer]

_HEAD_LIMIT = 4096  # a probe's request head is a few hundred bytes
_READ_TIMEOUT_S = 2.0
_MAX_CONNECTIONS = 16  # more at once is not a kubelet or a Prometheus: closed unanswered


def _response(status: int, content_type: str, body: bytes) -> bytes:
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _plain(status: int) -> Answer:
    return status, "text/plain; charset=utf-8", f"{HTTPStatus(status).phrase}\n".encode()


class HealthServer:
    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self._host = host
        self._port = port
        self._routes = routes
        self._server: asyncio.Server | None = None
        self._open = 0

    @property
    def port(self) -> int | None:
        """The port listened on (the one asked for, or the system's pick for 0), None when not serving."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=_HEAD_LIMIT)
        log.info("health and metrics on http://%s:%d (/healthz/ready, /healthz/live, /metrics)", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open <= _MAX_CONNECTIONS:
                answer = await self._answer(reader)
                if answer is not None:
                    writer.write(_response(*answer))
                    await asyncio.wait_for(writer.drain(), _READ_TIMEOUT_S)
        except Exception as exc:  # a peer gone or too slow: nothing to answer
            log.debug("health request dropped: %r", exc)
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), _READ_TIMEOUT_S)

    async def _answer(self, reader: asyncio.StreamReader) -> Answer | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
        except (asyncio.LimitOverrunError, ValueError):
            return _plain(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        except (TimeoutError, asyncio.IncompleteReadError):
            return None
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _plain(HTTPStatus.BAD_REQUEST)
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method != b"GET":
            return _plain(HTTPStatus.METHOD_NOT_ALLOWED)
        route = self._routes.get(target.decode("latin-1"))
        if route is None:
            return _plain(HTTPStatus.NOT_FOUND)
        try:
            return route()
        except Exception:
            log.exception("health route %r failed", target)
            return _plain(HTTPStatus.INTERNAL_SERVER_ERROR)
