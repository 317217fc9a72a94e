"""A room: one domain's MCP tools, declared where the domain's other surfaces are read (`tools/<domain>.py`) and
registered on the server together by `build_server`, in the order they are declared. Helpers the rooms share live
here too."""

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from mcp.server.mcpserver import MCPServer

from core import roles

Tool = Callable[..., Coroutine[Any, Any, dict[str, Any]]]


class Room:
    def __init__(self) -> None:
        self.tools: list[tuple[Tool, str]] = []

    def tool(self, description: str) -> Callable[[Tool], Tool]:
        """Declare an async function as a tool: its name, its parameters' type hints (the input schema an agent
        sees) and its return type hint are the tool's; run its work through `run_tool` (cio_site/mcp/calls.py)."""

        def declare(fn: Tool) -> Tool:
            self.tools.append((fn, description))
            return fn

        return declare

    def register(self, server: MCPServer) -> None:
        for fn, description in self.tools:
            server.add_tool(fn, description=description)


def plain(value: Any) -> Any:
    """`value` as JSON types only (times as text, serializer output as plain dicts), as a tool answers."""
    return orjson.loads(orjson.dumps(value, default=str))


def require_view(user: Any) -> None:
    roles.require(user, roles.VIEW, "read the control plane")
