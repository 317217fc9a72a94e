"""What starts a reasoning cycle besides the schedule: pure detectors the listener feeds, one per input.

Each detector is edge-triggered (it fires when a condition starts to hold, not on every message while it
holds) and returns a `Trigger` or None. Debouncing across listeners and the one-cycle-at-a-time lock are the
caller's (`listener.py`, `lock.py`)."""

from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cio_kernel.contracts.alert import Alert, Severity
from cio_kernel.contracts.identity import SymbolKey
from strategist import untrusted
from strategist.bands import band, is_stressed
from strategist.inputs import PortfolioSummary, RegimeEntry

SCHEDULE = "schedule"
MANUAL = "manual"
REGIME_SHIFT = "regime_shift"
PORTFOLIO_BREACH = "portfolio_breach"
REJECTION_BURST = "rejection_burst"
ALERT = "alert"
TRIGGER_KINDS = (SCHEDULE, MANUAL, REGIME_SHIFT, PORTFOLIO_BREACH, REJECTION_BURST, ALERT)
LISTENER_KINDS = (REGIME_SHIFT, PORTFOLIO_BREACH, REJECTION_BURST, ALERT)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What starts a cycle. `verified` only when the worker re-derived it from a record the broker cannot write
    (or trusted code started the cycle in its own process): only a verified cycle may be auto-approved.
    `request_id` names the `CycleRequest` row it was taken from (consumed when the cycle runs); `requested_by`
    is the person who asked, from that row, never from a message."""

    kind: str
    detail: dict[str, Any]
    verified: bool = False
    request_id: str | None = None
    requested_by: Any = None


# -- what each kind's detail may hold: the detectors' own fields, typed and bounded --------------------------------
Band = Literal["calm", "normal", "volatile", "extreme"]
Label = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Line = Annotated[str, Field(max_length=untrusted.MAX_TEXT)]


class _Detail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=False)


class RegimeShiftDetail(_Detail):
    symbol: SymbolKey
    from_band: Band | None = None
    to_band: Band
    from_label: Label | None = None
    to_label: Label | None = None
    volatility: Annotated[float, Field(ge=0, le=10)]


class PortfolioBreachDetail(_Detail):
    drawdown_pct: Annotated[float, Field(ge=0, le=1)] | None = None
    concentration: Annotated[dict[SymbolKey, Annotated[float, Field(ge=0, le=1)]], Field(max_length=200)] | None = None


class BurstDetail(_Detail):
    events: Annotated[int, Field(ge=1, le=1_000_000)]
    window_s: Annotated[float, Field(gt=0, le=86_400)]
    severity: Literal["warning"] | None = None


class AlertDetail(_Detail):
    severity: Literal["critical"]
    source: Line
    title: Line


class _Empty(_Detail):
    pass


_DETAILS: dict[str, type[_Detail]] = {
    REGIME_SHIFT: RegimeShiftDetail,
    PORTFOLIO_BREACH: PortfolioBreachDetail,
    REJECTION_BURST: BurstDetail,
    ALERT: AlertDetail,
    MANUAL: _Empty,
    SCHEDULE: _Empty,
}


class DetailRefusedError(ValueError):
    """A trigger's detail is not what its detector writes."""


def clean_detail(kind: str, detail: Any) -> dict[str, Any]:
    """`detail` re-validated against what `kind`'s detector writes: known fields, typed, bounded; free text (an
    alert's title) one line. Anything else is refused, so no text of another's making becomes an instruction or
    an incident."""
    model = _DETAILS.get(kind)
    if model is None or not isinstance(detail, dict):
        raise DetailRefusedError(f"no detail is known for a {kind!r} trigger")
    if kind == ALERT:
        detail = {k: untrusted.text(v) if isinstance(v, str) else v for k, v in detail.items()}
    try:
        return model.model_validate(detail).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = exc.error_count()
        raise DetailRefusedError(f"a {kind} trigger's detail is not its detector's ({problems} errors)") from exc


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
