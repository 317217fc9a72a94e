"""Every MCP tool runs through `run_tool`: the caller is resolved from the bearer token, the work runs in a
thread that may use the database, domain errors become tool errors whose text starts with the stable code an
agent can act on (`PERMISSION_DENIED: …`), and the call is recorded in the audit store (who, tool, arguments
with secrets redacted, outcome, trace id). Recording never fails a call: an audit store that is away is logged."""

import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from mcp.server.mcpserver.exceptions import ToolError

from audit.records import ToolCall
from audit.store import tool_call_log
from cio_kernel.redaction import process_scrubber
from cio_site.mcp.auth import NotAuthenticatedError, caller
from core.errors import DomainError, SpecInvalidError
from core.nul import NUL

log = logging.getLogger(__name__)
MAX_ARGUMENT_CHARS = 20_000


def _nul_spelled(value: Any) -> Any:
    """`value` (as JSON reads it) with every NUL character spelled `\\x00`, text PostgreSQL can store."""
    if isinstance(value, str):
        return value.replace(NUL, "\\x00")
    if isinstance(value, list):
        return [_nul_spelled(item) for item in value]
    if isinstance(value, dict):
        return {_nul_spelled(key): _nul_spelled(item) for key, item in value.items()}
    return value


def _holding_nul(arguments: dict[str, Any]) -> list[str]:
    """The arguments with a NUL character anywhere in their text: PostgreSQL refuses such text (a decision id
    "a\\x00b" answered INTERNAL_ERROR there, and the call was not even recorded), so no tool is given one."""
    as_read = orjson.loads(orjson.dumps(arguments, default=str))
    return [name for name, value in as_read.items() if _nul_spelled(value) != value]


def _bounded(arguments: dict[str, Any]) -> dict[str, Any]:
    scrubbed = _nul_spelled(orjson.loads(orjson.dumps(process_scrubber().value(arguments), default=str)))
    encoded = orjson.dumps(scrubbed)
    if len(encoded) <= MAX_ARGUMENT_CHARS:
        return orjson.loads(encoded)
    return {"truncated": encoded[:MAX_ARGUMENT_CHARS].decode(errors="ignore")}


def _record(call: ToolCall) -> None:
    try:
        tool_call_log().insert_tool_call(call)
    except Exception as exc:
        log.warning("MCP call %s (%s by %s) not recorded: %r", call.call_id, call.tool, call.user, exc)


def _run(tool: str, arguments: dict[str, Any], work: Callable[[User, str], Any]) -> Any:
    started, trace_id = time.monotonic(), secrets.token_hex(16)
    user_name, outcome, code, message, result = "?", "ok", None, "", None
    try:
        user = caller()
        user_name = user.get_username()
        if holding := _holding_nul(arguments):
            raise SpecInvalidError(f"{', '.join(holding)}: null characters are not allowed")
        result = work(user, trace_id)
        message = "ok"
    except NotAuthenticatedError as exc:
        outcome, code, message = "error", "NOT_AUTHENTICATED", str(exc)
    except DomainError as exc:
        outcome, code, message = "error", exc.code, str(exc)
    except Exception as exc:
        log.exception("MCP tool %s failed", tool)
        outcome, code, message = "error", "INTERNAL_ERROR", f"internal error ({type(exc).__name__})"
    _record(
        ToolCall(
            call_id=uuid.uuid4().hex,
            ts=datetime.now(UTC),
            user=user_name,
            tool=tool,
            arguments=_bounded(arguments),
            outcome=outcome,
            error_code=code,
            message=process_scrubber().text(message)[:2000],
            trace_id=trace_id,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    )
    if outcome == "error":
        raise ToolError(f"{code}: {message}")
    return result


async def run_tool(tool: str, arguments: dict[str, Any], work: Callable[[User, str], Any]) -> Any:
    """Run `work(user, trace_id)` for the calling user; raise `ToolError("<CODE>: <message>")` on failure."""
    return await sync_to_async(_run, thread_sensitive=True)(tool, arguments, work)
