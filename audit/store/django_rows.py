"""The Django backend's rows: what `insert_decisions` writes into `audit_logs` and `audit_log_reasons` for a
record, and how the per-minute rollups beside them are added to and recounted. Without Django, so that the
benchmarks' preloads (bench/audit_store, bench/strategist) write exactly these rows, also from a second process;
the database's own datetime conversion is passed in (`adapt`)."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

from audit.records import DecisionRecord
from audit.store.rollups import MinuteCounts, rollup_chunks

DECISION_COLUMNS = (
    "decision_id", "ts", "gate_id", "subject", "strategy_id", "strategy_key", "symbol", "action", "intent_id",
    "signal_id", "decision", "reason_codes", "policy_version", "policy_checksum", "trace_id", "span_id", "latency_us",
    "trading_state", "snapshot_ts", "audit_subject", "payload", "chain", "seq", "prev_hash", "hash", "trace_key",
    "signal_key", "ingested_at",
)  # fmt: skip


REASON_COLUMNS = ("decision_id", "code", "ts")
MINUTE_COLUMNS = ("minute", "kind", "key", "decision", "n")


def _source(placeholder: str, columns: int, types: Sequence[str] | None) -> str:
    """Where an INSERT's rows come from: one row of parameters, or (`types`: the columns' SQL types, PostgreSQL
    through psycopg) one array parameter a column, unnested into all the rows at once (`write_rows`)."""
    if types is None:
        return f"VALUES ({', '.join([placeholder] * columns)})"
    # psycopg's %b: each array goes in binary, so no value is escaped into array text in Python (most of what the
    # ingest process spent on a batch).
    return f"SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in types)})"  # noqa: S608 (the model's types)


def insert_decision_sql(placeholder: str, vendor: str = "sqlite", types: Sequence[str] | None = None) -> str:
    """ON CONFLICT DO NOTHING: another ingest process may commit the same decision between our read and this write
    (SQLite and PostgreSQL both speak it). On PostgreSQL `audit_logs` is partitioned by day, so its unique key is
    (decision_id, ts) (migration 0012): a redelivered event has the same `ts`, and a repeated id with another `ts`
    is refused by the ingest's own read before this write. Built from the constant column names above only."""
    target = "decision_id, ts" if vendor == "postgresql" else "decision_id"
    source = _source(placeholder, len(DECISION_COLUMNS), types)
    return f"INSERT INTO audit_logs ({', '.join(DECISION_COLUMNS)}) {source} ON CONFLICT ({target}) DO NOTHING"


def insert_reason_sql(placeholder: str, types: Sequence[str] | None = None) -> str:
    return (
        f"INSERT INTO audit_log_reasons ({', '.join(REASON_COLUMNS)}) "
        f"{_source(placeholder, len(REASON_COLUMNS), types)} "
        "ON CONFLICT (decision_id, code) DO NOTHING"
    )


def row_values(r: DecisionRecord, ingested_at: object, adapt: Callable[[datetime], object]) -> tuple[object, ...]:
    """The `audit_logs` row for a record, in `DECISION_COLUMNS` order, with datetimes as `adapt` makes them."""
    return (
        r.decision_id, adapt(r.ts), r.gate_id, r.subject, r.strategy_id, r.strategy_key, r.symbol, r.action,
        r.intent_id, r.signal_id, r.decision, " ".join(r.reason_codes), r.policy_version, r.policy_checksum,
        r.trace_id, r.span_id, r.latency_us, r.trading_state, adapt(r.snapshot_ts) if r.snapshot_ts else None,
        r.audit_subject, r.payload.decode(), r.chain, r.seq, r.prev_hash, r.hash, lookup_key(r.trace_id),
        lookup_key(r.signal_id), ingested_at,
    )  # fmt: skip


def lookup_key(value: str | None) -> int | None:
    """What the trace and signal id indexes hold instead of the id: its signed 64-bit digest. These ids are random,
    so each new decision writes a page of each index wherever its key falls; an 8-byte key makes the index a third
    of the size (fewer pages to read and write as the store grows). Lookups match the key and then the id."""
    if value is None:
        return None
    return int.from_bytes(blake2b(value.encode(), digest_size=8).digest(), "big", signed=True)


def reason_rows(r: DecisionRecord, row: tuple[object, ...]) -> list[tuple[object, object, object]]:
    """The `audit_log_reasons` rows of a record whose `audit_logs` row is `row` (they share its stored `ts`)."""
    return [(r.decision_id, code, row[1]) for code in r.reason_codes]


# -- the per-minute rollups (audit/store/rollups.py) ------------------------------------------------------------
def add_minutes_sql(placeholder: str, types: Sequence[str] | None = None) -> str:
    """The upsert that adds a batch's counts (negative ones: retention's) to `audit_decision_minutes`: two
    writers adding to one minute at once both count (the row lock on PostgreSQL, the database lock on SQLite),
    and the addition commits or rolls back with the decisions it counts. A batch's counts hold each key once, so
    one statement never updates a row twice."""
    return (
        f"INSERT INTO audit_decision_minutes ({', '.join(MINUTE_COLUMNS)}) "
        f"{_source(placeholder, len(MINUTE_COLUMNS), types)} "
        "ON CONFLICT (minute, kind, key, decision) DO UPDATE SET n = audit_decision_minutes.n + excluded.n"
    )


def write_rows(
    cursor: Any,
    sql: Callable[[Sequence[str] | None], str],
    rows: Sequence[Sequence[object]],
    types: Sequence[str] | None,
) -> int:
    """`rows` written with one `executemany` of a row's statement, or (`types` given: PostgreSQL) with one
    statement that takes a column's values as one array each, and how many rows the database reports written.
    PostgreSQL sets up each INSERT into the partitioned `audit_logs` anew, and a statement a row cost its server
    more per decision than the ingest process spent (bench/audit_store); SQLite's `executemany` reuses its one
    prepared statement."""
    if not rows:
        return 0
    if types is None:
        cursor.executemany(sql(None), rows)
    else:
        cursor.execute(sql(types), [list(column) for column in zip(*rows, strict=True)])
    return cursor.rowcount


def add_minutes(
    cursor: Any,
    counts: MinuteCounts,
    adapt: Callable[[datetime], object],
    placeholder: str,
    types: Sequence[str] | None = None,
) -> None:
    rows = counts.rows()
    if rows:
        values = [(adapt(m), kind, key, d, n) for m, kind, key, d, n in rows]
        write_rows(cursor, lambda t: add_minutes_sql(placeholder, t), values, types)
    emptied = [row[0] for row in rows if row[-1] < 0]
    if emptied:
        # Counts taken away to zero leave no row behind (retention): only within the minutes touched.
        cursor.execute(
            f"DELETE FROM audit_decision_minutes WHERE minute >= {placeholder} AND minute <= {placeholder} "  # noqa: S608
            "AND n <= 0",
            [adapt(min(emptied)), adapt(max(emptied))],
        )


_COUNTED = "SELECT ts, strategy_key, symbol, decision, reason_codes, audit_subject FROM "


def count_stored(cursor: Any, where: str, params: Sequence[object], table: str = "audit_logs") -> MinuteCounts:
    """The serving decisions stored in `table` (`audit_logs`, or one of its daily partitions on PostgreSQL) that
    match `where` (SQL from constants only), counted."""
    counts = MinuteCounts()
    cursor.execute(f"{_COUNTED}{table} WHERE {where}", params)
    while batch := cursor.fetchmany(5000):
        for ts, strategy, symbol, decision, codes, subject in batch:
            counts.add(_utc(ts), strategy, symbol, decision, codes.split() if codes else (), subject)
    return counts


def rebuild_minutes(
    cursor: Any, vendor: str, adapt: Callable[[datetime], object], placeholder: str, start: datetime, end: datetime
) -> int:
    """Recount the minutes in [`start`, `end`) (both on a minute) from `audit_logs`, inside the caller's
    transaction. Ingest cannot add to them meanwhile: on PostgreSQL the rollup table is locked first (an ingest
    transaction that already counted is waited for, one that has not counts after this commits, from decisions
    this read did not see); on SQLite the first write takes the database's lock. Returns decisions counted."""
    p = placeholder
    if vendor == "postgresql":
        cursor.execute("LOCK TABLE audit_decision_minutes IN EXCLUSIVE MODE")
    bounds = [adapt(start), adapt(end)]
    cursor.execute(f"DELETE FROM audit_decision_minutes WHERE minute >= {p} AND minute < {p}", bounds)  # noqa: S608
    counts = count_stored(cursor, f"ts >= {p} AND ts < {p}", bounds)
    add_minutes(cursor, counts, adapt, placeholder)
    return counts.decided()


def rebuild_all(cursor: Any, vendor: str, adapt: Callable[[datetime], object], placeholder: str) -> int:
    """Recount every minute that holds a stored decision (migration 0009 for an existing database)."""
    cursor.execute("SELECT min(ts), max(ts) FROM audit_logs")
    low, high = cursor.fetchone()
    if low is None:
        return 0
    return sum(
        rebuild_minutes(cursor, vendor, adapt, placeholder, start, end)
        for start, end in rollup_chunks(_utc(low), _utc(high))
    )


def _utc(ts: object) -> datetime:
    """A stored `ts` as read by a raw cursor: an aware datetime (PostgreSQL) or SQLite's naive UTC text."""
    if isinstance(ts, datetime):
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(ts)).replace(tzinfo=UTC)
