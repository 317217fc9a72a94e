"""MCP tools for the audit trail: gate decisions, a decision's trace to the policy and thought behind it, similar
incidents and recent alerts. Reads go through `audit.selectors`, `lineage.selectors`, `audit.incidents` and
`alerting.selectors`, as for REST and admin."""

from typing import Annotated, Any, Literal

from pydantic import Field

from alerting import selectors as alert_selectors
from audit import incidents, selectors
from audit.store import decision_log
from cio_site.mcp.calls import run_tool
from cio_site.mcp.room import Room, plain, require_view
from core import errors
from lineage import selectors as lineage_selectors

room = Room()


@room.tool(
    description="Gate decisions, newest first, with optional filters (times are ISO 8601 with a zone). Pass "
    "`cursor` from the previous answer's next_cursor for the next page. Each says `shadow`: true when a gate in "
    "shadow mode decided it (never promoted); `shadow` filters to those (true) or to serving gates' (false)."
)
async def query_decisions(
    since: str | None = None,
    until: str | None = None,
    strategy_id: str | None = None,
    symbol: str | None = None,
    decision: Literal["APPROVED", "REJECTED", "RETRY_SAFE"] | None = None,
    reason_code: str | None = None,
    policy_version: int | None = None,
    shadow: bool | None = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    arguments = {
        "since": since,
        "until": until,
        "strategy_id": strategy_id,
        "symbol": symbol,
        "decision": decision,
        "reason_code": reason_code,
        "policy_version": policy_version,
        "shadow": shadow,
        "limit": limit,
        "cursor": cursor,
    }

    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in arguments.items() if v is not None}
        try:
            query = selectors.decision_query(params)
        except selectors.QueryError as exc:
            raise errors.SpecInvalidError(f"{exc.field}: {exc.message}") from exc
        return plain(selectors.decision_page(query))

    return await run_tool("query_decisions", arguments, work)


@room.tool(
    description="Follow a decision to the policy version it was judged under, the Strategist thought that "
    "proposed that version (if any), and who approved and activated it. Give the decision's `trace_id` (every "
    "decision of that trace) or its `decision_id`."
)
async def get_decision_trace(
    trace_id: Annotated[str | None, Field(pattern=r"^[0-9a-f]{32}$")] = None,
    decision_id: Annotated[str | None, Field(max_length=64)] = None,
) -> dict[str, Any]:
    def work(user: Any, _: str) -> Any:
        require_view(user)
        if (trace_id is None) == (decision_id is None):
            raise errors.SpecInvalidError("give either `trace_id` or `decision_id`")
        wanted = trace_id
        if decision_id is not None:
            record = decision_log().get_decision(decision_id)
            if record is None:
                raise errors.NotFoundError(f"no decision {decision_id} in the audit store")
            wanted = record.trace_id
        found = lineage_selectors.trace_dict(wanted or "")
        if found is None:
            raise errors.NotFoundError(f"no decision with trace id {wanted} in the audit store")
        if decision_id is not None:
            found["decisions"] = [d for d in found["decisions"] if d["decision_id"] == decision_id]
        return plain(found)

    return await run_tool("get_decision_trace", {"trace_id": trace_id, "decision_id": decision_id}, work)


@room.tool(
    description="Past incidents most like a description (free text) or like a stored incident: rejection "
    "bursts, limit breaches, kill-switch changes, rollbacks, regime shifts."
)
async def search_similar_incidents(
    text: str | None = None,
    incident_id: str | None = None,
    kind: str | None = None,
    limit: Annotated[int, Field(ge=1, le=50)] = 5,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        if not text and not incident_id:
            raise errors.SpecInvalidError("give `text` or `incident_id`")
        try:
            found = incidents.similar(incident_id=incident_id, text=text, kind=kind, limit=limit)
        except incidents.UnknownIncidentError as exc:
            raise errors.NotFoundError(str(exc)) from exc
        return plain({"incidents": incidents.scored_dicts(found, digits=4)})

    arguments = {"text": text, "incident_id": incident_id, "kind": kind, "limit": limit}
    return await run_tool("search_similar_incidents", arguments, work)


@room.tool(description="Recent alerts with each channel's delivery outcome, repeats and acknowledgement.")
async def get_recent_alerts(
    severity: Literal["info", "warning", "critical"] | None = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return plain({"alerts": [view.as_dict() for view in alert_selectors.recent(limit, severity)]})

    return await run_tool("get_recent_alerts", {"severity": severity, "limit": limit}, work)
