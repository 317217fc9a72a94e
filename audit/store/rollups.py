"""Per-minute rollups of the serving gates' decisions, kept as decisions are ingested, so that the statistics
(`DecisionLog.decision_stats`) cost the same whatever the window holds. One count per (minute, kind, key,
decision): kind `strategy` (key: the strategy key), `symbol` (the symbol) and `reason` (a reason code, once per
decision). Strategies and symbols are counted apart because the statistics never need them together: a minute
holds at most (strategies + symbols + codes) × 3 rows, never strategies × symbols, which at a large fleet's rate
would approach a row per decision. Shadow gates' decisions are never counted (the statistics leave them out).
Both backends count with this module, so ingest, rebuild, retention and the statistics' raw edge agree.

The invariant every writer keeps: the rollups are the counts of the serving decisions stored, minute by minute
(ingest adds what it newly inserted, retention takes away what it removed, `audit_rollups_rebuild` recomputes a
range from the decisions). A decision without a strategy key or symbol is counted under `NONE` (""): unique keys
ignore NULLs, and the statistics show either as "(none)"."""

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from audit.records import DecisionRecord
from cio_kernel.shadow import is_shadow_subject

MINUTE = timedelta(minutes=1)
NONE = ""

STRATEGY, SYMBOL, REASON = "strategy", "symbol", "reason"

MinuteKey = tuple[datetime, str, str, str]  # minute, kind, key, decision


def minute_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def first_whole_minute(since: datetime) -> datetime:
    """The first minute that lies entirely at or after `since`: rollups answer from here on, the raw decisions
    before it (at most a minute of them)."""
    start = minute_of(since)
    return start if start == since else start + MINUTE


def rollup_chunks(
    start: datetime, end: datetime, size: timedelta = timedelta(hours=1)
) -> Iterator[tuple[datetime, datetime]]:
    """The minutes from `start`'s through `end`'s, in spans of `size`: a rebuild holds the rollups' lock for one
    span at a time, and counts one span in memory."""
    low, end = minute_of(start), minute_of(end) + MINUTE
    while low < end:
        high = min(low + size, end)
        yield low, high
        low = high


def stored_span(
    start: datetime | None, end: datetime, bounds: Iterable[datetime | None]
) -> tuple[datetime, datetime] | None:
    """The part of [`start` (None: the beginning), `end`] that can hold anything to recount, given the oldest
    and newest decision and rollup minute stored (`bounds`, None where there is none): a rebuild over months of
    time with an hour of decisions recounts an hour."""
    known = [b for b in bounds if b is not None]
    if not known:
        return None
    low, high = max(start or min(known), min(known)), min(end, max(known))
    return (low, high) if low <= high else None


@dataclass
class MinuteCounts:
    counts: Counter[MinuteKey] = field(default_factory=Counter)

    def add(
        self,
        ts: datetime,
        strategy_key: str | None,
        symbol: str | None,
        decision: str,
        reason_codes: Iterable[str],
        audit_subject: str | None = None,
    ) -> None:
        """One decision, unless its `audit_subject` says a shadow gate's. A code repeated within one decision
        counts once, as the Django backend's reasons table stores it once."""
        if audit_subject is not None and is_shadow_subject(audit_subject):
            return
        minute = minute_of(ts)
        self.counts[minute, STRATEGY, strategy_key or NONE, decision] += 1
        self.counts[minute, SYMBOL, symbol or NONE, decision] += 1
        for code in dict.fromkeys(reason_codes):
            self.counts[minute, REASON, code, decision] += 1

    def add_records(self, records: Iterable[DecisionRecord]) -> "MinuteCounts":
        for r in records:
            self.add(r.ts, r.strategy_key, r.symbol, r.decision, r.reason_codes, r.audit_subject)
        return self

    def negated(self) -> "MinuteCounts":
        return MinuteCounts(Counter({k: -n for k, n in self.counts.items()}))

    def __bool__(self) -> bool:
        return bool(self.counts)

    def totals(self) -> Counter[tuple[str, str, str]]:
        """(kind, key, decision) over every minute held."""
        out: Counter[tuple[str, str, str]] = Counter()
        for (_, kind, key, decision), n in self.counts.items():
            out[kind, key, decision] += n
        return out

    def decided(self) -> int:
        return sum(n for (_, kind, _, _), n in self.counts.items() if kind == STRATEGY)

    def rows(self) -> list[tuple[datetime, str, str, str, int]]:
        """Sorted by key: two writers upserting the same keys take their row locks in the same order (no
        deadlock on PostgreSQL)."""
        return [(*key, n) for key, n in sorted(self.counts.items()) if n]
