"""The demo fleet's ten-minute schedule under `make up` (docs/devstack.md, "The demo fleet"): what happens when,
shared by the processes that act it out, so a newcomer sees every control and every alert path within ten
minutes of `make up`.

The steady mix runs all the time (deploy/demo_strategy.py: a well-behaved strategy, oversized orders, stale
timestamps, an unknown strategy, ...). On top of it, each cycle of `PERIOD_S` plays these phases:

- `flood` (the demo fleet): `llm_swing` sends 25 intents/s; past its 30 a minute the gate answers
  `RATE_LIMITED`;
- `volatility_spike` (the market stand-in): BTC volatility in the extreme band; the next cycle (scheduled, or
  the regime trigger's) proposes tighter BTC limits and, from the rule brain, BTC `reducing`;
- `engine_hiccup` (the trade-engine stand-in): its `GET /state` answers 500; the snapshot bridge raises an alert,
  delivered by email, Grafana and OpenTelemetry;
- `drawdown` (the trade-engine stand-in): a realised loss of 16% of equity; the drawdown latch trips and trading
  goes `reducing`.

The drawdown latch holds after the phase ends (only a human releases it: docs/policy.md, "Latched limits").
Every process reads the same start, `CIO_DEMO_T0` (Unix seconds, set by `make up`), so their phases line up;
`CIO_DEMO_SCENARIOS=0` turns the phases off and leaves the steady mix.
"""

import os
import time
from dataclasses import dataclass

T0_ENV = "CIO_DEMO_T0"
SCENARIOS_ENV = "CIO_DEMO_SCENARIOS"
PERIOD_S = 600.0


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_s: float  # within the cycle
    end_s: float
    what: str

    def covers(self, offset_s: float) -> bool:
        return self.start_s <= offset_s < self.end_s


# After the first three minutes: the start-up, the first Strategist proposal and a look around come first.
PHASES = (
    Phase("flood", 180.0, 210.0, "llm_swing floods 25 intents/s: RATE_LIMITED past its 30 a minute"),
    # Longer than a scheduled cycle's interval under `make up` (60 s): one cycle at least reads the spike, whatever
    # the regime trigger's debounce (one trigger of a kind per CIO_STRATEGIST_DEBOUNCE_S) held back.
    Phase("volatility_spike", 240.0, 330.0, "BTCUSDT volatility in the extreme band: the Strategist proposes"),
    Phase("engine_hiccup", 330.0, 342.0, "the engine's GET /state fails: the snapshot bridge alerts on every channel"),
    Phase("drawdown", 360.0, 420.0, "a 16% realised loss: the drawdown latch trips, trading goes reducing"),
)
NAMES = frozenset(phase.name for phase in PHASES)


def active(elapsed_s: float, enabled: bool = True) -> frozenset[str]:
    """The phases playing `elapsed_s` after the stack started (none before it started, or when turned off)."""
    if not enabled or elapsed_s < 0:
        return frozenset()
    offset = elapsed_s % PERIOD_S
    return frozenset(phase.name for phase in PHASES if phase.covers(offset))


@dataclass(frozen=True, slots=True)
class Clock:
    """This process's view of the schedule: the stack's start and whether the phases are on."""

    t0: float
    enabled: bool

    @classmethod
    def from_env(cls) -> "Clock":
        raw = os.environ.get(T0_ENV, "").strip()
        try:
            t0 = float(raw) if raw else time.time()
        except ValueError:
            t0 = time.time()  # a demo setting, not a control: a bad value starts the schedule now
        return cls(t0, os.environ.get(SCENARIOS_ENV, "1").strip() != "0")

    def elapsed(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.t0

    def playing(self, name: str, now: float | None = None) -> bool:
        return name in active(self.elapsed(now), self.enabled)


def mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def timeline() -> list[str]:
    """One line per phase (`4:00-5:00 volatility_spike: ...`), for the processes that announce them."""
    return [f"{mmss(p.start_s)}-{mmss(p.end_s)} {p.name}: {p.what}" for p in PHASES]
