"""Risk latches: a breached drawdown or daily loss limit keeps its scope reducing-only until a human releases it.

A latch is recorded in Redis (`risk:latches`, one hash field per latch, see `cio_kernel/policy/latch_store.py`) so
it survives restarts and holds for every gate; `cio.risk.latch` carries a `LatchNotice` so peers re-read at
once instead of on their next refresh. The notice is only a hint: Redis holds the truth.
"""

import re
from typing import Literal, cast, get_args

from pydantic import BaseModel, ConfigDict

from cio_kernel.contracts.identity import IdentityError, strategy_key

LatchKind = Literal["drawdown", "daily_loss"]
LatchScope = Literal["global", "strategy"]
GLOBAL_KEY = "*"


def latch_id(kind: LatchKind, scope: LatchScope, key: str = GLOBAL_KEY, day: str | None = None) -> str:
    """`drawdown:global:*`, `daily_loss:strategy:<strategy_id>:<YYYY-MM-DD>`: one id per latchable condition."""
    base = f"{kind}:{scope}:{key}"
    return f"{base}:{day}" if day is not None else base


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_latch_id(raw: str) -> str:
    """The latch id `raw` names, with its strategy written as a key (`daily_loss:strategy:LLM-Swing:<day>` names
    `daily_loss:strategy:llm_swing:<day>`); `IdentityError` when it names no latch."""
    parts = raw.strip().split(":")
    kind, scope = (parts[0], parts[1]) if len(parts) >= 3 else ("", "")
    if kind not in get_args(LatchKind) or scope not in get_args(LatchScope) or len(parts) > 4:
        raise IdentityError(f"{raw[:80]!r} is no latch id (kind:scope:key[:day], e.g. drawdown:global:*)")
    key = GLOBAL_KEY if scope == "global" and parts[2] == GLOBAL_KEY else strategy_key(parts[2])
    day = parts[3] if len(parts) == 4 else None
    if day is not None and _DAY.fullmatch(day) is None:
        raise IdentityError(f"{day[:20]!r} is no trading day (YYYY-MM-DD)")
    return latch_id(cast(LatchKind, kind), cast(LatchScope, scope), key, day)


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
