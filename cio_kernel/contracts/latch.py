"""Risk latches: a breached drawdown or daily loss limit keeps its scope reducing-only until a human releases it.

A latch is recorded in Redis (`risk:latches`, one hash field per latch, see `cio_kernel/policy/latch_store.py`) so
it survives restarts and holds for every gate; `cio.risk.latch` carries a `LatchNotice` so peers re-read at
once instead of on their next refresh. The notice is only a hint: Redis holds the truth.

Redis is writable by the gates' and the control plane's passwords, so a record proves itself: a gate signs the
trip it stores (`signed_trip`, the gates' audit key), the control plane signs the release it writes
(`signed_release`, the policy key, over the trip it releases). A record counts as released only when the release
verifies with the policy key; anything else, however it reads, holds the latch (cio_kernel/policy/latch_store.py).
"""

import hashlib
import re
from typing import TYPE_CHECKING, Annotated, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field

from cio_kernel.contracts.identity import IdentityError, strategy_key

if TYPE_CHECKING:  # only for hints: a contract never needs cryptography to be read (the fleet client's
    # distribution ships the contracts without it, docs/client.md)
    from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

_TRIP_DOMAIN = b"petrosa-cio latch trip v1\n"  # never mistaken for a policy, a checkpoint or a heartbeat
_RELEASE_DOMAIN = b"petrosa-cio latch release v1\n"
UNREADABLE_BY = "(unreadable record)"  # `tripped_by` of a latch held for a record that could not be read

LatchKind = Literal["drawdown", "daily_loss"]
LatchScope = Literal["global", "strategy"]
GLOBAL_KEY = "*"
# Bounds on what a record may hold, so that what a gate holds (and keeps on its volume, and lists in its heartbeat)
# stays small however large a record planted in Redis is: a record over them is unreadable and holds its latch.
_Short = Annotated[str, Field(max_length=256)]
_Reason = Annotated[str, Field(max_length=10_000)]  # as the release API takes it


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
    key: _Short
    day: _Short | None = None  # the trading day a daily-loss latch belongs to; it lapses when the day ends
    tripped_at: float  # Unix seconds, the tripping gate's clock
    tripped_by: _Short  # gate id
    snapshot_ts: float  # the snapshot that showed the breach
    observed: float
    limit: float
    released_at: float | None = None
    released_by: _Short | None = None
    release_reason: _Reason | None = None
    # The tripping gate's signature over the trip (the gates' audit key), and the control plane's over the release
    # (the policy key); null on records written before they were signed (docs/policy.md, "Latched limits").
    trip_key_id: _Short | None = None
    trip_signature: _Short | None = None
    release_key_id: _Short | None = None
    release_signature: _Short | None = None

    @property
    def id(self) -> str:
        return latch_id(self.kind, self.scope, self.key, self.day)

    @property
    def active(self) -> bool:
        return self.released_at is None

    def trip_bytes(self) -> bytes:
        """What a trip's signature covers: which latch, when, by whom, from which snapshot, at what figures
        (floats as `repr`, which a JSON round trip keeps exactly)."""
        fields = (self.id, repr(self.tripped_at), self.tripped_by, repr(self.snapshot_ts))
        return _TRIP_DOMAIN + "\n".join((*fields, repr(self.observed), repr(self.limit))).encode()

    def release_bytes(self) -> bytes:
        """What a release's signature covers: the trip it releases (its digest), when, by whom and why."""
        trip = hashlib.sha256(self.trip_bytes()).hexdigest()
        fields = (trip, repr(self.released_at), self.released_by or "", self.release_reason or "")
        return _RELEASE_DOMAIN + "\n".join(fields).encode()

    def same_trip(self, other: "LatchRecord") -> bool:
        return self.trip_bytes() == other.trip_bytes()

    def signed_trip(self, signer: "PolicySigner | None") -> "LatchRecord":
        if signer is None:
            return self
        return self.model_copy(update={"trip_key_id": signer.key_id, "trip_signature": signer.sign(self.trip_bytes())})

    def trip_verified_by(self, verifier: "PolicyVerifier | None") -> bool:
        return verifier is not None and verifier.verify(self.trip_bytes(), self.trip_signature, self.trip_key_id)

    def release_verified_by(self, verifier: "PolicyVerifier | None") -> bool:
        if self.released_at is None or verifier is None:
            return False
        return verifier.verify(self.release_bytes(), self.release_signature, self.release_key_id)

    def released(self, at: float, by: str, reason: str, signer: "PolicySigner") -> "LatchRecord":
        """This trip released by `by`, signed by the control plane (the only holder of the policy key)."""
        released = self.model_copy(update={"released_at": at, "released_by": by, "release_reason": reason})
        signature = signer.sign(released.release_bytes())
        return released.model_copy(update={"release_key_id": signer.key_id, "release_signature": signature})

    def unreleased(self) -> "LatchRecord":
        """The trip without a release that did not verify: the latch holds."""
        return self.model_copy(
            update={
                "released_at": None,
                "released_by": None,
                "release_reason": None,
                "release_key_id": None,
                "release_signature": None,
            }
        )

    @classmethod
    def unreadable(cls, latch: str) -> "LatchRecord":
        """The latch `latch` held for a record nobody can read: an unreadable record never releases anything. A
        risk officer can release it like any other (the release covers this exact placeholder)."""
        parts = latch.split(":")
        return cls(
            kind=cast(LatchKind, parts[0]),
            scope=cast(LatchScope, parts[1]),
            key=parts[2],
            day=parts[3] if len(parts) == 4 else None,
            tripped_at=0.0,
            tripped_by=UNREADABLE_BY,
            snapshot_ts=0.0,
            observed=0.0,
            limit=0.0,
        )


class LatchNotice(BaseModel):
    latch_id: str
    event: Literal["tripped", "released"]
    at: float
    by: str
