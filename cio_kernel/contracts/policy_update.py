"""`cio.strategist.update`: the control plane's notice that a new policy is active in Redis."""

from pydantic import BaseModel

from cio_kernel.policy.document import PolicySeal


class PolicyUpdate(BaseModel):
    version: int
    checksum: str
    # The activated document's signed fields: a gate that verifies them knows `version` was activated whatever
    # Redis holds, and raises its version floor to it (docs/policy.md, "No rollback"). Optional: a bare notice
    # is still a hint to re-read Redis.
    seal: PolicySeal | None = None
