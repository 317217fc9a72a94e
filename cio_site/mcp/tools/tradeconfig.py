"""MCP tools for the trade engine's trading configuration: read it as the engine applies it, propose a change,
list changes, approve and push one. All through `tradeconfig.services`, as for REST and admin."""

from typing import Annotated, Any, Literal

from pydantic import Field

from cio_site.mcp.calls import run_tool
from cio_site.mcp.room import Room, plain, require_view
from tradeconfig import services

room = Room()


@room.tool(
    description="The trade engine's trading configuration (leverage, sizing, default stops …) for the global "
    "scope, a symbol, or a symbol and side (LONG/SHORT), resolved as the engine applies it."
)
async def get_trading_config(symbol: str | None = None, side: Literal["LONG", "SHORT"] | None = None) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        return services.current(user, symbol, side).model_dump(mode="json")

    return await run_tool("get_trading_config", {"symbol": symbol, "side": side}, work)


@room.tool(
    description="Propose a change to the trade engine's trading configuration: only the parameters that "
    'change, e.g. {"leverage": 5}. Checked against the engine\'s parameter schema (and by the engine itself, '
    "without saving). Nothing reaches the engine until a risk officer approves."
)
async def propose_trading_config_change(
    parameters: dict[str, Any],
    rationale: Annotated[str, Field(min_length=1, max_length=10_000)],
    symbol: str | None = None,
    side: Literal["LONG", "SHORT"] | None = None,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        change = services.propose(
            by=user, parameters=parameters, rationale=rationale, symbol=symbol, side=side, trace_id=trace_id
        )
        return plain(services.as_dict(change))

    arguments = {"parameters": parameters, "rationale": rationale, "symbol": symbol, "side": side}
    return await run_tool("propose_trading_config_change", arguments, work)


@room.tool(description="Trading-configuration changes, newest first, by status (docs/tradeconfig.md).")
async def list_trading_config_changes(
    status: Literal[
        "proposed", "rejected", "approved", "pushing", "applied", "failed", "unknown", "superseded", "stale"
    ]
    | None = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return plain({"changes": services.recent(status, limit)})

    return await run_tool("list_trading_config_changes", {"status": status, "limit": limit}, work)


@room.tool(
    description="Approve a proposed trading-configuration change and push it to the trade engine (risk "
    "officers only; never your own proposal). It is approved against the engine's live values, and every push "
    "is conditional on them; pass `expected_live` (the values you reviewed) to refuse if they moved since."
)
async def approve_trading_config_change(
    change_id: Annotated[int, Field(ge=1)],
    reason: Annotated[str, Field(max_length=10_000)] = "",
    expected_live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        change = services.approve(services.get(change_id), by=user, reason=reason, expected_live=expected_live)
        return plain(services.as_dict(change))

    arguments = {"change_id": change_id, "reason": reason, "expected_live": expected_live}
    return await run_tool("approve_trading_config_change", arguments, work)
