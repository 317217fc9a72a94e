"""What starts a reasoning cycle besides the schedule: pure detectors the listener feeds, one per input.

Each detector is edge-triggered (it fires when a condition starts to hold, not on every message while it
holds) and returns a `Trigger` or None. Debouncing across listeners and the one-cycle-at-a-time lock are the
caller's (`listener.py`, `lock.py`)."""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cio_kernel.contracts.alert import Alert, Severity
from policies.strategist.bands import band, is_stressed
from policies.strategist.inputs import PortfolioSummary, RegimeEntry

SCHEDULE = "schedule"
MANUAL = "manual"
REGIME_SHIFT = "regime_shift"
PORTFOLIO_BREACH = "portfolio_breach"
REJECTION_BURST = "rejection_burst"
ALERT = "alert"
TRIGGER_KINDS = (SCHEDULE, MANUAL, REGIME_SHIFT, PORTFOLIO_BREACH, REJECTION_BURST, ALERT)


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str
    detail: dict[str, Any]


def regime_shift(symbol: str, before: RegimeEntry | None, after: RegimeEntry) -> Trigger | None:
    """A symbol changed volatility band, or its producer changed its label; a first report counts only when it
    is already stressed (volatile or extreme)."""
    new_band = band(after.volatility)
    if before is None:
        if not is_stressed(new_band):
            return None
        old_band, old_label = None, None
    else:
        old_band, old_label = band(before.volatility), before.label
        label_changed = old_label is not None and after.label is not None and old_label != after.label
        if old_band == new_band and not label_changed:
            return None
    return Trigger(
        REGIME_SHIFT,
        {
            "symbol": symbol,
            "from_band": old_band,
            "to_band": new_band,
            "from_label": old_label,
            "to_label": after.label,
            "volatility": after.volatility,
        },
    )


def portfolio_breach(
    before: PortfolioSummary | None, after: PortfolioSummary, drawdown_at: float, concentration_at: float
) -> Trigger | None:
    """Drawdown reached `drawdown_at`, or one symbol's share of gross exposure reached `concentration_at`."""
    breaches: dict[str, Any] = {}
    if after.drawdown_pct >= drawdown_at and (before is None or before.drawdown_pct < drawdown_at):
        breaches["drawdown_pct"] = after.drawdown_pct
    earlier = before.concentration() if before is not None else {}
    concentrated = {
        symbol: share
        for symbol, share in after.concentration().items()
        if share >= concentration_at and earlier.get(symbol, 0.0) < concentration_at
    }
    if concentrated:
        breaches["concentration"] = concentrated
    return Trigger(PORTFOLIO_BREACH, breaches) if breaches else None


@dataclass
class BurstDetector:
    """`count` events within `window_s` seconds fire once; it re-arms when the window has emptied below half."""

    kind: str
    count: int
    window_s: float
    _times: deque[float] = field(default_factory=deque)
    _armed: bool = True

    def observe(self, now: float, detail: dict[str, Any] | None = None) -> Trigger | None:
        self._times.append(now)
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        if len(self._times) < self.count // 2 + 1:
            self._armed = True
        if self._armed and len(self._times) >= self.count:
            self._armed = False
            return Trigger(self.kind, {"events": len(self._times), "window_s": self.window_s, **(detail or {})})
        return None


def alert_trigger(alert: Alert, burst: BurstDetector, now: float) -> Trigger | None:
    """A critical alert starts a cycle at once; warnings only in a burst; info never."""
    if alert.severity is Severity.CRITICAL:
        return Trigger(ALERT, {"severity": alert.severity.value, "source": alert.source, "title": alert.title})
    if alert.severity is Severity.WARNING:
        return burst.observe(now, {"severity": alert.severity.value})
    return None


def parse_burst(text: str) -> tuple[int, float]:
    """`"50/60"`: 50 events within 60 seconds."""
    count, _, window = text.partition("/")
    parsed = int(count), float(window)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"a burst is '<count>/<seconds>' with both positive, not {text!r}")
    return parsed
