"""The database-level guard: triggers that refuse to change or remove an audit row (created by the migrations).

UPDATE and DELETE are refused on every backend (SQLite: a trigger for each; PostgreSQL: one row trigger for both),
and TRUNCATE on PostgreSQL too (a statement trigger: TRUNCATE fires no row trigger). On a partitioned table
(PostgreSQL's `audit_logs`, audit/store/partitions.py) the row trigger is the parent's, which PostgreSQL clones onto
every partition, present and future; the TRUNCATE trigger is not cloned, so each partition gets its own.
Only someone who may drop a trigger (the tables' owner) can lift the guard: `lifted` does it inside one
transaction, for retention (`audit_prune`) and for the test suite's flush between tests. Someone with those rights
can do the same, which is what the gates' signed checkpoints and `audit_verify` are for (docs/audit.md)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

TABLES = (
    "audit_logs",
    "audit_log_reasons",
    "audit_quarantine",
    "thoughts",
    "incidents",
    "alerts",
    "alert_events",
    "mcp_calls",
    "audit_checkpoints",
)

_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    # No '%' placeholders: drivers that parse parameters (psycopg 3) would read them as their own.
    "BEGIN RAISE EXCEPTION USING MESSAGE = 'audit records are immutable (' || TG_OP || ' on ' || TG_TABLE_NAME "
    "|| ')'; END $$"
)
_SQLITE_REFUSE = "BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END"

Execute = Callable[..., Any]


def _each_partition(table: str, *statements: str) -> str:
    """A DO block running `statements` (SQL text with `@PART` for the quoted partition name and `@TRIG` for its
    TRUNCATE trigger's) for each partition of `table`; none when it is not partitioned. No '%' (see above)."""
    part, trig = "' || quote_ident(p) || '", "' || quote_ident(p || '_no_truncate') || '"
    body = " ".join(f"EXECUTE '{s.replace('@PART', part).replace('@TRIG', trig)}';" for s in statements)
    loop = "DO $$ DECLARE p text; BEGIN FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c"
    return f"{loop} ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('{table}') LOOP {body} END LOOP; END $$"


def _truncate_sql(table: str, trigger: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {trigger} ON {table}",
        f"CREATE TRIGGER {trigger} BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
    ]


def guard_truncate(execute: Execute, table: str) -> None:
    """PostgreSQL: refuse TRUNCATE of `table` (a new partition; its row trigger comes from its parent)."""
    for sql in _truncate_sql(table, f"{table}_no_truncate"):
        execute(sql)


def create(execute: Execute, vendor: str, tables: tuple[str, ...] = TABLES) -> None:
    if vendor == "postgresql":
        execute(_PG_FUNCTION)
    for table in tables:
        if vendor == "sqlite":
            execute(f"CREATE TRIGGER IF NOT EXISTS {table}_append_only BEFORE UPDATE ON {table} {_SQLITE_REFUSE}")
            execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} {_SQLITE_REFUSE}")
        elif vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            guard_truncate(execute, table)
            execute(_each_partition(table, *_truncate_sql("@PART", "@TRIG")))


def drop(execute: Execute, vendor: str, tables: tuple[str, ...] = TABLES, drop_function: bool = False) -> None:
    for table in tables:
        if vendor == "sqlite":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only")
            execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")  # and its clones on partitions
            execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            execute(_each_partition(table, "DROP TRIGGER IF EXISTS @TRIG ON @PART"))
    if vendor == "postgresql" and drop_function:  # only when no table's trigger needs it any more
        execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


def drop_removal_guard(execute: Execute, vendor: str, tables: tuple[str, ...]) -> None:
    """Back to the guard before migration 0007: SQLite refusing UPDATE only, PostgreSQL not refusing TRUNCATE."""
    for table in tables:
        if vendor == "sqlite":
            execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")


@contextmanager
def lifted(execute: Execute, vendor: str, tables: tuple[str, ...] = TABLES) -> Iterator[None]:
    """The guard off for what runs inside, back on after. Call it inside a transaction: both databases change
    triggers transactionally, so a failure rolls the guard back into place with everything else (and on PostgreSQL
    the dropped triggers' table locks keep every other session out meanwhile)."""
    drop(execute, vendor, tables)
    yield
    create(execute, vendor, tables)
