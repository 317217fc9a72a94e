"""MCP tools for policies and gates: the active policy and its history, diffs, proposals (a whole spec or a patch),
approval and activation, the kill switch, and the gates' status. Reads go through `policies.selectors`, changes
through `policies.services`, as for REST and admin."""

from typing import Annotated, Any, Literal

from pydantic import Field

from cio_site.mcp.calls import run_tool
from cio_site.mcp.room import Room, plain, require_view
from core import errors
from core.numbers import whole_number
from policies import impact, services
from policies.api.serializers import PolicyVersionSerializer, PolicyVersionSummarySerializer
from policies.diff import described, diff_specs
from policies.models import compact_spec
from policies.selectors import active_version, gate_status, policy_version, policy_versions
from strategist.changes import Change, InvalidChangeError, apply_changes

room = Room()


@room.tool(description="The active risk policy: version, checksum, who activated it and when, and the full spec.")
async def get_active_policy() -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        active = active_version()
        if active is None:
            raise errors.NotFoundError("no policy is active: every gate answers RETRY_SAFE")
        return plain(PolicyVersionSerializer(active).data)

    return await run_tool("get_active_policy", {}, work)


@room.tool(description="Policy versions, newest first, without their specs (use get_policy_version for one).")
async def list_policy_versions(
    status: Annotated[
        Literal["draft", "proposed", "approved", "active", "superseded", "rejected"] | None,
        Field(description="only versions in this status"),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=200, description="how many, newest first")] = 20,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return {"versions": plain(PolicyVersionSummarySerializer(policy_versions(status, limit), many=True).data)}

    return await run_tool("list_policy_versions", {"status": status, "limit": limit}, work)


@room.tool(description="One policy version with its full spec, rationale and who proposed, approved, activated it.")
async def get_policy_version(version: Annotated[int, Field(ge=1)]) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return plain(PolicyVersionSerializer(policy_version(version)).data)

    return await run_tool("get_policy_version", {"version": version}, work)


@room.tool(
    description="What changes between two policy versions, one line per changed field, each marked (tightens), "
    "(loosens) or (neutral) by the exact tightening check behind auto-approval; `counts` and `summary` total them."
)
async def diff_policy_versions(
    version: Annotated[int, Field(ge=1, description="the version to compare")],
    against: Annotated[str, Field(description="'active' (the default) or another version number, as text")] = "active",
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        target = policy_version(version)
        if against == "active":
            base = active_version()
            if base is None:
                raise errors.NotFoundError("no policy is active")
        elif (number := whole_number(against)) is not None:
            base = policy_version(number)
        else:
            raise errors.SpecInvalidError("against: 'active' or a version number")
        changes = diff_specs(base.parsed_spec, target.parsed_spec)
        return {"from": base.version, "to": target.version, "changes": [str(c) for c in changes], **described(changes)}

    return await run_tool("diff_policy_versions", {"version": version, "against": against}, work)


@room.tool(
    description="Propose a policy change, as a full spec or as a patch on the active policy. A patch is a list "
    "of {scope: 'global'|'strategy'|'symbol', key: strategy id or SYMBOL (null for global), field, value (null "
    "removes the scope's own setting)}. The result is validated by the policy schema and, for agents, by the "
    "envelope risk officers set; on failure the error lists each problem. A risk officer must approve it. "
    "Proposing again what you already proposed (the same resulting policy, still awaiting review on the same active "
    "version) answers with that version (`created` false); an `idempotency_key` names one proposal: the same key "
    "answers with the same version, and with another policy fails with IDEMPOTENCY_KEY_REUSED."
)
async def propose_policy_change(
    rationale: Annotated[str, Field(min_length=1, max_length=10_000, description="why: shown to the approver")],
    changes: Annotated[list[Change] | None, Field(description="a patch on the active policy")] = None,
    spec: Annotated[dict[str, Any] | None, Field(description="a whole policy document instead of a patch")] = None,
    idempotency_key: Annotated[
        str | None,
        Field(
            pattern=r"^[\x21-\x7e]{1,128}$",
            description="optional: 1-128 visible ASCII characters naming this proposal, to send it safely again",
        ),
    ] = None,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        if (changes is None) == (spec is None):
            raise errors.SpecInvalidError("give either `changes` (a patch) or `spec` (a whole policy), not both")
        active = active_version()
        proposed = _patched_active(changes) if changes is not None else spec
        # The envelope binds anyone who may not approve: `services.propose` checks it, as for REST and admin.
        version, created = services.submit(
            spec=proposed, by=user, rationale=rationale, idempotency_key=idempotency_key or "", trace_id=trace_id
        )
        diff = diff_specs(active.parsed_spec, version.parsed_spec) if active else []
        return {
            "version": version.version,
            "status": version.status,
            "created": created,
            "changes": [str(c) for c in diff],
            **described(diff),
        }

    arguments = {
        "rationale": rationale,
        "changes": plain(changes) if changes else None,
        "spec": spec,
        "idempotency_key": idempotency_key,
    }
    return await run_tool("propose_policy_change", arguments, work)


@room.tool(
    description="Check a policy before proposing or approving it: replays the audited intents of a window (default "
    "the last 24 h) through the gate's own decision function under the candidate and under the active policy, "
    "and reports the approvals that would become rejections and the reverse, by strategy, symbol and reason "
    "code, with sample decision ids, and how many intents were replayed with approximations (the portfolio "
    "snapshot's contents are not in the audit trail). The candidate is a saved `version`, a `changes` patch on "
    "the active policy (as propose_policy_change takes it) or a whole unsaved `spec`. A small window answers at "
    "once (`state: done`); a large one answers `state: queued` with an `id` to poll with get_policy_impact."
)
async def preview_policy_impact(
    version: Annotated[int | None, Field(ge=1, description="a saved policy version")] = None,
    changes: Annotated[list[Change] | None, Field(description="a patch on the active policy")] = None,
    spec: Annotated[dict[str, Any] | None, Field(description="a whole unsaved policy document")] = None,
    window_hours: Annotated[float | None, Field(gt=0, le=876_600, description="the last N hours")] = None,
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        if sum(given is not None for given in (version, changes, spec)) != 1:
            raise errors.SpecInvalidError("give one of `version`, `changes` (a patch) or `spec` (a whole policy)")
        if version is not None:
            preview = impact.start(by=user, candidate=policy_version(version), window_hours=window_hours)
        else:
            candidate = spec if spec is not None else _patched_active(changes or [])
            preview = impact.start(by=user, spec=candidate, window_hours=window_hours)
        return impact.summary(preview)

    arguments = {"version": version, "changes": plain(changes) if changes else None, "spec": spec}
    return await run_tool("preview_policy_impact", {**arguments, "window_hours": window_hours}, work)


@room.tool(description="An impact preview started by preview_policy_impact: its progress, then the difference.")
async def get_policy_impact(preview_id: Annotated[str, Field(min_length=1, max_length=64)]) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return impact.summary(impact.preview_of(preview_id))

    return await run_tool("get_policy_impact", {"preview_id": preview_id}, work)


def _patched_active(changes: list[Change]) -> dict[str, Any]:
    active = active_version()
    if active is None:
        raise errors.SpecInvalidError("there is no active policy to patch: give a whole `spec`")
    try:
        return compact_spec(apply_changes(active.parsed_spec, changes))
    except InvalidChangeError as exc:
        raise errors.SpecInvalidError("; ".join(exc.problems)) from exc


@room.tool(
    description="Approve a proposed policy version (risk officers only; never your own proposal). Give the "
    "`checksum` you reviewed: the Strategist amends its proposal until someone reviews it, and a changed version is "
    "then refused (INVALID_TRANSITION)."
)
async def approve_policy_version(
    version: Annotated[int, Field(ge=1)],
    reason: Annotated[str, Field(max_length=10_000)] = "",
    checksum: Annotated[str, Field(max_length=80, description="the version's checksum as you reviewed it")] = "",
) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        approved = services.approve(
            policy_version(version), by=user, reason=reason, trace_id=trace_id, checksum=checksum
        )
        return {"version": approved.version, "status": approved.status}

    arguments = {"version": version, "reason": reason, "checksum": checksum}
    return await run_tool("approve_policy_version", arguments, work)


@room.tool(description="Activate an approved policy version: the gates switch to it (risk officers only).")
async def activate_policy_version(version: Annotated[int, Field(ge=1)]) -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        activated = services.activate(policy_version(version), by=user, trace_id=trace_id)
        return {"version": activated.version, "status": activated.status}

    return await run_tool("activate_policy_version", {"version": version}, work)


@room.tool(
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


@room.tool(
    description="Live gates from their verified heartbeats: policy version, trading state, latches and counters "
    "(`unverified_gates`: heartbeats in Redis that are not signed, expiring and fresh; never live)."
)
async def get_gate_status() -> dict[str, Any]:
    def work(user: Any, trace_id: str) -> Any:
        require_view(user)
        return gate_status()

    return await run_tool("get_gate_status", {}, work)
