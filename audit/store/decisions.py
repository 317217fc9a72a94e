"""The decision log: each decision the gates published, stored once per `decision_id` and never changed, read back
by id, by filters a page at a time (newest first, with a cursor), as statistics, and chain by chain in sequence
order for verification; what the ingest could not read is kept in quarantine beside it."""

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import orjson

from audit.records import DecisionRecord, QuarantinedEvent

MAX_PAGE = 500


class InvalidCursorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters for the decisions list, newest first; every filter is optional and they combine with AND."""

    since: datetime | None = None
    until: datetime | None = None
    strategy_key: str | None = None  # every spelling of the strategy (`cio_kernel.contracts.identity.strategy_key`)
    symbol: str | None = None
    decision: str | None = None
    reason_code: str | None = None
    policy_version: int | None = None
    gate_id: str | None = None
    trace_id: str | None = None
    decision_id: str | None = None
    signal_id: str | None = None
    # True: shadow gates' decisions only; False: serving gates' only (`DecisionRecord.shadow`); None: both.
    shadow: bool | None = None
    cursor: str | None = None  # from the previous page's `next_cursor`
    limit: int = 50

    def after(self) -> tuple[datetime, str] | None:
        """The (ts, decision_id) the cursor points past, or None for the first page."""
        return decode_cursor(self.cursor) if self.cursor else None


@dataclass(frozen=True, slots=True)
class DecisionStats:
    """Counts of decisions since a time: by decision, by reason code, and per strategy and per symbol by decision.
    `by_strategy`/`by_symbol` hold the `top` busiest; `by_reason` the `top` most frequent."""

    since: datetime
    total: int
    by_decision: dict[str, int]
    by_reason: dict[str, int]
    by_strategy: dict[str, dict[str, int]]
    by_symbol: dict[str, dict[str, int]]


def busiest(counts: dict[tuple[str | None, str], int], top: int) -> dict[str, dict[str, int]]:
    """{(name, decision): n} as {name: {decision: n}} for the `top` names with the most decisions."""
    nested: dict[str, dict[str, int]] = {}
    for (name, decision), n in counts.items():
        nested.setdefault(name or "(none)", {})[decision] = n
    ranked = sorted(nested.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:top]
    return dict(ranked)


def most_frequent(counts: dict[str, int], top: int) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


def stats_of(since: datetime, totals: Mapping[tuple[str, str, str], int], top: int) -> DecisionStats:
    """The statistics from counts by (kind, key, decision), kind `strategy`, `symbol` or `reason`, however
    obtained (audit/store/rollups.py)."""
    views: dict[str, dict[tuple[str | None, str], int]] = {"strategy": {}, "symbol": {}, "reason": {}}
    for (kind, key, decision), n in totals.items():
        if n and kind in views:
            views[kind][key, decision] = views[kind].get((key, decision), 0) + n
    by_decision: dict[str, int] = {}
    for (_, decision), n in views["strategy"].items():
        by_decision[decision] = by_decision.get(decision, 0) + n
    by_reason: dict[str, int] = {}
    for (code, _), n in views["reason"].items():
        by_reason[code or ""] = by_reason.get(code or "", 0) + n
    return DecisionStats(
        since=since,
        total=sum(by_decision.values()),
        by_decision=by_decision,
        by_reason=most_frequent(by_reason, top),
        by_strategy=busiest(views["strategy"], top),
        by_symbol=busiest(views["symbol"], top),
    )


@dataclass(frozen=True, slots=True)
class DecisionPage:
    records: list[DecisionRecord]
    next_cursor: str | None


def encode_cursor(record: DecisionRecord) -> str:
    raw = orjson.dumps([record.ts.isoformat(), record.decision_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        ts, decision_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(ts), str(decision_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidCursorError("cursor is not one this API returned") from exc


def page_of(records: list[DecisionRecord], limit: int) -> DecisionPage:
    """`records` fetched with limit + 1: the extra one only says whether there is a next page."""
    if len(records) > limit:
        records = records[:limit]
        return DecisionPage(records, encode_cursor(records[-1]))
    return DecisionPage(records, None)


@runtime_checkable
class DecisionLog(Protocol):
    def insert_decisions(self, records: Sequence[DecisionRecord]) -> int:
        """Store each record unless its `decision_id` is already stored; durable when this returns. Returns how
        many were new. Raises `StoreUnavailableError` when nothing can be promised."""
        ...

    def quarantine(self, events: Sequence[QuarantinedEvent]) -> None: ...

    def quarantined(self, limit: int = 100) -> list[QuarantinedEvent]: ...

    def get_decision(self, decision_id: str) -> DecisionRecord | None: ...

    def get_decisions(self, decision_ids: Sequence[str]) -> list[DecisionRecord]:
        """The stored ones among `decision_ids`, in that order (unknown ids are left out)."""
        ...

    def find_decisions(self, query: DecisionQuery) -> DecisionPage: ...

    def count_decisions(self) -> int: ...

    def decision_stats(self, since: datetime, top: int = 10) -> DecisionStats:
        """What the serving gates decided since `since` (the Strategist's view of how the policy is working).
        Shadow gates' decisions are left out: nothing acted on them, so they are not the fleet's decisions.
        Exact, from the per-minute rollups (audit/store/rollups.py) for whole minutes and from the decisions
        themselves before the first whole minute: the cost does not grow with the window's decisions, beyond
        at most one minute of them when `since` is not on a minute."""
        ...

    def rebuild_rollups(self, start: datetime | None, end: datetime) -> int:
        """Recount the rollups of the minutes from `start`'s (None: the oldest stored decision's) through the one
        `end` falls in, from the stored decisions (idempotent; `manage.py audit_rollups_rebuild`). Returns how
        many decisions were counted."""
        ...

    def decision_payloads(self, since: datetime, until: datetime | None = None) -> Iterator[bytes]:
        """The events (`DecisionRecord.payload`) serving gates decided from `since` up to `until` (excluded), oldest
        first, ties by decision_id: the order they were decided in, streamed for a replay (policies/impact.py).
        Shadow gates' decisions are left out, as from the statistics: they saw the same intents again."""
        ...

    def chains(self) -> list[str]: ...

    def chain_records(self, chain: str, after_seq: int = 0) -> Iterator[DecisionRecord]:
        """Every record of one chain as stored past `after_seq`, in sequence order (ties by decision_id)."""
        ...

    def unchained_decisions(self, limit: int = 100) -> list[DecisionRecord]: ...
