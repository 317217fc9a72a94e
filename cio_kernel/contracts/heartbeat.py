"""Heartbeats: `cio.gate.heartbeat` every second, and the fleet-compatible `cio.heartbeat`."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from cio_kernel.policy.document import PolicySeal


class GateCounters(BaseModel):
    received: int = 0
    approved: int = 0
    rejected: int = 0
    retry_safe: int = 0
    shed: int = 0  # RETRY_SAFE/OVERLOADED answers given without deciding (part of retry_safe)
    # RETRY_SAFE/STRATEGY_OVER_BUDGET: a strategy over its share of the gate, answered unparsed (part of retry_safe)
    over_budget: int = 0
    invalid: int = 0
    peer_promotions: int = 0
    audit_pending: int = 0
    audit_published: int = 0
    audit_failures: int = 0
    permission_violations: int = 0
    policy_refused: int = 0  # documents in Redis refused: unreadable, checksum mismatch, unsigned or badly signed
    policy_anomalies: int = 0  # reads where Redis did not hold this gate's version and checksum
    # reads where Redis held a genuinely signed version below this gate's floor (a replayed older policy), refused
    policy_rollbacks: int = 0
    notices_refused: int = 0  # trading-state notices on NATS not signed by the control plane
    decision_timeouts: int = 0  # RETRY_SAFE/DECISION_TIMEOUT: the budget ran out (part of retry_safe)
    alerts_raised: int = 0  # alerts this gate published on cio.alert.<severity>
    # risk:latches records refused (a release the policy key does not verify, unreadable) or overruled (an active
    # latch lost from Redis or under an earlier trip's release): the latch held each time
    latches_refused: int = 0
    latches_unverified: int = 0  # latch trips no gate key verifies (held all the same)
    # The intake stream (docs/contracts.md, "Producers that never listen"): plain publishes decided from it,
    # stored requests skipped because a gate claimed them on the fast path, RETRY_SAFE decisions put off for a
    # retry while fresh, and intents recorded unpromoted once their freshness ran out (INTAKE_EXPIRED).
    intake_decided: int = 0
    intake_claimed: int = 0
    intake_deferred: int = 0
    intake_expired: int = 0


class GateHeartbeat(BaseModel):
    gate_id: str
    ts: datetime
    policy_version: int | None
    trading_state: str | None
    # The version of the global `cio.trading.state` notice this gate holds on top of its policy (a kill switch
    # sent while Redis was away), until it adopts a policy of that version; None when it holds none.
    notice_version: int | None = None
    uptime_s: float
    counters: GateCounters
    # Active risk latches (drawdown, today's daily loss); a global one makes `trading_state` at least reducing.
    latches: list[str] = []
    # The head of this gate's audit hash chain (cio_kernel.audit_chain): the store must reach this sequence
    # number in this chain; fewer records than that means some were cut off the end.
    audit_chain: str | None = None
    audit_seq: int = 0
    # How long a bot may go without this heartbeat before it goes conservative (`cio_client`): the gate's
    # `CIO_BOT_HEARTBEAT_TIMEOUT_S`, so every bot of the fleet applies the same bound.
    heartbeat_timeout_s: float | None = None
    # The highest version this gate knows the control plane activated, with the control plane's signature: a gate
    # that starts with no floor of its own learns it from its peers' heartbeats (docs/policy.md, "No rollback").
    policy_floor: PolicySeal | None = None
    # How long the gate keeps this body in Redis (`gate:heartbeat:<gate_id>`); signed, so a reader bounds the
    # key's time to live and the beat's age by what the gate said (cio_kernel.heartbeats).
    ttl_s: float | None = None
    # The gate's Ed25519 signature over every other field (cio_kernel.heartbeat_seal, the gates' audit key): a
    # heartbeat read from Redis proves a gate made it. Both null from a gate without the key ("unverified").
    key_id: str | None = None
    signature: str | None = None


class FleetHeartbeat(GateHeartbeat):
    """What today's trade engine reads on `cio.heartbeat` (it blocks opening orders after 60 s without one)."""

    service: Literal["petrosa-cio"] = "petrosa-cio"
    status: Literal["GOVERNANCE_ACTIVE", "DEGRADED"]
    timestamp: float
    version: str
