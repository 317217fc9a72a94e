"""The one place that says which proposals the envelope binds and what it refuses: `services.propose` calls it
for every proposal, whatever the surface (REST, MCP, admin, the Strategist's cycle), so the same role meets the
same rules everywhere. Whoever may not approve policies (agents, the Strategist) proposes inside the envelope;
risk officers are not bound by it (another officer approves what they propose)."""

from typing import Any

from cio_kernel.policy.envelope import (
    AutoApprovalEnvelope,
    Breach,
    StrategistEnvelope,
    auto_approval_refusals,
    envelope_breaches,
)
from cio_kernel.policy.spec import PolicySpec
from policies import roles
from policies.models import PolicyVersion
from policies.selectors import baseline_version
from policies.strategist.models import StrategistSettings


def bound_by_envelope(user: Any) -> bool:
    return not user.has_perm(roles.perm(roles.APPROVE))


def breaches(
    proposal: PolicySpec, active: PolicyVersion | None, envelope: StrategistEnvelope | None = None
) -> list[Breach]:
    """Every way `proposal` leaves the envelope, measured against the active version (releases) and the
    officers' baseline behind it (loosenings past what they set). `envelope` defaults to the current one."""
    envelope = envelope if envelope is not None else StrategistSettings.current().envelope()
    if active is None:
        return envelope_breaches(proposal, envelope)
    baseline = baseline_version(active)
    return envelope_breaches(proposal, envelope, active.parsed_spec, baseline.parsed_spec)


def proposal_breaches(user: Any, proposal: PolicySpec, active: PolicyVersion | None) -> list[Breach]:
    """What `user` may not propose here: nothing for a risk officer, the envelope's breaches for anyone else."""
    return breaches(proposal, active) if bound_by_envelope(user) else []


def describe(found: list[Breach]) -> str:
    return "; ".join(f"{b.scope}.{b.field}: {b.message}" for b in found)


def auto_approval_problems(active: PolicyVersion, proposal: PolicySpec, auto: AutoApprovalEnvelope) -> list[str]:
    """Why a proposal that only tightens may still not be approved unseen (empty: it may)."""
    return auto_approval_refusals(active.parsed_spec, proposal, baseline_version(active).parsed_spec, auto)
