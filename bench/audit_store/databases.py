"""Step `setup`: fresh SQLite files, each a copy of one migrated template, and Django pointed at one at a time."""

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from audit.store.django_rows import DECISION_COLUMNS


# -- databases -------------------------------------------------------------------------------------------------
class Databases:
    """Fresh SQLite files, each a copy of one migrated template; Django is pointed at one at a time."""

    def __init__(self, work: Path, pragmas: list[str] | None = None) -> None:
        self.work = work
        self.template = work / "template.sqlite3"
        os.environ["DJANGO_SETTINGS_MODULE"] = "cio_site.settings"
        os.environ["DATABASE_URL"] = f"sqlite:///{self.template}"
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

    def fresh(self, name: str) -> Path:
        """Point Django (every thread's next connection) at a new copy of the migrated template."""
        from django.db import connections

        self.close()
        path = self.work / f"{name}.sqlite3"
        shutil.copyfile(self.template, path)
        connections.settings["default"]["NAME"] = str(path)
        return path

    @staticmethod
    def size_mb(path: Path) -> float:
        return round(path.stat().st_size / 1e6, 1)


def check_columns() -> None:
    from audit import models

    model = tuple(f.column for f in models.Decision._meta.concrete_fields if not f.primary_key)
    if set(model) != set(DECISION_COLUMNS):
        raise RuntimeError(f"audit_logs columns changed: model {model}, the store's rows {DECISION_COLUMNS}")


def setup(work: Path, pragmas: list[str]) -> dict[str, Any]:
    dbs = Databases(work, pragmas)
    check_columns()
    print(f"  migrated a fresh SQLite database in {work}", flush=True)
    if pragmas:
        print(f"  WHAT-IF: every Django connection runs PRAGMA {'; PRAGMA '.join(pragmas)}", flush=True)
    return {"databases": dbs}


def stored_counts(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(path)
    try:
        return (
            con.execute("SELECT count(*) FROM audit_logs").fetchone()[0],
            con.execute("SELECT count(*) FROM audit_log_reasons").fetchone()[0],
        )
    finally:
        con.close()


def storage(path: Path, event_bytes: float) -> dict[str, Any]:
    """Step `storage`: bytes on disk per stored decision, every table and index of the audit tables counted (SQLite's
    `dbstat`: the pages each one holds, free space in them included), against the mean event's size."""
    con = sqlite3.connect(path)
    try:
        decisions = con.execute("SELECT count(*) FROM audit_logs").fetchone()[0]
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
        file_bytes = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    total = sum(sizes.values())
    per = total / max(decisions, 1)
    out = {
        "decisions": decisions,
        "bytes_per_decision": round(per),
        "file_bytes_per_decision": round(file_bytes / max(decisions, 1)),
        "event_bytes": round(event_bytes),
        "ratio": round(per / event_bytes, 2) if event_bytes else None,
        "by_object": {
            name: round(size / max(decisions, 1)) for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])
        },
    }
    print(
        f"  {decisions:,} decisions: {per:,.0f} bytes each with their indexes and reasons "
        f"({out['file_bytes_per_decision']:,} of the whole file), the event {event_bytes:,.0f} bytes: "
        f"{out['ratio']}x (target <= 2)",
        flush=True,
    )
    print("  per decision: " + ", ".join(f"{n} {b:,}" for n, b in out["by_object"].items()), flush=True)
    return out
