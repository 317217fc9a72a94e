"""Every Redis key the parts share (SPEC §6 fixes the first; the others are ours, snake_case with `:`)."""

ACTIVE_POLICY_KEY = "policy:active"  # the signed active policy document
LATCHES_KEY = "risk:latches"  # drawdown and daily-loss latches, one hash field per latch
GATE_HEARTBEAT_KEY_PREFIX = "gate:heartbeat:"  # + gate id: each gate's latest heartbeat, short TTL
