"""Decision → policy version → events → thought, for REST, admin and MCP alike."""

from dataclasses import asdict, dataclass
from typing import Any

from audit.presentation import decision_detail
from audit.records import DecisionRecord, Thought
from audit.store import get_store
from audit.store.decisions import MAX_PAGE, DecisionQuery
from policies.models import PolicyEvent, PolicyVersion


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
