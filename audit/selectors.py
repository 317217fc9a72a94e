"""Reading the audit trail for people and agents: filters from a query string, one decision with everything
that explains it, and a trace followed from the decision to the policy version, its approvals and the thought
that proposed it. The store is whichever backend is configured; policy history lives in the Django database."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from audit.presentation import decision_detail
from audit.records import DecisionRecord, Thought
from audit.store import get_store
from audit.store.decisions import MAX_PAGE, DecisionQuery, InvalidCursorError, decode_cursor
from cio_kernel.contracts.identity import IdentityError, strategy_key
from policies.models import PolicyEvent, PolicyVersion

FILTERS = ("symbol", "decision", "reason_code", "gate_id", "trace_id", "decision_id", "signal_id")
DECISIONS = ("APPROVED", "REJECTED", "RETRY_SAFE")


class QueryError(ValueError):
    """A filter that cannot be applied; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def decision_query(params: Mapping[str, str]) -> DecisionQuery:
    """`?since=&until=&strategy_id=&symbol=&decision=&reason_code=&policy_version=&gate_id=&trace_id=&decision_id=
    &signal_id=&cursor=&limit=` → a query; a clear error for anything that cannot be applied. `strategy_id` (or
    `strategy_key`) finds the strategy under every spelling it used: the store filters by its key."""
    values: dict[str, Any] = {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}
    strategy = (params.get("strategy_id") or params.get("strategy_key") or "").strip()
    if strategy:
        try:
            values["strategy_key"] = strategy_key(strategy)
        except IdentityError as exc:
            raise QueryError("strategy_id", str(exc)) from exc
    if "decision" in values:
        values["decision"] = values["decision"].upper()
        if values["decision"] not in DECISIONS:
            raise QueryError("decision", f"must be one of {', '.join(DECISIONS)}")
    for name in ("since", "until"):
        if params.get(name):
            values[name] = _time(name, params[name])
    if params.get("policy_version"):
        if not params["policy_version"].isdigit():
            raise QueryError("policy_version", "must be a whole number")
        values["policy_version"] = int(params["policy_version"])
    limit = params.get("limit") or "50"
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise QueryError("limit", f"must be between 1 and {MAX_PAGE}")
    if params.get("cursor"):
        try:
            decode_cursor(params["cursor"])
        except InvalidCursorError as exc:
            raise QueryError("cursor", str(exc)) from exc
        values["cursor"] = params["cursor"]
    return DecisionQuery(limit=int(limit), **values)


def search(text: str, base: DecisionQuery) -> list[DecisionRecord]:
    """The admin's one search box: the decisions whose trace id, decision id or signal id is `text`."""
    found: dict[str, DecisionRecord] = {}
    for name in ("trace_id", "decision_id", "signal_id"):
        query = replace(base, cursor=None, limit=MAX_PAGE, **{name: text.strip()})
        for record in get_store().find_decisions(query).records:
            found.setdefault(record.decision_id, record)
    return sorted(found.values(), key=lambda r: (r.ts, r.decision_id), reverse=True)


def _time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise QueryError(name, "must be an ISO 8601 time, e.g. 2026-11-02T09:30:00Z") from exc
    if parsed.tzinfo is None:
        raise QueryError(name, "must carry a time zone (Z or +00:00)")
    return parsed


@dataclass(frozen=True)
class PolicyContext:
    """What stood behind the policy version a decision was made under."""

    version: PolicyVersion | None
    checksum_matches: bool | None  # the decision's checksum against the version's (None: no version known)
    thought: Thought | None
    events: list[PolicyEvent]


def policy_context(record: DecisionRecord) -> PolicyContext:
    if record.policy_version is None:
        return PolicyContext(None, None, None, [])
    version = (
        PolicyVersion.objects.select_related("proposed_by", "decided_by", "activated_by")
        .filter(version=record.policy_version)
        .first()
    )
    if version is None:
        return PolicyContext(None, None, None, [])
    thought = get_store().get_thought(version.thought_id) if version.thought_id else None
    events = list(PolicyEvent.objects.select_related("actor").filter(policy=version).order_by("at", "id"))
    matches = None if not record.policy_checksum else record.policy_checksum == version.checksum
    return PolicyContext(version, matches, thought, events)


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def policy_context_dict(context: PolicyContext) -> dict[str, Any] | None:
    version = context.version
    if version is None:
        return None
    return {
        "version": version.version,
        "status": version.status,
        "checksum": version.checksum,
        "checksum_matches_decision": context.checksum_matches,
        "proposer_kind": version.proposer_kind,
        "rationale": version.rationale,
        "proposed_by": _user(version.proposed_by),
        "proposed_at": version.proposed_at,
        "approved_by": _user(version.decided_by),
        "approved_at": version.decided_at,
        "approval_reason": version.decision_reason,
        "activated_by": _user(version.activated_by),
        "activated_at": version.activated_at,
        "thought_id": version.thought_id or None,
        "thought": thought_dict(context.thought),
        "events": [
            {"kind": e.kind, "actor": _user(e.actor), "at": e.at, "reason": e.reason, "trace_id": e.trace_id}
            for e in context.events
        ],
    }


def thought_dict(thought: Thought | None) -> dict[str, Any] | None:
    return asdict(thought) if thought is not None else None


def trace(trace_id: str) -> list[tuple[DecisionRecord, PolicyContext]]:
    """Every decision carrying this trace id (a retried intent may have several), oldest first, each with the
    chain behind it."""
    page = get_store().find_decisions(DecisionQuery(trace_id=trace_id, limit=MAX_PAGE))
    return [(record, policy_context(record)) for record in reversed(page.records)]


def trace_dict(trace_id: str) -> dict[str, Any] | None:
    """A trace as REST and MCP answer it: every decision with its detail and the policy context behind it."""
    found = trace(trace_id)
    if not found:
        return None
    return {
        "trace_id": trace_id,
        "decisions": [{**decision_detail(record), "policy": policy_context_dict(context)} for record, context in found],
    }
