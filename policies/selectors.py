"""Read-side queries for policies and gates."""

import logging

from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.contracts.latch import LatchRecord
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


def gate_heartbeats() -> list[GateHeartbeat]:
    """The latest heartbeat of every live gate (gates keep `gate:heartbeat:<id>` in Redis with a short TTL)."""
    try:
        return read_gate_heartbeats()
    except Exception as exc:
        log.warning("gate heartbeats unavailable: %r", exc)
        return []


def risk_latches(active_only: bool = True) -> list[LatchRecord]:
    """Latches held in Redis (drawdown, daily loss), newest trip first; raises when Redis is unreachable."""
    records = read_risk_latches().values()
    return sorted((r for r in records if r.active or not active_only), key=lambda r: r.tripped_at, reverse=True)
