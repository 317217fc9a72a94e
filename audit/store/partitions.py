"""PostgreSQL only: `audit_logs` is partitioned by day on `ts` (migration 0012), one partition per UTC day named
`audit_logs_pYYYYMMDD`, plus `audit_logs_default` for a day that has none yet, so no insert ever fails for want of
a partition. Partitions are made ahead of time (`ensure_partitions`: migration 0012, `prepare_release`, the ingest
at start and hourly), because rows already in the DEFAULT partition for a day block creating that day's partition
(PostgreSQL refuses: the default would hold rows outside its new bounds); such a day stays in DEFAULT, readable
and guarded like any other, and is reported. Everything here takes a DB-API cursor, so migrations use it too."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from audit import triggers

PARENT = "audit_logs"
DEFAULT = "audit_logs_default"
DAYS_AHEAD = 7  # today and the next week: a release or an ingest restart within a week keeps DEFAULT empty


def name_of(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def _bound(day: date) -> str:
    # A literal, not a parameter: partition bounds must be constants in the DDL.
    return datetime.combine(day, time(), UTC).isoformat(sep=" ")


def is_partitioned(cursor: Any) -> bool:
    cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'audit_logs'::regclass)")
    return bool(cursor.fetchone()[0])


def create_day(cursor: Any, day: date) -> bool:
    """The day's partition, unless it exists; False when rows of that day sit in DEFAULT (it cannot be made)."""
    name = name_of(day)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return True
    low, high = _bound(day), _bound(day + timedelta(days=1))
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE ts >= %s AND ts < %s)", [low, high])  # noqa: S608
    if cursor.fetchone()[0]:
        return False
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} FOR VALUES FROM ('{low}') TO ('{high}')")
    # The row trigger is the parent's (cloned onto every partition); TRUNCATE of one partition needs its own.
    triggers.guard_truncate(cursor.execute, name)
    return True


def ensure_partitions(cursor: Any, days_ahead: int = DAYS_AHEAD, today: date | None = None) -> list[date]:
    """Today's partition and the next `days_ahead` days' (idempotent). Returns the days left to DEFAULT."""
    start = today or datetime.now(UTC).date()
    return [day for day in (start + timedelta(days=n) for n in range(days_ahead + 1)) if not create_day(cursor, day)]


def day_partitions(cursor: Any) -> list[tuple[date, str]]:
    """The daily partitions, oldest first."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit_logs'::regclass AND c.relname <> %s ORDER BY c.relname",
        [DEFAULT],
    )
    return [(datetime.strptime(name[-8:], "%Y%m%d").date(), name) for (name,) in cursor.fetchall()]


def covered_counts(cursor: Any, name: str, through: Mapping[str, int]) -> dict[str, int] | None:
    """How many records of each chain the partition `name` holds, when every one of them is covered by `through`
    (chain: the sequence number retention may remove up to); None when any is not (or belongs to no chain)."""
    chains = list(through)
    cursor.execute(
        f"SELECT p.chain, count(*), bool_and(v.seq IS NOT NULL AND p.seq <= v.seq) FROM {name} p "  # noqa: S608
        "LEFT JOIN unnest(%s::text[], %s::bigint[]) AS v(chain, seq) ON v.chain = p.chain GROUP BY p.chain",
        [chains, [through[c] for c in chains]],
    )
    counts = {}
    for chain, n, covered in cursor.fetchall():
        if not covered:
            return None
        counts[chain] = n
    return counts
