"""What counts as healthy, as a pure function of what the probes saw (docs/canary.md)."""

from dataclasses import dataclass

from cio_kernel.contracts.heartbeat import GateHeartbeat


@dataclass(frozen=True, slots=True)
class Expectations:
    max_heartbeat_age_s: float = 5.0
    min_policy_version: int | None = None
    trading_state: str | None = None  # e.g. "active": anything else is a problem
    check_web: bool = True


@dataclass(frozen=True, slots=True)
class Seen:
    heartbeat: GateHeartbeat | None
    ping_error: str | None  # why no gate answered (no responders, a timeout, NATS unreachable)
    web_status: int | None  # the health endpoint's HTTP status (None: unreachable)
    web_error: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    key: str  # stable: the alarm's deduplication key
    message: str


def evaluate(seen: Seen, expect: Expectations, now: float) -> list[Problem]:
    problems = []
    beat = seen.heartbeat
    if beat is None:
        problems.append(Problem("gate_unreachable", f"no gate answered cio.gate.ping: {seen.ping_error}"))
    else:
        age = now - beat.ts.timestamp()
        if age > expect.max_heartbeat_age_s:
            problems.append(
                Problem(
                    "heartbeat_stale",
                    f"{beat.gate_id}'s heartbeat is {age:.1f} s old (> {expect.max_heartbeat_age_s:g} s)",
                )
            )
        if beat.policy_version is None:
            problems.append(Problem("no_policy", f"{beat.gate_id} runs no policy (every intent RETRY_SAFE)"))
        elif expect.min_policy_version is not None and beat.policy_version < expect.min_policy_version:
            problems.append(
                Problem(
                    "policy_version",
                    f"{beat.gate_id} runs v{beat.policy_version}, expected v{expect.min_policy_version}+",
                )
            )
        if expect.trading_state is not None and beat.trading_state != expect.trading_state:
            problems.append(
                Problem("trading_state", f"{beat.gate_id} is {beat.trading_state}, expected {expect.trading_state}")
            )
    if expect.check_web and seen.web_status != 200:
        why = f"HTTP {seen.web_status}" if seen.web_status is not None else seen.web_error
        problems.append(Problem("web_unhealthy", f"the control plane's health check failed: {why}"))
    return problems


def status_line(seen: Seen, problems: list[Problem], now: float, alarmed: str = "") -> str:
    """One line for cron's mail and a log: OK with the essentials, or FAIL with every problem."""
    beat = seen.heartbeat
    if not problems and beat is not None:
        web = f" web={seen.web_status}" if seen.web_status is not None else ""
        return (
            f"CANARY OK gate={beat.gate_id} v{beat.policy_version} {beat.trading_state} "
            f"age={now - beat.ts.timestamp():.1f}s{web}"
        )
    listed = "; ".join(f"{p.key}: {p.message}" for p in problems)
    return f"CANARY FAIL {listed}{f' ({alarmed})' if alarmed else ''}"
