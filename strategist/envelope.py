"""What the envelope refuses. `services.propose` checks every proposal, whatever the surface (REST, MCP, admin, the
Strategist's cycle), through `policies.extensions.proposal_breaches`, which this app installs when it starts (its
settings hold the envelope), so the same role meets the same rules everywhere. Whoever may not approve policies
(agents, the Strategist) proposes inside the envelope; risk officers are not bound by it (another officer approves
what they propose)."""

from typing import Any

from cio_kernel.policy.envelope import (
    AutoApprovalEnvelope,
    Breach,
    StrategistEnvelope,
    auto_approval_refusals,
    envelope_breaches,
)
from cio_kernel.policy.spec import PolicySpec
from policies.models import PolicyVersion
from policies.selectors import baseline_version
from strategist.models import StrategistSettings


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
    """The check this app installs into `policies.extensions` (called only for users the envelope binds)."""
    return breaches(proposal, active)


def auto_approval_problems(active: PolicyVersion, proposal: PolicySpec, auto: AutoApprovalEnvelope) -> list[str]:
    """Why a proposal that only tightens may still not be approved unseen (empty: it may)."""
    return auto_approval_refusals(active.parsed_spec, proposal, baseline_version(active).parsed_spec, auto)
