"""Policy impact preview: the gate's own decision function replayed over audited intents under two policies.

Pure (no Django, no I/O): the control plane streams audited decisions in arrival order (`policies/impact.py`),
and `replay` judges each intent with `gate.decision.evaluate.evaluate` under the active and the candidate policy,
each with a `GateState` rebuilt from nothing and fed only the replayed promotions, so the stateful controls (dedupe,
rate and flood windows, pending exposure) count what that policy would have promoted, in arrival order.

What the audit record holds, and so what is replayed faithfully: the intent as validated, the subject it arrived on,
the gate's clock when it decided (`ts`: freshness, dedupe and rate windows) and the time of the portfolio snapshot
it was judged against (`state.snapshot_ts`: snapshot freshness). What it does not hold, and so what is approximated
and counted in `Impact.approximated` rather than hidden (docs/impact-preview.md):

- the snapshot's contents. The replay judges against a *neutral* book of the recorded age: flat (no positions,
  zero gross exposure, so exposure counts only the replayed promotions since that snapshot), no drawdown, zero
  daily PnL, equity `equity_usd`. An intent is counted `portfolio` when a control of either run read those
  contents: exposure limits, a drawdown or daily loss limit, an order sized as a share of equity.
- whether a buy or sell shrank an open position (the book's positions): replayed as opening. Reducing only ever
  lifts checks, so an approval stands either way; a rejection for a reason a reducing intent skips is `position`.
- latches tripped and trading states tightened by notice at the time: the replay trips none (its book breaches no
  limit). An intent the gate refused for a latch is counted `latch`.
Several gates decided the fleet's intents, each counting its peers' promotions too: the replay is one gate that
saw all of them, in the store's (time, decision id) order.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.portfolio import PortfolioSnapshot, StrategyBook
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.book import Book
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.latches import trading_day_start
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy

# Rejections a provably reducing intent would not have had: replayed as opening, such a rejection may be wrong.
REDUCING_SKIPS: frozenset[str] = frozenset(
    {
        C.SYMBOL_NOT_ALLOWED,
        C.TRADING_REDUCING,
        C.DRAWDOWN_REDUCING,
        C.DAILY_LOSS_REDUCING,
        C.STOP_LOSS_REQUIRED,
        C.STOP_LOSS_INVALID,
        C.STOP_LOSS_TOO_WIDE,
        C.TAKE_PROFIT_INVALID,
        C.ORDER_SIZE_UNKNOWN,
        C.SNAPSHOT_MISSING,
        C.SNAPSHOT_STALE,
        C.DAILY_PNL_UNKNOWN,
        C.SYMBOL_EXPOSURE_EXCEEDED,
        C.TOTAL_EXPOSURE_EXCEEDED,
    }
)
LATCH_CODES: frozenset[str] = frozenset({C.DRAWDOWN_REDUCING, C.DAILY_LOSS_REDUCING})
# Only decided intents are replayed: a RETRY_SAFE one was not judged (no policy, overload), and its retry, if any,
# is in the trail as a decision of its own.
REPLAYED_DECISIONS = frozenset({"APPROVED", "REJECTED"})
TO_REJECTED = "approved_to_rejected"
TO_APPROVED = "rejected_to_approved"


class AuditedIntent(NamedTuple):
    """What the replay needs of one audit record (`audit.records.DecisionRecord.payload`). A named tuple, read-only
    and built several times faster than a frozen dataclass: one is built per record read."""

    decision_id: str
    trace_id: str
    ts: float  # the gate's clock when it decided, Unix seconds
    subject: str  # the intake subject it arrived on
    decision: str
    reason_codes: tuple[str, ...]
    intent: Intent | None  # as the gate validated it; None for a VAL_ERR (or `unreadable`)
    snapshot_ts: float | None  # the portfolio snapshot it was judged against, None when the gate held none
    unreadable: bool = False  # it carries an intent today's contract does not read: skipped, never guessed at

    @classmethod
    def from_event(cls, payload: bytes) -> "AuditedIntent":
        """From the audit event exactly as the gate published it: read and its intent validated in one pass of
        pydantic-core over the JSON (half the cost of parsing, then validating the parsed intent)."""
        try:
            event = _Event.model_validate_json(payload)
        except ValidationError:
            return cls._leniently(payload)
        state, reasons = event.state, event.reasons
        return cls(
            event.decision_id,
            event.trace_id,
            event.ts.timestamp(),
            event.subject,
            event.decision,
            tuple(dict.fromkeys(r.code for r in reasons)) if reasons else (),
            event.intent,
            _snapshot_unix(state.snapshot_ts) if state is not None else None,
        )

    @classmethod
    def _leniently(cls, payload: bytes) -> "AuditedIntent":
        """An event whose intent does not validate (written under an older contract): kept, marked unreadable."""
        event = orjson.loads(payload)
        state = event.get("state") or {}
        snapshot = state.get("snapshot_ts")
        return cls(
            decision_id=event["decision_id"],
            trace_id=event.get("trace_id") or "",
            ts=_unix(event["ts"]),
            subject=event.get("subject") or "",
            decision=event["decision"],
            reason_codes=tuple(dict.fromkeys(r["code"] for r in event.get("reasons") or ())),
            intent=None,
            snapshot_ts=_unix(snapshot) if snapshot else None,
            unreadable=event.get("intent") is not None,
        )


class _Code(BaseModel):
    code: str


class _Judged(BaseModel):
    snapshot_ts: datetime | None = None


class _Event(BaseModel):
    """The fields of `cio_kernel.contracts.audit_event.AuditEvent` the replay reads, the intent validated as such."""

    model_config = ConfigDict(extra="ignore")

    decision_id: str
    trace_id: str = ""
    ts: datetime
    subject: str = ""
    decision: str
    reasons: list[_Code] = []
    intent: Intent | None = None
    state: _Judged | None = None


@dataclass(slots=True)
class Cell:
    """Intents whose decision changed one way, for one strategy, symbol and reason code."""

    direction: str  # TO_REJECTED (the reason is the candidate's) or TO_APPROVED (the active policy's reason)
    strategy_key: str
    symbol: str
    reason_code: str
    count: int = 0
    samples: list[tuple[str, str]] = field(default_factory=list)  # (decision_id, trace_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "strategy_key": self.strategy_key,
            "symbol": self.symbol,
            "reason_code": self.reason_code,
            "count": self.count,
            "samples": [{"decision_id": d, "trace_id": t} for d, t in self.samples],
        }


@dataclass(slots=True)
class Impact:
    """What the candidate policy would have decided differently from the active one over the replayed intents."""

    active_version: int | None
    candidate_version: int | None
    replayed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # why an audited decision was not replayed -> count
    approved_active: int = 0
    approved_candidate: int = 0
    approved_to_rejected: int = 0  # intents (a cell counts each of an intent's new reasons)
    rejected_to_approved: int = 0
    approximated: dict[str, int] = field(default_factory=dict)  # kind ("portfolio", "position", "latch") -> intents
    approximated_changes: int = 0  # changed decisions among the approximated intents
    first_ts: float | None = None
    last_ts: float | None = None
    approximated_intents: int = 0  # intents with at least one approximation
    cells: dict[tuple[str, str, str, str], Cell] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, cells busiest first."""
        cells = sorted(self.cells.values(), key=lambda c: (-c.count, c.direction, c.strategy_key, c.symbol))
        return {
            "active_version": self.active_version,
            "candidate_version": self.candidate_version,
            "replayed": self.replayed,
            "skipped": dict(sorted(self.skipped.items())),
            "approved_active": self.approved_active,
            "approved_candidate": self.approved_candidate,
            "approved_to_rejected": self.approved_to_rejected,
            "rejected_to_approved": self.rejected_to_approved,
            "approximated": dict(sorted(self.approximated.items())),
            "approximated_intents": self.approximated_intents,
            "approximated_changes": self.approximated_changes,
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "cells": [c.as_dict() for c in cells],
        }


class _Run:
    """One policy's replay: its compiled policy and a state rebuilt from nothing."""

    __slots__ = ("equity", "policy", "snapshot_ts", "state", "strategies", "uses_book")

    def __init__(self, policy: CompiledPolicy, equity_usd: float) -> None:
        self.policy = policy
        self.state = GateState()
        self.snapshot_ts: float | None = None
        self.equity = equity_usd
        zero = StrategyBook.model_construct(daily_pnl_usd=0.0)
        # Only a listed strategy can carry a daily loss limit: the neutral book reports zero PnL for each.
        self.strategies = {key: zero for key in policy.document.spec.strategies}
        rules = policy.global_rules
        self.uses_book = (
            rules.max_total_exposure_usd is not None
            or rules.max_drawdown_pct is not None
            or rules.max_daily_loss_usd is not None
            or rules.max_daily_loss_pct is not None
        )

    def judge(self, intent: Intent, record: AuditedIntent) -> Verdict:
        """Decide as the gate did, then count a promotion in this policy's own state, as the gate does."""
        if record.snapshot_ts != self.snapshot_ts:
            self._adopt_neutral_book(record.snapshot_ts)
        verdict = evaluate(intent, self.policy, self.state, record.ts, record.subject)
        if verdict.promote:
            self.state.record_promotion(intent, verdict.limits.rate_rules, verdict.notional_usd, record.ts)
        return verdict

    def _adopt_neutral_book(self, snapshot_ts: float | None) -> None:
        """A newer snapshot clears the pending exposure, as in the gate; an older one (two gates' books, interleaved)
        is taken as it comes: the neutral book has no contents to go back on, only its age. None: the gate that
        decided held no snapshot (one just started), and neither does the replay for this intent."""
        # The replay's own state, set directly: `GateState.apply_snapshot` refuses an older snapshot and cannot drop
        # the book, and both happen when several gates' decisions are replayed as one stream.
        self.snapshot_ts = snapshot_ts
        if snapshot_ts is None:
            self.state._book = None
            return
        day_start = trading_day_start(snapshot_ts, self.policy.global_rules.trading_day_start_utc)
        snapshot = PortfolioSnapshot.model_construct(
            ts=datetime.fromtimestamp(snapshot_ts, UTC),
            equity_usd=self.equity,
            drawdown_pct=0.0,
            positions={},
            pnl_since=datetime.fromtimestamp(day_start, UTC),
            daily_pnl_usd=0.0,
            day_start_equity_usd=self.equity or None,
            strategies={},
        )
        book = Book(snapshot, snapshot_ts, 0.0, day_start, dict(self.strategies))
        state = self.state
        state._book = book
        state._pending_exposure.clear()
        state._pending_total = 0.0

    def read_book(self, verdict: Verdict, intent: Intent) -> bool:
        """Whether a control read the (unknown) contents of the snapshot to judge this intent."""
        if self.snapshot_ts is None or not intent.opens_or_adds:
            return False
        limits = verdict.limits
        return (
            self.uses_book
            or limits.max_symbol_exposure_usd is not None
            or limits.strategy_max_daily_loss_usd is not None
            or (intent.quantity <= 0 and intent.position_size_pct is not None)
        )


ProgressCallback = Callable[[int, float | None], None]  # (records read, the last one's time)


def replay(
    records: Iterable[AuditedIntent],
    active: PolicyDocument,
    candidate: PolicyDocument,
    *,
    samples_per_cell: int = 3,
    equity_usd: float = 0.0,
    progress: ProgressCallback | None = None,
    progress_every: int = 10_000,
) -> Impact:
    """Replay `records` (in arrival order) under both policies; `progress(read, ts)` every `progress_every` records."""
    before, after = _Run(CompiledPolicy(active), equity_usd), _Run(CompiledPolicy(candidate), equity_usd)
    impact = Impact(active.version, candidate.version)
    skipped, approximated, cells = impact.skipped, impact.approximated, impact.cells
    read = 0
    for record in records:
        read += 1
        if progress is not None and read % progress_every == 0:
            progress(read, record.ts)
        if record.decision not in REPLAYED_DECISIONS:
            skipped["not_decided"] = skipped.get("not_decided", 0) + 1
            continue
        intent = record.intent
        if intent is None:
            why = "invalid_intent" if record.unreadable else "no_intent"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        if impact.first_ts is None:
            impact.first_ts = record.ts
        impact.last_ts = record.ts
        impact.replayed += 1
        old, new = before.judge(intent, record), after.judge(intent, record)
        impact.approved_active += old.promote
        impact.approved_candidate += new.promote

        kinds = _approximations(record, intent, old, new, before, after)
        if kinds:
            impact.approximated_intents += 1
            for kind in kinds:
                approximated[kind] = approximated.get(kind, 0) + 1
        if old.promote == new.promote:
            continue
        impact.approximated_changes += bool(kinds)
        if old.promote:
            impact.approved_to_rejected += 1
            direction, reasons = TO_REJECTED, new.reasons
        else:
            impact.rejected_to_approved += 1
            direction, reasons = TO_APPROVED, old.reasons
        for code in dict.fromkeys(r.code for r in reasons):
            key = (direction, intent.strategy_key, intent.symbol, str(code))
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = Cell(*key)
            cell.count += 1
            if len(cell.samples) < samples_per_cell:
                cell.samples.append((record.decision_id, record.trace_id))
    if progress is not None:
        progress(read, impact.last_ts)
    return impact


def _approximations(
    record: AuditedIntent, intent: Intent, old: Verdict, new: Verdict, before: _Run, after: _Run
) -> tuple[str, ...]:
    kinds: tuple[str, ...] = ()
    if before.read_book(old, intent) or after.read_book(new, intent):
        kinds += ("portfolio",)
    if (
        record.snapshot_ts is not None
        and intent.opens_or_adds
        and intent.quantity > 0
        and any(r.code in REDUCING_SKIPS for r in (*old.reasons, *new.reasons))
    ):
        kinds += ("position",)
    if not LATCH_CODES.isdisjoint(record.reason_codes):
        kinds += ("latch",)
    return kinds


def _snapshot_unix(snapshot_ts: datetime | None, _seen: dict[datetime, float] = {}) -> float | None:  # noqa: B006
    """`snapshot_ts` as Unix seconds, memoised: consecutive records name the same few snapshots (one every few
    seconds), so most conversions are a dict look-up. The memo is cleared when it grows, so it stays small."""
    if snapshot_ts is None:
        return None
    unix = _seen.get(snapshot_ts)
    if unix is None:
        if len(_seen) >= 64:
            _seen.clear()
        unix = _seen[snapshot_ts] = snapshot_ts.timestamp()
    return unix


def _unix(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value).timestamp()


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None
