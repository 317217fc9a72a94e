"""Read-side queries for policies and gates: what REST, MCP and admin read, each query written once."""

import logging
from typing import Any

from django.db.models import QuerySet

from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.heartbeats import GateBeats
from core.errors import NotFoundError
from policies.live import read_gate_heartbeats, read_risk_latches
from policies.models import PolicyEvent, PolicyVersion, ProposerKind, Status

log = logging.getLogger(__name__)


def active_version(for_update: bool = False) -> PolicyVersion | None:
    query = PolicyVersion.objects.filter(status=Status.ACTIVE)
    if for_update:
        query = query.select_for_update()
    return query.order_by("-version").first()


def release_requests() -> QuerySet[PolicyVersion]:
    """Global releases one officer asked for, waiting for a second (`policies.services._global_release`)."""
    return PolicyVersion.objects.filter(
        status=Status.PROPOSED, events__kind=PolicyEvent.Kind.PROPOSED, events__detail__has_key="release_request"
    ).select_related("proposed_by")


def policy_version(number: int) -> PolicyVersion:
    """One version with the people behind it; `NOT_FOUND` when there is none."""
    found = PolicyVersion.objects.select_related("proposed_by", "decided_by", "activated_by").filter(version=number)
    version = found.first()
    if version is None:
        raise NotFoundError(f"no policy version {number}")
    return version


def policy_versions(status: str | None, limit: int) -> QuerySet[PolicyVersion]:
    """Versions newest first (the model's order), optionally only those in `status`, at most `limit`."""
    query = PolicyVersion.objects.select_related("proposed_by", "decided_by", "activated_by", "based_on")
    if status:
        query = query.filter(status=status)
    return query[:limit]


def awaiting_review(policy: PolicyVersion) -> bool:
    """Whether no one has reviewed a proposal yet: it is still `proposed` (no approval or rejection, by a person
    or a rule; approval is one step, so there is no four-eyes approval half given) and no event on it was made by
    anyone but its proposer (an officer's act on it of any kind counts as a review). Its proposer's own amendments
    do not. What lets the Strategist amend its open proposal in place (`services.amend`)."""
    if policy.status != Status.PROPOSED:
        return False
    # `exclude` keeps events without an actor (a rule's or the system's), so they count as a review too.
    return not PolicyEvent.objects.filter(policy=policy).exclude(actor_id=policy.proposed_by_id).exists()


def baseline_version(active: PolicyVersion) -> PolicyVersion:
    """The officers' baseline: the last version made active at or before `active` that the Strategist did not
    propose (a person's, or an agent's a person approved). What the envelope is seeded from, what agents and the
    Strategist may loosen back to and never past, and what the rule brain scales from."""
    human = (
        PolicyVersion.objects.filter(activated_at__isnull=False, version__lte=active.version)
        .exclude(proposer_kind=ProposerKind.STRATEGIST)
        .order_by("-version")
        .first()
    )
    return human or active


def gate_heartbeats() -> GateBeats:
    """The latest heartbeat of every live gate, verified (signed by a gate, expiring, fresh), and the entries of
    `gate:heartbeat:*` that are not (shown as unverified, never counted live); nothing when Redis is away."""
    try:
        return read_gate_heartbeats()
    except Exception as exc:
        log.warning("gate heartbeats unavailable: %r", exc)
        return GateBeats()


def gate_status() -> dict[str, Any]:
    """The gates as REST and MCP show them: the active version, the live gates from their verified heartbeats, and
    the heartbeats that did not verify (whose key, why, and what it claims)."""
    active = active_version()
    beats = gate_heartbeats()
    return {
        "active_policy_version": active.version if active else None,
        "gates": [beat.model_dump(mode="json") for beat in beats.live],
        "unverified_gates": [
            {"gate_id": u.gate_id, "problem": u.problem, "claims": u.beat.model_dump(mode="json") if u.beat else None}
            for u in beats.unverified
        ],
    }


def risk_latches(active_only: bool = True) -> list[LatchRecord]:
    """Latches held in Redis (drawdown, daily loss), newest trip first; raises when Redis is unreachable."""
    return risk_latch_state(active_only)[0]


def risk_latch_state(active_only: bool = True) -> tuple[list[LatchRecord], dict[str, str]]:
    """The latches as the gates take them (released only by a release this control plane signed), newest trip
    first, and the records not taken as they read, with why; raises when Redis is unreachable."""
    read = read_risk_latches()
    records = read.records.values()
    chosen = sorted((r for r in records if r.active or not active_only), key=lambda r: r.tripped_at, reverse=True)
    return chosen, read.problems
