"""Every Redis key the parts share (docs/contracts.md; `policy:active` is pinned for every client,
the others follow it: snake_case with `:`)."""

ACTIVE_POLICY_KEY = "policy:active"  # the signed active policy document
LATCHES_KEY = "risk:latches"  # drawdown and daily-loss latches, one hash field per latch
GATE_HEARTBEAT_KEY_PREFIX = "gate:heartbeat:"  # + gate id: each gate's latest heartbeat, short TTL
