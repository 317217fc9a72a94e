"""The audit store's interface. Records go in once and are never changed: the interface has no update, and its one
removal is retention's (`prune_chain`, which `audit.retention` calls only for records a signed checkpoint old
enough vouches for, after verifying them). Below the interface the Django backend's database refuses both
(docs/audit.md)."""

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from audit.records import (
    AlertEvent,
    AlertRecord,
    DecisionRecord,
    Incident,
    QuarantinedEvent,
    StoredCheckpoint,
    Thought,
    ToolCall,
)

MAX_PAGE = 500


class StoreUnavailableError(Exception):
    """The store could not be reached or did not take the write; retrying later may succeed."""

    retry_may_help = True


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


class AuditStore(Protocol):
    name: str

    def ensure_schema(self) -> None:
        """Create collections/indexes if missing (idempotent; run at start-up)."""
        ...

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
        """What the gates decided since `since` (the Strategist's view of how the policy is working)."""
        ...

    def chains(self) -> list[str]: ...

    def chain_records(self, chain: str, after_seq: int = 0) -> Iterator[DecisionRecord]:
        """Every record of one chain as stored past `after_seq`, in sequence order (ties by decision_id)."""
        ...

    def unchained_decisions(self, limit: int = 100) -> list[DecisionRecord]: ...

    def insert_checkpoints(self, checkpoints: Sequence[StoredCheckpoint]) -> int:
        """Store each checkpoint unless one for its (chain, seq) is stored; durable when this returns. Returns how
        many were new. Raises `StoreUnavailableError` when nothing can be promised."""
        ...

    def checkpoints(self, chain: str) -> list[StoredCheckpoint]:
        """The stored checkpoints of one chain, in sequence order."""
        ...

    def checkpoint_chains(self) -> list[str]: ...

    def prune_chain(self, chain: str, through_seq: int) -> int:
        """Retention: remove the chain's records up to `through_seq` and its checkpoints before it (the one at
        `through_seq` stays: verification starts from it). Returns how many records went. Only `audit.retention`
        calls this, after verifying what goes."""
        ...

    def put_thought(self, thought: Thought) -> bool:
        """Store a Strategist thought (once per `thought_id`); True when it was new."""
        ...

    def get_thought(self, thought_id: str) -> Thought | None: ...

    def insert_incident(self, incident: Incident) -> bool: ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def recent_incidents(self, limit: int = 50) -> list[Incident]: ...

    def similar_incidents(
        self, vector: Sequence[float], limit: int = 5, kind: str | None = None
    ) -> list[tuple[Incident, float]]:
        """The incidents nearest `vector` by cosine similarity, most similar first (ties by incident id)."""
        ...

    def insert_alert(self, alert: AlertRecord) -> bool:
        """Store an alert once per `alert_id`; True when it was new."""
        ...

    def get_alert(self, alert_id: str) -> AlertRecord | None: ...

    def recent_alerts(
        self,
        limit: int = 100,
        severity: str | None = None,
        since: datetime | None = None,
        originals_only: bool = False,
    ) -> list[AlertRecord]:
        """Newest first; with `since`, only alerts received at or after it; with `originals_only`, no repeats
        (so a flood of repeats cannot push an original off a page)."""
        ...

    def repeat_counts(self, alert_ids: Sequence[str]) -> dict[str, int]:
        """How many repeats point at each of these alerts (`duplicate_of`); those with none are left out."""
        ...

    def escalation_candidates(self, since: datetime, rounds: int) -> list[AlertRecord]:
        """Critical alerts received at or after `since` that are originals (not repeats), unacknowledged and
        escalated fewer than `rounds` times: oldest first, every one of them. Selected directly, so no number of
        repeats or newer alerts can push one out (issue 17)."""
        ...

    def add_alert_event(self, event: AlertEvent) -> bool:
        """Append what happened to an alert (a delivery attempt, an acknowledgement, an escalation), once per
        `event_id`."""
        ...

    def alert_events(self, alert_ids: Sequence[str]) -> list[AlertEvent]:
        """Every event of these alerts, oldest first."""
        ...

    def insert_tool_call(self, call: ToolCall) -> bool:
        """Record one MCP tool call (once per `call_id`)."""
        ...

    def recent_tool_calls(self, limit: int = 100, user: str | None = None) -> list[ToolCall]:
        """Newest first."""
        ...

    def release_thread(self) -> None:
        """Let go of what the calling thread holds (the Django backend's per-thread connection)."""
        ...

    def close(self) -> None: ...
