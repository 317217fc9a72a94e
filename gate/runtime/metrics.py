"""The gate's Prometheus metrics (docs/metrics.md).

On the decision path the gate only bumps integers (`DecisionMetrics.observe`: one dict slot, one bucket); the
rest is read at scrape time from what the gate already keeps for its heartbeat (`GateCounters`), its policy copy,
its latches and its audit outbox, and rendered by `render`.
"""

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.exposition import Exposition
from gate.runtime.shared import Shared

# Decision latency buckets, in microseconds (rendered in seconds): the budget is 200 ms by default, and the
# benchmark's figures are around a millisecond.
LATENCY_BOUNDS_US: tuple[int, ...] = (
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
)
_BOUNDS_S = tuple(b / 1e6 for b in LATENCY_BOUNDS_US)

# Every heartbeat counter, as a metric: (name, type, help). A test keeps this table equal to `GateCounters`.
COUNTER_METRICS: dict[str, tuple[str, str, str]] = {
    "received": ("cio_gate_intents_received_total", "counter", "Intents taken (decided, shed or over budget)"),
    "approved": ("cio_gate_approved_total", "counter", "Intents approved and promoted"),
    "rejected": ("cio_gate_rejected_total", "counter", "Intents rejected"),
    "retry_safe": ("cio_gate_retry_safe_total", "counter", "Intents answered RETRY_SAFE"),
    "shed": ("cio_gate_shed_total", "counter", "Intents shed unparsed (RETRY_SAFE/OVERLOADED)"),
    "over_budget": ("cio_gate_over_budget_total", "counter", "Intents over their strategy's share (unparsed)"),
    "invalid": ("cio_gate_invalid_total", "counter", "Intents rejected VAL_ERR"),
    "peer_promotions": ("cio_gate_peer_promotions_total", "counter", "Promotions heard from peer gates"),
    "audit_pending": ("cio_gate_audit_pending", "gauge", "Audit events spooled, not yet acknowledged by JetStream"),
    "audit_published": ("cio_gate_audit_published_total", "counter", "Audit events acknowledged by JetStream"),
    "audit_failures": ("cio_gate_audit_failures_total", "counter", "Audit publishes that failed (retried)"),
    "permission_violations": (
        "cio_gate_permission_violations_total",
        "counter",
        "Operations NATS refused this gate's credentials",
    ),
    "policy_refused": ("cio_gate_policy_refused_total", "counter", "Policy documents refused (unsigned, corrupt)"),
    "policy_anomalies": ("cio_gate_policy_anomalies_total", "counter", "Reads where Redis did not hold our policy"),
    "policy_rollbacks": ("cio_gate_policy_rollbacks_total", "counter", "Signed policies below the floor, refused"),
    "notices_refused": ("cio_gate_notices_refused_total", "counter", "Unsigned trading-state notices refused"),
    "decision_timeouts": ("cio_gate_decision_timeouts_total", "counter", "RETRY_SAFE/DECISION_TIMEOUT answers"),
    "alerts_raised": ("cio_gate_alerts_raised_total", "counter", "Alerts this gate published"),
    "latches_refused": ("cio_gate_latches_refused_total", "counter", "Latch records refused or overruled"),
    "latches_unverified": ("cio_gate_latches_unverified_total", "counter", "Latch trips no gate key verifies"),
    "intake_decided": ("cio_gate_intake_decided_total", "counter", "Plain publishes decided from the intake stream"),
    "intake_claimed": ("cio_gate_intake_claimed_total", "counter", "Stored requests skipped: claimed on the fast path"),
    "intake_deferred": ("cio_gate_intake_deferred_total", "counter", "Stream decisions put off for a retry"),
    "intake_expired": ("cio_gate_intake_expired_total", "counter", "Stream intents recorded unpromoted, expired"),
}


class DecisionMetrics:
    """Decisions by outcome and first reason, and their latency (what the audit record holds). Plain integers:
    the event loop is the only writer, a scrape reads them between two of its turns."""

    __slots__ = ("buckets", "by_outcome", "sum_us")

    def __init__(self) -> None:
        self.by_outcome: dict[tuple[str, str], int] = {}
        self.buckets = [0] * (len(LATENCY_BOUNDS_US) + 1)
        self.sum_us = 0

    def observe(self, decision: str, reason: str, latency_us: int) -> None:
        key = (decision, reason)
        by_outcome = self.by_outcome
        by_outcome[key] = by_outcome.get(key, 0) + 1
        self.buckets[bisect_left(LATENCY_BOUNDS_US, latency_us)] += 1
        self.sum_us += latency_us


@dataclass(frozen=True, slots=True)
class GateView:
    """What a scrape reads besides the decisions: the rooms' shared parts and the probes' own figures."""

    shared: Shared
    decisions: DecisionMetrics
    sync_counters: Callable[[], None]  # copies the outbox's and the syncs' figures into the counters
    ready: Callable[[], tuple[bool, str]]
    loop_lag_s: Callable[[], float]
    started_monotonic: float


def render(view: GateView) -> str:
    shared = view.shared
    settings, clock = shared.settings, shared.clock
    out = Exposition()
    out.gauge("cio_gate_info", "This gate (always 1)", 1, {"gate_id": settings.gate_id, "version": settings.version})
    decisions = view.decisions
    out.labelled(
        "cio_gate_decisions_total",
        "counter",
        "Decisions answered, by outcome and first reason code (reason empty for an approval without one)",
        (({"decision": d, "reason": r}, n) for (d, r), n in sorted(decisions.by_outcome.items())),
    )
    out.histogram(
        "cio_gate_decision_latency_seconds",
        "From the intent's arrival in the gate (queue wait estimated) to its decision, as audited",
        _BOUNDS_S,
        decisions.buckets,
        decisions.sum_us / 1e6,
    )
    view.sync_counters()
    _counters(out, shared.counters)
    now = clock.monotonic()
    sync = shared.policy_sync
    policy = sync.policy
    out.gauge("cio_gate_policy_version", "Version of the policy held (0: none)", policy.version if policy else 0)
    out.gauge(
        "cio_gate_policy_usable",
        "1 when the policy held is confirmed recently enough to decide with",
        int(sync.usable(now) is not None),
    )
    if sync.confirmed_at is not None:
        out.gauge(
            "cio_gate_policy_age_seconds", "Seconds since Redis last confirmed the policy held", now - sync.confirmed_at
        )
    out.gauge("cio_gate_latches_active", "Risk latches held (active records)", len(shared.state.latches.active()))
    out.gauge("cio_gate_nats_connected", "1 when the NATS connection is up", int(shared.links.connected() is not None))
    ready, _ = view.ready()
    out.gauge("cio_gate_ready", "1 when the readiness probe passes", int(ready))
    out.gauge("cio_gate_loop_lag_seconds", "How late the event loop ran its last tick", view.loop_lag_s())
    out.gauge("cio_gate_uptime_seconds", "Seconds since the gate started", now - view.started_monotonic)
    return out.text()


def _counters(out: Exposition, counters: GateCounters) -> None:
    for field, (name, kind, help_text) in COUNTER_METRICS.items():
        out.family(name, kind, help_text)
        out.sample(name, getattr(counters, field))
