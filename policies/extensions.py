"""What the apps above `policies` add to it without `policies` importing them (docs/architecture.md).

- The proposal envelope: which proposals by people who may not approve (agents, the Strategist) are refused. The
  Strategist app owns the envelope's settings and installs the check when it starts; until one is installed,
  every proposal by someone who may not approve is refused (fail closed), a risk officer's never is.
- Version panels: what the version page shows beside the policy (the Strategist shows the thought behind it).
- Reconcile passes: what `manage.py reconcile_policies` also does each pass (the Strategist's watch, settling
  trade-engine configuration pushes).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cio_kernel.policy.envelope import Breach
from cio_kernel.policy.spec import PolicySpec
from core import roles
from policies.models import PolicyVersion

ProposalCheck = Callable[[Any, PolicySpec, PolicyVersion | None], list[Breach]]

_installed: list[ProposalCheck] = []


def install_proposal_envelope(check: ProposalCheck) -> None:
    """The one envelope check; installing again replaces it (an app's `ready` may run twice in tests)."""
    _installed[:] = [check]


def bound_by_envelope(user: Any) -> bool:
    return not user.has_perm(roles.perm(roles.APPROVE))


def proposal_breaches(user: Any, proposal: PolicySpec, active: PolicyVersion | None) -> list[Breach]:
    """What `user` may not propose here: nothing for a risk officer, the envelope's breaches for anyone else."""
    if not bound_by_envelope(user):
        return []
    if not _installed:
        return [Breach("envelope", "policy", "no proposal envelope is installed: only risk officers may propose")]
    return _installed[0](user, proposal, active)


def describe(found: list[Breach]) -> str:
    return "; ".join(f"{b.scope}.{b.field}: {b.message}" for b in found)


@dataclass(frozen=True)
class VersionPanel:
    """One read-only row of the version page: `render` carries the row's label (`admin.display(description=)`)."""

    applies: Callable[[PolicyVersion], bool]
    render: Callable[[PolicyVersion], str]


VERSION_PANELS: list[VersionPanel] = []


def add_version_panel(panel: VersionPanel) -> None:
    if panel not in VERSION_PANELS:
        VERSION_PANELS.append(panel)


class ReconcilePass(Protocol):
    """One more pass of `manage.py reconcile_policies` (an app above policies keeps its own state in order)."""

    name: str

    def run(self) -> list[str]:
        """One pass; a line for each thing it did."""
        ...


# Factories: each reconciling process makes its own passes (a pass may remember, e.g. when it last alerted).
RECONCILE_PASSES: list[Callable[[], ReconcilePass]] = []


def add_reconcile_pass(factory: Callable[[], ReconcilePass]) -> None:
    if factory not in RECONCILE_PASSES:
        RECONCILE_PASSES.append(factory)
