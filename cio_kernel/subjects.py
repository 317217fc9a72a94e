"""NATS subjects every part speaks (docs/contracts.md)."""

from cio_kernel.contracts.identity import subject_token

# `cio.intent.trading` bare: the TA bot's batch publisher (and a fleet simulator) publish there.
INTENT_SUBJECTS = ("intent.trading.>", "cio.intent.trading.>", "cio.intent.trading", "cio.nurse.audit")
STRATEGIST_UPDATE = "cio.strategist.update"
PORTFOLIO_SNAPSHOT = "cio.portfolio.snapshot"
MARKET_REGIME = "cio.market.regime"
# `cio.alert.<severity>` (SPEC §7): any process raises alerts there.
ALERTS = "cio.alert.>"
GATE_HEARTBEAT = "cio.gate.heartbeat"
FLEET_HEARTBEAT = "cio.heartbeat"
GATE_PING = "cio.gate.ping"
# Gates tell each other what they promoted, so stateful limits count the whole queue group (docs/policy.md).
GATE_PROMOTION = "cio.gate.promotion"
# Latch trips (gates) and releases (control plane): a hint to re-read `risk:latches` from Redis.
RISK_LATCH = "cio.risk.latch"
# A signed, tightened trading state the control plane could not write to Redis (contracts/trading_state_notice).
TRADING_STATE = "cio.trading.state"

__all__ = ["subject_token"]
