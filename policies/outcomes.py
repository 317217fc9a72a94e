"""What a trading-state change did, in the words every surface shows an officer (admin, cockpit)."""

from policies.models import PolicyVersion, Status


def trading_state_outcome(policy: PolicyVersion, created: bool) -> str:
    """`policies.services.set_trading_state`'s result, said plainly: applied, asked (a global release waits for a
    second officer), sent by notice only (Redis away), or nothing to change."""
    if policy.status == Status.PROPOSED:
        return (
            f"release requested as v{policy.version}: releasing the global state takes a second risk officer, who "
            "confirms it with the same release"
        )
    if not created:
        return f"nothing to change: v{policy.version} already has that state"
    if policy.pending_state:
        return (
            f"Redis is unreachable: v{policy.version} reached every gate as a signed NATS notice and will be written "
            "to Redis when it returns"
        )
    return f"trading state set; v{policy.version} is active"
