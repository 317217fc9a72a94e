"""What the gate alerts on, as a pure step over its own state (docs/alerting.md, "What raises alerts"):

| key | severity | when |
|---|---|---|
| `policy_unusable` | critical | no usable policy (none, or unconfirmed past `CIO_POLICY_MAX_AGE_S`): RETRY_SAFE |
| `redis_lost` | critical | the last policy read could not reach Redis |
| `policy_refused` | critical | a document in `policy:active` was refused (unsigned, tampered, unreadable) |
| `policy_rollback` | critical | `policy:active` held a signed version below the gate's floor (put back) |
| `permission_violations` | critical | NATS refused this gate an operation (its credentials and its work disagree) |
| `latch_refused` | critical | a `risk:latches` record refused or overruled (an unsigned release, unreadable): held |
| `latch_unverified` | warning | a latch trip in Redis not signed by a gate key (held all the same) |
| `policy_anomaly` | warning | Redis did not hold this gate's version and checksum |
| `decision_timeouts` | warning | more than `threshold` budget timeouts and sheds within a minute |
| `audit_failing` | warning | audit publishes failing, or more than `audit_pending_limit` events waiting |

The service publishes what this returns (through `cio_kernel.alerting.AlertPublisher`, at most one per key a
minute) and adds `nats_lost` itself when NATS comes back after a disconnect."""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.heartbeat import GateCounters


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    severity: Severity
    title: str
    detail: dict[str, Any]


@dataclass
class AlertWatch:
    timeouts_per_minute: int = 50
    audit_pending_limit: int = 10_000
    _previous: GateCounters | None = None
    _timeouts: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, counters: GateCounters, redis_ok: bool, policy_usable: bool, now: float) -> list[Finding]:
        before = self._previous or GateCounters()  # a gate starts from zero: growth before the first look counts
        self._previous = counters.model_copy()
        found = []
        if not policy_usable:
            found.append(
                Finding(
                    "policy_unusable",
                    Severity.CRITICAL,
                    "gate cannot decide: no usable policy (answering RETRY_SAFE)",
                    {},
                )
            )
        if not redis_ok:
            found.append(Finding("redis_lost", Severity.CRITICAL, "gate lost Redis (policy:active unreadable)", {}))
        for name, key, severity, title in (
            ("policy_refused", "policy_refused", Severity.CRITICAL, "gate refused the policy document in Redis"),
            (
                "policy_rollbacks",
                "policy_rollback",
                Severity.CRITICAL,
                "gate refused an older policy put back in Redis (below its version floor)",
            ),
            (
                "permission_violations",
                "permission_violations",
                Severity.CRITICAL,
                "NATS refused this gate operations its credentials do not allow",
            ),
            (
                "latches_refused",
                "latch_refused",
                Severity.CRITICAL,
                "gate refused a risk latch record in Redis (the latch holds)",
            ),
            (
                "latches_unverified",
                "latch_unverified",
                Severity.WARNING,
                "a risk latch trip in Redis is not signed by a gate key (held)",
            ),
            (
                "policy_anomalies",
                "policy_anomaly",
                Severity.WARNING,
                "Redis does not hold the gate's policy version and checksum",
            ),
            ("audit_failures", "audit_failing", Severity.WARNING, "gate audit publishes are failing"),
        ):
            grew = getattr(counters, name) - getattr(before, name)
            if grew > 0:
                found.append(Finding(key, severity, title, {name: getattr(counters, name), "new": grew}))
        if counters.audit_pending > self.audit_pending_limit:
            found.append(
                Finding(
                    "audit_failing",
                    Severity.WARNING,
                    "gate audit backlog is growing",
                    {"audit_pending": counters.audit_pending},
                )
            )
        late = counters.decision_timeouts + counters.shed
        self._timeouts.append((now, late))
        while self._timeouts and self._timeouts[0][0] < now - 60:
            self._timeouts.popleft()
        in_a_minute = late - self._timeouts[0][1]
        if in_a_minute > self.timeouts_per_minute:
            found.append(
                Finding(
                    "decision_timeouts",
                    Severity.WARNING,
                    "gate is missing its decision budget (timeouts and sheds)",
                    {"in_the_last_minute": in_a_minute, "threshold": self.timeouts_per_minute},
                )
            )
        return found
