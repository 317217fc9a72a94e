"""Step `setup`: fresh databases, each a copy of one migrated template, and Django pointed at one at a time. One
class per backend: SQLite (files copied from a template file) and PostgreSQL (an embedded server, databases made
with `CREATE DATABASE ... TEMPLATE`); each also writes the preload's rows its fastest way and sizes what it stores."""

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from audit.store.django_rows import DECISION_COLUMNS, REASON_COLUMNS, insert_decision_sql, insert_reason_sql

AUDIT_TABLES = ("audit_logs", "audit_log_reasons")
Writer = Callable[[list[tuple[Any, ...]], list[tuple[Any, ...]]], None]  # one transaction: decisions, reasons


def sqlite_ts(value: datetime) -> str:
    """How Django's SQLite backend stores an aware datetime with USE_TZ (naive UTC, `str()`)."""
    return str(value.astimezone(UTC).replace(tzinfo=None))


def postgresql_ts(value: datetime) -> datetime:
    """PostgreSQL takes the aware datetime itself (psycopg adapts it to timestamptz)."""
    return value


# -- databases -------------------------------------------------------------------------------------------------
class Databases:
    """Fresh copies of one migrated template; Django is pointed at one at a time. A copy is named by its `fresh`
    handle (a file on SQLite, a database name on PostgreSQL), which the other methods take."""

    vendor = "sqlite"
    ts = staticmethod(sqlite_ts)  # the rows' datetimes as this backend's `insert_decisions` writes them

    def __init__(self, work: Path, url: str, pragmas: list[str] | None = None) -> None:
        self.work = work
        os.environ["DJANGO_SETTINGS_MODULE"] = "cio_site.settings"
        os.environ["DATABASE_URL"] = url
        os.environ["CIO_STATE_DIR"] = str(work / "state")
        os.environ.setdefault("CIO_LOG_LEVEL", "WARNING")
        os.environ["CIO_AUDIT_STORE"] = "django"
        import django

        django.setup()
        if pragmas:  # a what-if for the settings (not the default): PRAGMAs on every Django connection
            from django.db.backends.signals import connection_created

            def apply(sender: Any, connection: Any, **kwargs: Any) -> None:
                if connection.vendor == "sqlite":
                    with connection.cursor() as cursor:
                        for pragma in pragmas:
                            cursor.execute(f"PRAGMA {pragma}")

            connection_created.connect(apply, weak=False)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        self.close()

    def close(self) -> None:
        from django.db import connections

        connections.close_all()

    def _point_django_at(self, name: str) -> None:
        from django.db import connections

        connections.settings["default"]["NAME"] = name  # every thread's next connection

    # -- SQLite ------------------------------------------------------------------------------------------------
    @property
    def template(self) -> Path:
        return self.work / "template.sqlite3"

    def fresh(self, name: str) -> Any:
        """Point Django at a new copy of the migrated template; returns its handle."""
        self.close()
        path = self.work / f"{name}.sqlite3"
        shutil.copyfile(self.template, path)
        self._point_django_at(str(path))
        return path

    def rows(self, handle: Any, sql: str) -> list[tuple[Any, ...]]:
        """A query's rows, read without Django's conversions (the values as stored)."""
        con = sqlite3.connect(handle)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def size_mb(self, handle: Any) -> float:
        return round(Path(handle).stat().st_size / 1e6, 1)

    @contextmanager
    def writer(self, handle: Any, bulk: bool) -> Iterator[Writer]:
        """Raw `executemany`, one transaction per call. `bulk` (the preload): no fsync and an in-memory journal for
        this connection only (the file's own settings are unchanged); otherwise the database's own settings."""
        self.close()
        con = sqlite3.connect(handle, isolation_level=None)
        try:
            if bulk:
                con.execute("PRAGMA journal_mode=MEMORY")
                con.execute("PRAGMA synchronous=OFF")
                con.execute("PRAGMA cache_size=-1000000")  # 1 GB of pages for this connection
                con.execute("PRAGMA temp_store=MEMORY")
            insert, reasons = insert_decision_sql("?"), insert_reason_sql("?")

            def write(rows: list[tuple[Any, ...]], reason_rows: list[tuple[Any, ...]]) -> None:
                con.execute("BEGIN" if bulk else "BEGIN IMMEDIATE")
                con.executemany(insert, rows)
                con.executemany(reasons, reason_rows)
                con.execute("COMMIT")

            yield write
        finally:
            con.close()

    def server_cpu(self) -> dict[int, float]:
        """CPU seconds of the database server's processes by pid: none on SQLite (it runs in this process)."""
        return {}

    def settle(self, handle: Any) -> dict[str, Any]:
        """What the database does by itself after a large load before it is measured: nothing on SQLite."""
        return {}

    def object_bytes(self, handle: Any) -> tuple[dict[str, int], int]:
        """Bytes of every table and index of the audit tables (SQLite's `dbstat`: the pages each one holds, free
        space in them included), and of the whole file."""
        con = sqlite3.connect(handle)
        try:
            names = dict(
                con.execute(
                    "SELECT name, tbl_name FROM sqlite_schema WHERE tbl_name IN ('audit_logs', 'audit_log_reasons')"
                ).fetchall()
            )
            sizes = {
                name: size
                for name, size in con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
                if name in names
            }
            whole = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        finally:
            con.close()
        return sizes, whole

    def plan(self, cursor: Any, sql: str) -> list[str]:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return [row[3] for row in cursor.fetchall()]


class PostgresDatabases(Databases):
    """An embedded PostgreSQL server (deploy/embedded_pg.py, its default settings, autovacuum on as in production);
    the template is migrated once and given the partitions of the days the fleet's decisions fall on (as
    `ensure_partitions` makes them a week ahead in production), and each fresh database is a copy of it."""

    vendor = "postgresql"
    ts = staticmethod(postgresql_ts)
    TEMPLATE = "bench_template"

    def __init__(self, work: Path, url: str, first_day: date, days: int) -> None:
        from urllib.parse import urlsplit, urlunsplit

        self.server_url = url
        parts = urlsplit(url)
        self._admin(f"CREATE DATABASE {self.TEMPLATE}")
        super().__init__(work, urlunsplit(parts._replace(path=f"/{self.TEMPLATE}")))
        from django.db import connection

        from audit.store import partitions

        with connection.cursor() as cursor:
            left = partitions.ensure_partitions(cursor, days_ahead=days, today=first_day)
        if left:
            raise RuntimeError(f"no partition could be made for {left}")
        self.close()

    def _connect(self, dbname: str, autocommit: bool = False) -> Any:
        import psycopg

        return psycopg.connect(self.server_url, dbname=dbname, autocommit=autocommit)

    def _admin(self, sql: str) -> None:
        with self._connect("postgres", autocommit=True) as con:
            con.execute(sql)

    def fresh(self, name: str) -> Any:
        self.close()  # a template must have no connections
        dbname = "bench_" + name.replace("-", "_")
        self._admin(f"CREATE DATABASE {dbname} TEMPLATE {self.TEMPLATE}")
        self._point_django_at(dbname)
        return dbname

    def rows(self, handle: Any, sql: str) -> list[tuple[Any, ...]]:
        with self._connect(handle) as con:
            return con.execute(sql).fetchall()

    def size_mb(self, handle: Any) -> float:
        return round(self.rows(handle, "SELECT pg_database_size(current_database())")[0][0] / 1e6, 1)

    @contextmanager
    def writer(self, handle: Any, bulk: bool) -> Iterator[Writer]:
        """`bulk` (the preload): `COPY ... FROM STDIN` (fresh rows: nothing to skip), without waiting for the WAL
        flush at commit (this session only); otherwise raw `executemany` of the store's own statements."""
        self.close()
        con = self._connect(handle, autocommit=True)  # so that each `transaction()` below is one and commits
        try:
            if bulk:
                con.execute("SET synchronous_commit = off")
                decisions = f"COPY audit_logs ({', '.join(DECISION_COLUMNS)}) FROM STDIN"
                reasons = f"COPY audit_log_reasons ({', '.join(REASON_COLUMNS)}) FROM STDIN"

                def write(rows: list[tuple[Any, ...]], reason_rows: list[tuple[Any, ...]]) -> None:
                    with con.transaction(), con.cursor() as cursor:
                        for sql, values in ((decisions, rows), (reasons, reason_rows)):
                            with cursor.copy(sql) as copy:
                                for row in values:
                                    copy.write_row(row)
            else:
                insert, insert_reasons = insert_decision_sql("%s", self.vendor), insert_reason_sql("%s")

                def write(rows: list[tuple[Any, ...]], reason_rows: list[tuple[Any, ...]]) -> None:
                    with con.transaction(), con.cursor() as cursor:
                        cursor.executemany(insert, rows)
                        cursor.executemany(insert_reasons, reason_rows)

            yield write
        finally:
            con.close()

    def server_cpu(self) -> dict[int, float]:
        """The postmaster's and its children's (backends, WAL writer, checkpointer, autovacuum) CPU seconds."""
        from bench.audit_store.run import cpu_seconds

        root = int((self.work / "pg" / "postmaster.pid").read_text().split()[0])
        pids = [root]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == root:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
        out = {}
        for pid in pids:
            try:
                out[pid] = cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                continue
        return out

    def settle(self, handle: Any, timeout_s: float = 300.0) -> dict[str, Any]:
        """Autovacuum's analyze (and vacuum) of the loaded tables, as production's server does by itself within
        minutes of a load: waited for, not run by hand (no VACUUM or ANALYZE of ours; autovacuum never analyzes
        the partitioned parent, and production's planner does without that too)."""
        started = time.perf_counter()
        # Autovacuum's own rule (its default settings): analyze once the rows changed since the last analyze pass
        # the threshold plus the scale factor times the table's rows.
        sql = (
            "SELECT relname FROM pg_stat_user_tables WHERE (relname LIKE 'audit_logs%' OR relname = "
            "'audit_log_reasons') AND n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::int "
            "+ current_setting('autovacuum_analyze_scale_factor')::float * n_live_tup"
        )
        waiting = self.rows(handle, sql)
        while waiting and time.perf_counter() - started < timeout_s:
            time.sleep(2)
            waiting = self.rows(handle, sql)
        out = {"autoanalyze_wait_s": round(time.perf_counter() - started, 1), "not_analyzed": [r[0] for r in waiting]}
        vacuumed = self.rows(
            handle,
            "SELECT count(*) FILTER (WHERE last_autovacuum IS NOT NULL), count(*) FROM pg_stat_user_tables "
            "WHERE (relname LIKE 'audit_logs%' OR relname = 'audit_log_reasons') AND n_live_tup > 0",
        )[0]
        out["autovacuumed_tables"] = f"{vacuumed[0]} of {vacuumed[1]}"
        print(
            f"  waited {out['autoanalyze_wait_s']} s for autovacuum to analyze the loaded tables "
            f"(not analyzed: {out['not_analyzed'] or 'none'}; vacuumed so far: {out['autovacuumed_tables']})",
            flush=True,
        )
        return out

    def object_bytes(self, handle: Any) -> tuple[dict[str, int], int]:
        """Bytes of each audit table summed over its partitions (every daily one and DEFAULT): the heap (with its
        free space and visibility maps), its TOAST (with TOAST's index), and each index by its parent's name."""
        tables = self.rows(
            handle,
            "WITH rel AS (SELECT c.oid, coalesce(p.relname, c.relname) AS owner FROM pg_class c "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE c.relkind = 'r' AND (c.relname = 'audit_log_reasons' OR p.relname = 'audit_logs')) "
            "SELECT owner, sum(pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)),"
            " sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)), sum(pg_total_relation_size(c.oid))"
            " FROM rel JOIN pg_class c ON c.oid = rel.oid GROUP BY owner",
        )
        indexes = self.rows(
            handle,
            "SELECT coalesce(p.relname, c.relname), sum(pg_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_index x ON x.indexrelid = c.oid JOIN pg_class t ON t.oid = x.indrelid "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
            "LEFT JOIN pg_inherits ti ON ti.inhrelid = t.oid LEFT JOIN pg_class tp ON tp.oid = ti.inhparent "
            "WHERE t.relname = 'audit_log_reasons' OR tp.relname = 'audit_logs' GROUP BY 1",
        )
        sizes: dict[str, int] = {}
        total = 0
        for owner, heap, toast, whole in tables:
            sizes[owner] = int(heap)
            sizes[f"{owner} (TOAST)"] = int(toast)
            total += int(whole)
        sizes.update({name: int(size) for name, size in indexes})
        if sum(sizes.values()) != total:  # the parts must add up to pg_total_relation_size
            raise RuntimeError(f"audit objects add up to {sum(sizes.values())} bytes, not {total}")
        return sizes, self.rows(handle, "SELECT pg_database_size(current_database())")[0][0]

    def plan(self, cursor: Any, sql: str) -> list[str]:
        cursor.execute(f"EXPLAIN {sql}")
        return [row[0] for row in cursor.fetchall()]

    def where_rows_are(self, handle: Any) -> dict[str, int]:
        """Decisions per partition: DEFAULT must hold none (a day without a partition is not production's)."""
        return dict(
            self.rows(
                handle,
                "SELECT tableoid::regclass::text, count(*) FROM audit_logs GROUP BY 1 ORDER BY 1",
            )
        )


def check_columns() -> None:
    from audit import models

    model = tuple(f.column for f in models.Decision._meta.concrete_fields if not f.primary_key)
    if set(model) != set(DECISION_COLUMNS):
        raise RuntimeError(f"audit_logs columns changed: model {model}, the store's rows {DECISION_COLUMNS}")


def setup(work: Path, backend: str, url: str | None, pragmas: list[str], first_day: date, days: int) -> dict[str, Any]:
    if backend == "postgresql":
        if url is None:
            raise RuntimeError("no PostgreSQL server")
        dbs: Databases = PostgresDatabases(work, url, first_day, days)
        where = f"PostgreSQL (embedded, data in {work / 'pg'}), partitions for {days + 1} days from the fleet's first"
    else:
        dbs = Databases(work, f"sqlite:///{work / 'template.sqlite3'}", pragmas)
        where = f"SQLite in {work}"
    check_columns()
    print(f"  migrated a fresh {where}", flush=True)
    if pragmas:
        print(f"  WHAT-IF: every Django connection runs PRAGMA {'; PRAGMA '.join(pragmas)}", flush=True)
    return {"databases": dbs}


def stored_counts(dbs: Databases, handle: Any) -> tuple[int, int]:
    return (
        dbs.rows(handle, "SELECT count(*) FROM audit_logs")[0][0],
        dbs.rows(handle, "SELECT count(*) FROM audit_log_reasons")[0][0],
    )


def storage(dbs: Databases, handle: Any, event_bytes: float) -> dict[str, Any]:
    """Step `storage`: bytes per stored decision, every table and index of the audit tables counted, against the
    mean event's size."""
    decisions = stored_counts(dbs, handle)[0]
    sizes, whole = dbs.object_bytes(handle)
    total = sum(sizes.values())
    per = total / max(decisions, 1)
    out = {
        "decisions": decisions,
        "bytes_per_decision": round(per),
        "file_bytes_per_decision": round(whole / max(decisions, 1)),
        "event_bytes": round(event_bytes),
        "ratio": round(per / event_bytes, 2) if event_bytes else None,
        "by_object": {
            name: round(size / max(decisions, 1)) for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])
        },
    }
    whole_name = "the whole file" if dbs.vendor == "sqlite" else "the whole database"
    print(
        f"  {decisions:,} decisions: {per:,.0f} bytes each with their indexes and reasons "
        f"({out['file_bytes_per_decision']:,} of {whole_name}), the event {event_bytes:,.0f} bytes: "
        f"{out['ratio']}x (target <= 2)",
        flush=True,
    )
    print("  per decision: " + ", ".join(f"{n} {b:,}" for n, b in out["by_object"].items()), flush=True)
    return out
