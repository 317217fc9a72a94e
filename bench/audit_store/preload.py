"""Steps `preload_small` and `preload_large`: realistic records written straight into both tables, the rows the
store writes (audit/store/django_rows.py), with raw `executemany` in large transactions."""

import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

from audit.store.django_rows import insert_decision_sql, insert_reason_sql
from bench.audit_store.databases import Databases, stored_counts
from bench.audit_store.fleet import Event, Fleet


def _rows(events: list[Event]) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, str]]]:
    return [e.row for e in events], [r for e in events for r in e.reasons]


def _generate(fleet: Fleet, count: int, chunk: int, queue: Any) -> None:
    """In a second process (the other core): rows in chunks, then the fleet itself, so the parent continues the
    same history (chains, clock, policy versions) after the preload."""
    done = 0
    while done < count:
        n = min(chunk, count - done)
        queue.put(_rows(fleet.take(n)))
        done += n
    queue.put(fleet)


def preload(path: Path, fleet: Fleet, count: int, chunk: int = 50_000) -> dict[str, Any]:
    """`count` more realistic records written straight into both tables: one connection, large transactions,
    no fsync and an in-memory journal (for this connection only: the file's own settings are unchanged). Large
    loads generate their rows in a second process while this one writes."""
    from django.db import connections

    connections.close_all()
    con = sqlite3.connect(path, isolation_level=None)
    worker = None
    try:
        con.execute("PRAGMA journal_mode=MEMORY")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")  # 1 GB of pages for this connection
        con.execute("PRAGMA temp_store=MEMORY")
        insert, reasons = insert_decision_sql("?"), insert_reason_sql("?")
        if count > 2 * chunk:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue(maxsize=3)
            worker = ctx.Process(target=_generate, args=(fleet, count, chunk, queue), daemon=True)
            worker.start()

            def next_chunk(n: int) -> tuple[list[Any], list[Any]]:
                return queue.get(timeout=300)
        else:

            def next_chunk(n: int) -> tuple[list[Any], list[Any]]:
                return _rows(fleet.take(n))

        started = time.perf_counter()
        wait_s = write_s = 0.0
        done = 0
        while done < count:
            n = min(chunk, count - done)
            t = time.perf_counter()
            rows, reason_rows = next_chunk(n)
            got = time.perf_counter()
            con.execute("BEGIN")
            con.executemany(insert, rows)
            con.executemany(reasons, reason_rows)
            con.execute("COMMIT")
            write_s += time.perf_counter() - got
            wait_s += got - t
            done += len(rows)
            if done % 200_000 < chunk or done == count:
                print(f"    {done:>9,} preloaded ({time.perf_counter() - started:6.1f} s)", flush=True)
        if worker is not None:
            continued = queue.get(timeout=60)
            fleet.__dict__.update(continued.__dict__)
            worker.join(30)
    finally:
        con.close()
        if worker is not None and worker.is_alive():
            worker.terminate()
    return {
        "records": count,
        "seconds": round(time.perf_counter() - started, 1),
        "write_s": round(write_s, 1),
        "waited_for_rows_s": round(wait_s, 1),
        "generator": "second process" if worker is not None else "in process",
    }


def preload_small(path: Path, fleet: Fleet, count: int) -> dict[str, Any]:
    out = preload(path, fleet, count)
    print(f"  {count:,} records in {out['seconds']:.1f} s", flush=True)
    return out


def preload_large(path: Path, fleet: Fleet, total: int) -> dict[str, Any]:
    """Up to `total` records stored, continuing the fleet's history."""
    out = preload(path, fleet, total - stored_counts(path)[0])
    stored, reasons = stored_counts(path)
    out.update(stored=stored, reasons=reasons, db_mb=Databases.size_mb(path))
    print(
        f"  {out['records']:,} records in {out['seconds']:.1f} s ({out['records'] / out['seconds']:,.0f}/s; "
        f"SQLite writing {out['write_s']} s, waiting for rows {out['waited_for_rows_s']} s, generated "
        f"{out['generator']}); now {stored:,} decisions, {reasons:,} reason rows, {out['db_mb']:,} MB",
        flush=True,
    )
    return out
