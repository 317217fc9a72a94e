"""Risk latches: a breached drawdown or daily loss limit keeps its scope reducing-only until a human releases it.

A latch is recorded in Redis (`risk:latches`, one hash field per latch, see `cio_kernel/policy/latch_store.py`) so
it survives restarts and holds for every gate; `cio.risk.latch` carries a `LatchNotice` so peers re-read at
once instead of on their next refresh. The notice is only a hint: Redis holds the truth.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

LatchKind = Literal["drawdown", "daily_loss"]
LatchScope = Literal["global", "strategy"]
GLOBAL_KEY = "*"


def latch_id(kind: LatchKind, scope: LatchScope, key: str = GLOBAL_KEY, day: str | None = None) -> str:
    """`drawdown:global:*`, `daily_loss:strategy:<strategy_id>:<YYYY-MM-DD>`: one id per latchable condition."""
    base = f"{kind}:{scope}:{key}"
    return f"{base}:{day}" if day is not None else base


class LatchRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: LatchKind
    scope: LatchScope
    key: str
    day: str | None = None  # the trading day a daily-loss latch belongs to; it lapses when the day ends
    tripped_at: float  # Unix seconds, the tripping gate's clock
    tripped_by: str  # gate id
    snapshot_ts: float  # the snapshot that showed the breach
    observed: float
    limit: float
    released_at: float | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def id(self) -> str:
        return latch_id(self.kind, self.scope, self.key, self.day)

    @property
    def active(self) -> bool:
        return self.released_at is None

    def released(self, at: float, by: str, reason: str) -> "LatchRecord":
        return self.model_copy(update={"released_at": at, "released_by": by, "release_reason": reason})


class LatchNotice(BaseModel):
    latch_id: str
    event: Literal["tripped", "released"]
    at: float
    by: str
