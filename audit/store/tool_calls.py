"""The tool-call log: every MCP tool call (who, which tool, arguments with secrets redacted, outcome), once per
`call_id`."""

from typing import Protocol, runtime_checkable

from audit.records import ToolCall


@runtime_checkable
class ToolCallLog(Protocol):
    def insert_tool_call(self, call: ToolCall) -> bool:
        """Record one MCP tool call (once per `call_id`)."""
        ...

    def recent_tool_calls(self, limit: int = 100, user: str | None = None) -> list[ToolCall]:
        """Newest first."""
        ...
