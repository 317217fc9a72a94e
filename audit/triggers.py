"""The database-level guard: triggers that refuse to change an audit row (created by migration 0002).

UPDATE is refused on every backend, DELETE on PostgreSQL too (SQLite's DELETE is what test databases are
flushed with, so there the models refuse it instead)."""

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
)

_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    # No '%' placeholders: drivers that parse parameters (psycopg 3) would read them as their own.
    "BEGIN RAISE EXCEPTION USING MESSAGE = 'audit records are immutable (' || TG_OP || ' on ' || TG_TABLE_NAME "
    "|| ')'; END $$"
)


def create(execute: Any, vendor: str, tables: tuple[str, ...] = TABLES) -> None:
    if vendor == "postgresql":
        execute(_PG_FUNCTION)
    for table in tables:
        if vendor == "sqlite":
            execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_append_only BEFORE UPDATE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END"
            )
        elif vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )


def drop(execute: Any, vendor: str, tables: tuple[str, ...] = TABLES, drop_function: bool = False) -> None:
    for table in tables:
        if vendor == "sqlite":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only")
        elif vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    if vendor == "postgresql" and drop_function:  # only when no table's trigger needs it any more
        execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
