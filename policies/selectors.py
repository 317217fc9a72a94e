"""Read-side queries for policies and gates."""

import logging

from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.heartbeats import GateBeats
from policies.live import read_gate_heartbeats, read_risk_latches
from policies.models import PolicyVersion, ProposerKind, Status

log = logging.getLogger(__name__)


def active_version(for_update: bool = False) -> PolicyVersion | None:
    query = PolicyVersion.objects.filter(status=Status.ACTIVE)
    if for_update:
        query = query.select_for_update()
    return query.order_by("-version").first()


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


def unverified_json(beats: GateBeats) -> list[dict[str, object]]:
    """What the API and MCP show of heartbeats that did not verify: whose key, why, and what it claims."""
    return [
        {"gate_id": u.gate_id, "problem": u.problem, "claims": u.beat.model_dump(mode="json") if u.beat else None}
        for u in beats.unverified
    ]


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
