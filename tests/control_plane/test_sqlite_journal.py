"""The embedded default's SQLite file runs a write-ahead log with full syncs (cio_site/settings.py): a reader that
keeps its transaction open (an admin page, the cockpit's snapshot) does not hold up a commit of the audit ingest,
and a committed batch, which the ingest acknowledges to JetStream right after, survives a power cut."""

import sqlite3
import time

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _file() -> str:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's journal only")
    connection.ensure_connection()
    return connection.settings_dict["NAME"]


def test_every_connection_runs_a_write_ahead_log_with_full_syncs() -> None:
    _file()
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_open_read_does_not_hold_up_a_commit() -> None:
    path = _file()
    reader = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    marker = f"journal-test-{time.time_ns()}"
    try:
        reader.execute("BEGIN")
        before = reader.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, datetime('now'))", (marker, marker)
        )
        writer.execute("COMMIT")  # with a rollback journal: "database is locked" while the reader's read is open
        assert reader.execute("SELECT count(*) FROM django_migrations").fetchone()[0] == before  # its snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM django_migrations").fetchone()[0] == before + 1
    finally:
        writer.execute("DELETE FROM django_migrations WHERE app = ?", (marker,))
        reader.close()
        writer.close()
