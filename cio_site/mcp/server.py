"""The MCP server: the control plane's capabilities as tools (SPEC §8), with the REST API's permissions.

Every tool resolves its caller from the bearer token and delegates to the same services and selectors as REST
and admin, so what an agent may do is what its role may do anywhere: an agent reads and proposes (and may make a
trading state stricter); only a risk officer approves, activates or releases. Failures come back as tool errors
whose text starts with the stable code (`PERMISSION_DENIED: …`, `VAL_ERR: …`)."""

from typing import Annotated, Any, Literal

import orjson
from django.conf import settings
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from audit import incidents
from audit import selectors as audit_selectors
from audit.alerting import selectors as alert_selectors
from audit.presentation import decision_summary
from audit.store import decision_log
from cio_site.mcp.auth import ApiTokenVerifier
from cio_site.mcp.calls import run_tool
from policies import errors, roles, services
from policies.api.serializers import PolicyVersionSerializer, PolicyVersionSummarySerializer
from policies.diff import diff_specs
from policies.models import PolicyVersion, compact_spec
from policies.selectors import active_version, gate_heartbeats, unverified_json
from policies.strategist.changes import Change, InvalidChangeError, apply_changes
from policies.tradeconfig import services as config_services
from policies.tradeconfig.models import ChangeStatus, ConfigChange

INSTRUCTIONS = """\
Petrosa CIO: the risk gate and governance control plane of a fleet of trading strategies. Every trade intent is
checked by gates against the active risk policy (a versioned document with global, per-strategy and per-symbol
limits). Use these tools to read the active policy and its history, the gates' status, the decisions they made
(and the trace from a decision to the policy version, the reasoning behind it and its approval), incidents and
alerts, and the trade engine's trading configuration. You may propose changes (policies and trading
configuration); a human risk officer reviews and approves them. Errors start with a stable code such as
PERMISSION_DENIED, VAL_ERR, OUTSIDE_ENVELOPE, NOT_FOUND, FOUR_EYES_VIOLATION or INVALID_TRANSITION, followed by
what to fix."""


def _plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def _view(user: Any) -> None:
    roles.require(user, roles.VIEW, "read the control plane")


def _version(number: int) -> PolicyVersion:
    found = PolicyVersion.objects.select_related("proposed_by", "decided_by", "activated_by").filter(version=number)
    version = found.first()
    if version is None:
        raise errors.NotFoundError(f"no policy version {number}")
    return version


def build_server() -> MCPServer:
    public = settings.CIO_MCP_PUBLIC_URL.rstrip("/")
    mcp = MCPServer(
        name="petrosa-cio",
        title="Petrosa CIO control plane",
        instructions=INSTRUCTIONS,
        token_verifier=ApiTokenVerifier(),
        auth=AuthSettings(issuer_url=public, resource_server_url=f"{public}/mcp", validate_token_resource=False),
    )

    # -- policies ------------------------------------------------------------------------------------------------
    @mcp.tool(description="The active risk policy: version, checksum, who activated it and when, and the full spec.")
    async def get_active_policy() -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            active = active_version()
            if active is None:
                raise errors.NotFoundError("no policy is active: every gate answers RETRY_SAFE")
            return _plain(PolicyVersionSerializer(active).data)

        return await run_tool("get_active_policy", {}, work)

    @mcp.tool(description="Policy versions, newest first, without their specs (use get_policy_version for one).")
    async def list_policy_versions(
        status: Annotated[
            Literal["draft", "proposed", "approved", "active", "superseded", "rejected"] | None,
            Field(description="only versions in this status"),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="how many, newest first")] = 20,
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            query = PolicyVersion.objects.select_related("proposed_by", "decided_by", "activated_by", "based_on")
            if status:
                query = query.filter(status=status)
            return {"versions": _plain(PolicyVersionSummarySerializer(query[:limit], many=True).data)}

        return await run_tool("list_policy_versions", {"status": status, "limit": limit}, work)

    @mcp.tool(description="One policy version with its full spec, rationale and who proposed, approved, activated it.")
    async def get_policy_version(version: Annotated[int, Field(ge=1)]) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            return _plain(PolicyVersionSerializer(_version(version)).data)

        return await run_tool("get_policy_version", {"version": version}, work)

    @mcp.tool(description="What changes between two policy versions, one line per changed field.")
    async def diff_policy_versions(
        version: Annotated[int, Field(ge=1, description="the version to compare")],
        against: Annotated[
            str, Field(description="'active' (the default) or another version number, as text")
        ] = "active",
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            target = _version(version)
            if against == "active":
                base = active_version()
                if base is None:
                    raise errors.NotFoundError("no policy is active")
            elif against.isdigit():
                base = _version(int(against))
            else:
                raise errors.SpecInvalidError("against: 'active' or a version number")
            changes = diff_specs(base.parsed_spec, target.parsed_spec)
            return {"from": base.version, "to": target.version, "changes": [str(c) for c in changes]}

        return await run_tool("diff_policy_versions", {"version": version, "against": against}, work)

    @mcp.tool(
        description="Propose a policy change, as a full spec or as a patch on the active policy. A patch is a list "
        "of {scope: 'global'|'strategy'|'symbol', key: strategy id or SYMBOL (null for global), field, value (null "
        "removes the scope's own setting)}. The result is validated by the policy schema and, for agents, by the "
        "envelope risk officers set; on failure the error lists each problem. A risk officer must approve it."
    )
    async def propose_policy_change(
        rationale: Annotated[str, Field(min_length=1, max_length=10_000, description="why: shown to the approver")],
        changes: Annotated[list[Change] | None, Field(description="a patch on the active policy")] = None,
        spec: Annotated[dict[str, Any] | None, Field(description="a whole policy document instead of a patch")] = None,
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            if (changes is None) == (spec is None):
                raise errors.SpecInvalidError("give either `changes` (a patch) or `spec` (a whole policy), not both")
            active = active_version()
            if changes is not None:
                if active is None:
                    raise errors.SpecInvalidError("there is no active policy to patch: propose a whole `spec`")
                try:
                    proposed = compact_spec(apply_changes(active.parsed_spec, changes))
                except InvalidChangeError as exc:
                    raise errors.SpecInvalidError("; ".join(exc.problems)) from exc
            else:
                proposed = spec
            # The envelope binds anyone who may not approve: `services.propose` checks it, as for REST and admin.
            version = services.propose(spec=proposed, by=user, rationale=rationale, trace_id=trace_id)
            diff = diff_specs(active.parsed_spec, version.parsed_spec) if active else []
            return {"version": version.version, "status": version.status, "changes": [str(c) for c in diff]}

        arguments = {"rationale": rationale, "changes": _plain(changes) if changes else None, "spec": spec}
        return await run_tool("propose_policy_change", arguments, work)

    @mcp.tool(description="Approve a proposed policy version (risk officers only; never your own proposal).")
    async def approve_policy_version(
        version: Annotated[int, Field(ge=1)], reason: Annotated[str, Field(max_length=10_000)] = ""
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            approved = services.approve(_version(version), by=user, reason=reason, trace_id=trace_id)
            return {"version": approved.version, "status": approved.status}

        return await run_tool("approve_policy_version", {"version": version, "reason": reason}, work)

    @mcp.tool(description="Activate an approved policy version: the gates switch to it (risk officers only).")
    async def activate_policy_version(version: Annotated[int, Field(ge=1)]) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            activated = services.activate(_version(version), by=user, trace_id=trace_id)
            return {"version": activated.version, "status": activated.status}

        return await run_tool("activate_policy_version", {"version": version}, work)

    @mcp.tool(
        description="Set a trading state (the kill switch): 'halted' admits only close, 'reducing' only intents "
        "that shrink a position, 'active' everything the limits allow. Agents may only make a state stricter; "
        "moving towards 'active' needs a risk officer, and releasing the global state two: the first officer's "
        "call is a request (status 'proposed'), a second officer's same call confirms it. A reason is required."
    )
    async def set_trading_state(
        state: Literal["active", "reducing", "halted"],
        reason: Annotated[str, Field(min_length=1, max_length=2000)],
        scope: Literal["global", "strategy", "symbol"] = "global",
        key: Annotated[str, Field(description="the strategy id or SYMBOL (not for global)")] = "",
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            version, changed = services.set_trading_state(
                scope=scope, key=key, state=state, by=user, reason=reason, trace_id=trace_id
            )
            answer = {"version": version.version, "changed": changed, "scope": scope, "key": key, "state": state}
            if version.status == "proposed":  # a global release waiting for a second officer
                answer["status"] = "proposed"
                answer["note"] = "release requested: a second risk officer must confirm it (the same call)"
            else:
                answer["status"] = version.status
            return answer

        arguments = {"state": state, "reason": reason, "scope": scope, "key": key}
        return await run_tool("set_trading_state", arguments, work)

    # -- gates, decisions, incidents, alerts ---------------------------------------------------------------------
    @mcp.tool(
        description="Live gates from their verified heartbeats: policy version, trading state, latches and counters "
        "(`unverified_gates`: heartbeats in Redis that are not signed, expiring and fresh; never live)."
    )
    async def get_gate_status() -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            active = active_version()
            beats = gate_heartbeats()
            return {
                "active_policy_version": active.version if active else None,
                "gates": [beat.model_dump(mode="json") for beat in beats.live],
                "unverified_gates": unverified_json(beats),
            }

        return await run_tool("get_gate_status", {}, work)

    @mcp.tool(
        description="Gate decisions, newest first, with optional filters (times are ISO 8601 with a zone). Pass "
        "`cursor` from the previous answer's next_cursor for the next page."
    )
    async def query_decisions(
        since: str | None = None,
        until: str | None = None,
        strategy_id: str | None = None,
        symbol: str | None = None,
        decision: Literal["APPROVED", "REJECTED", "RETRY_SAFE"] | None = None,
        reason_code: str | None = None,
        policy_version: int | None = None,
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
            "limit": limit,
            "cursor": cursor,
        }

        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            params = {k: str(v) for k, v in arguments.items() if v is not None}
            try:
                query = audit_selectors.decision_query(params)
            except audit_selectors.QueryError as exc:
                raise errors.SpecInvalidError(f"{exc.field}: {exc.message}") from exc
            page = decision_log().find_decisions(query)
            return _plain({"decisions": [decision_summary(r) for r in page.records], "next_cursor": page.next_cursor})

        return await run_tool("query_decisions", arguments, work)

    @mcp.tool(
        description="Follow a decision to the policy version it was judged under, the Strategist thought that "
        "proposed that version (if any), and who approved and activated it. Give the decision's `trace_id` (every "
        "decision of that trace) or its `decision_id`."
    )
    async def get_decision_trace(
        trace_id: Annotated[str | None, Field(pattern=r"^[0-9a-f]{32}$")] = None,
        decision_id: Annotated[str | None, Field(max_length=64)] = None,
    ) -> dict[str, Any]:
        def work(user: Any, _: str) -> Any:
            _view(user)
            if (trace_id is None) == (decision_id is None):
                raise errors.SpecInvalidError("give either `trace_id` or `decision_id`")
            wanted = trace_id
            if decision_id is not None:
                record = decision_log().get_decision(decision_id)
                if record is None:
                    raise errors.NotFoundError(f"no decision {decision_id} in the audit store")
                wanted = record.trace_id
            found = audit_selectors.trace_dict(wanted or "")
            if found is None:
                raise errors.NotFoundError(f"no decision with trace id {wanted} in the audit store")
            if decision_id is not None:
                found["decisions"] = [d for d in found["decisions"] if d["decision_id"] == decision_id]
            return _plain(found)

        return await run_tool("get_decision_trace", {"trace_id": trace_id, "decision_id": decision_id}, work)

    @mcp.tool(
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
            _view(user)
            if not text and not incident_id:
                raise errors.SpecInvalidError("give `text` or `incident_id`")
            try:
                found = incidents.similar(incident_id=incident_id, text=text, kind=kind, limit=limit)
            except incidents.UnknownIncidentError as exc:
                raise errors.NotFoundError(str(exc)) from exc
            return _plain({"incidents": [{**incidents.as_dict(i), "similarity": round(s, 4)} for i, s in found]})

        arguments = {"text": text, "incident_id": incident_id, "kind": kind, "limit": limit}
        return await run_tool("search_similar_incidents", arguments, work)

    @mcp.tool(description="Recent alerts with each channel's delivery outcome, repeats and acknowledgement.")
    async def get_recent_alerts(
        severity: Literal["info", "warning", "critical"] | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            views = alert_selectors.recent(limit, severity)
            return _plain(
                {
                    "alerts": [
                        {
                            **{
                                k: getattr(v.alert, k)
                                for k in ("alert_id", "ts", "severity", "source", "title", "detail", "trace_id")
                            },
                            "channels": v.channels,
                            "repeats": v.repeats,
                            "acknowledged_by": v.acknowledged_by,
                        }
                        for v in views
                    ]
                }
            )

        return await run_tool("get_recent_alerts", {"severity": severity, "limit": limit}, work)

    # -- the trade engine's trading configuration ------------------------------------------------------------------
    @mcp.tool(
        description="The trade engine's trading configuration (leverage, sizing, default stops …) for the global "
        "scope, a symbol, or a symbol and side (LONG/SHORT), resolved as the engine applies it."
    )
    async def get_trading_config(
        symbol: str | None = None, side: Literal["LONG", "SHORT"] | None = None
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            return config_services.current(user, symbol, side).model_dump(mode="json")

        return await run_tool("get_trading_config", {"symbol": symbol, "side": side}, work)

    @mcp.tool(
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
            change = config_services.propose(
                by=user, parameters=parameters, rationale=rationale, symbol=symbol, side=side, trace_id=trace_id
            )
            return _plain(config_services.as_dict(change))

        arguments = {"parameters": parameters, "rationale": rationale, "symbol": symbol, "side": side}
        return await run_tool("propose_trading_config_change", arguments, work)

    @mcp.tool(description="Trading-configuration changes, newest first, by status (docs/tradeconfig.md).")
    async def list_trading_config_changes(
        status: Literal[
            "proposed", "rejected", "approved", "pushing", "applied", "failed", "unknown", "superseded", "stale"
        ]
        | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> dict[str, Any]:
        def work(user: Any, trace_id: str) -> Any:
            _view(user)
            query = ConfigChange.objects.select_related("proposed_by", "decided_by")
            if status:
                query = query.filter(status=ChangeStatus(status))
            return _plain({"changes": [config_services.as_dict(c) for c in query[:limit]]})

        return await run_tool("list_trading_config_changes", {"status": status, "limit": limit}, work)

    @mcp.tool(
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
            change = config_services.approve(
                config_services.get(change_id), by=user, reason=reason, expected_live=expected_live
            )
            return _plain(config_services.as_dict(change))

        arguments = {"change_id": change_id, "reason": reason, "expected_live": expected_live}
        return await run_tool("approve_trading_config_change", arguments, work)

    return mcp
