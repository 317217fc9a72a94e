"""Per-minute rollups of the serving gates' decisions, kept as decisions are ingested, so that the statistics
(`DecisionLog.decision_stats`) cost the same whatever the window holds: a count per (minute, strategy key, symbol,
decision) and one per (minute, reason code). Shadow gates' decisions are never counted (the statistics leave them
out). Both backends count with this module, so ingest, rebuild, retention and the statistics' raw edge agree.

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

DecisionKey = tuple[datetime, str, str, str]  # minute, strategy key, symbol, decision
ReasonKey = tuple[datetime, str]  # minute, reason code


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
    decisions: Counter[DecisionKey] = field(default_factory=Counter)
    reasons: Counter[ReasonKey] = field(default_factory=Counter)

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
        self.decisions[minute, strategy_key or NONE, symbol or NONE, decision] += 1
        for code in dict.fromkeys(reason_codes):
            self.reasons[minute, code] += 1

    def add_records(self, records: Iterable[DecisionRecord]) -> "MinuteCounts":
        for r in records:
            self.add(r.ts, r.strategy_key, r.symbol, r.decision, r.reason_codes, r.audit_subject)
        return self

    def negated(self) -> "MinuteCounts":
        return MinuteCounts(
            Counter({k: -n for k, n in self.decisions.items()}), Counter({k: -n for k, n in self.reasons.items()})
        )

    def __bool__(self) -> bool:
        return bool(self.decisions or self.reasons)

    def groups(self) -> Counter[tuple[str, str, str]]:
        """(strategy key, symbol, decision) over every minute held."""
        out: Counter[tuple[str, str, str]] = Counter()
        for (_, strategy, symbol, decision), n in self.decisions.items():
            out[strategy, symbol, decision] += n
        return out

    def codes(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, code), n in self.reasons.items():
            out[code] += n
        return out

    def decision_rows(self) -> list[tuple[datetime, str, str, str, int]]:
        """Sorted by key: two writers upserting the same keys take their row locks in the same order (no
        deadlock on PostgreSQL)."""
        return [(*key, n) for key, n in sorted(self.decisions.items()) if n]

    def reason_rows(self) -> list[tuple[datetime, str, int]]:
        return [(*key, n) for key, n in sorted(self.reasons.items()) if n]
