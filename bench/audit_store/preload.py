"""Steps `preload_small` and `preload_large`: realistic records written straight into both tables, the rows the
store writes (audit/store/django_rows.py), in large transactions: raw `executemany` on SQLite, `COPY` on
PostgreSQL. Like the ingest, rows only: the per-minute rollups (`audit_decision_minutes`) are not preloaded, so
they hold only what the measured ingests add."""

import multiprocessing
import time
from typing import Any

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


def preload(dbs: Databases, handle: Any, fleet: Fleet, count: int, chunk: int = 50_000) -> dict[str, Any]:
    """`count` more realistic records written straight into both tables: one connection, large transactions, the
    backend's fastest way (`Databases.writer`). Large loads generate their rows in a second process while this one
    writes."""
    worker = queue = None
    if count > 2 * chunk:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue(maxsize=3)
        worker = ctx.Process(target=_generate, args=(fleet, count, chunk, queue), daemon=True)
        worker.start()
    started = time.perf_counter()
    wait_s = write_s = 0.0
    done = 0
    try:
        with dbs.writer(handle, bulk=True) as write:
            while done < count:
                n = min(chunk, count - done)
                t = time.perf_counter()
                rows, reason_rows = queue.get(timeout=300) if queue is not None else _rows(fleet.take(n))
                got = time.perf_counter()
                write(rows, reason_rows)
                write_s += time.perf_counter() - got
                wait_s += got - t
                done += len(rows)
                if done % 200_000 < chunk or done == count:
                    print(f"    {done:>9,} preloaded ({time.perf_counter() - started:6.1f} s)", flush=True)
        if worker is not None and queue is not None:
            continued = queue.get(timeout=60)
            fleet.__dict__.update(continued.__dict__)
            worker.join(30)
    finally:
        if worker is not None and worker.is_alive():
            worker.terminate()
    return {
        "records": count,
        "seconds": round(time.perf_counter() - started, 1),
        "write_s": round(write_s, 1),
        "waited_for_rows_s": round(wait_s, 1),
        "generator": "second process" if worker is not None else "in process",
    }


def preload_small(dbs: Databases, handle: Any, fleet: Fleet, count: int) -> dict[str, Any]:
    out = preload(dbs, handle, fleet, count)
    print(f"  {count:,} records in {out['seconds']:.1f} s", flush=True)
    out["settle"] = dbs.settle(handle)
    return out


def preload_large(dbs: Databases, handle: Any, fleet: Fleet, total: int) -> dict[str, Any]:
    """Up to `total` records stored, continuing the fleet's history."""
    out = preload(dbs, handle, fleet, total - stored_counts(dbs, handle)[0])
    stored, reasons = stored_counts(dbs, handle)
    out.update(stored=stored, reasons=reasons, db_mb=dbs.size_mb(handle))
    print(
        f"  {out['records']:,} records in {out['seconds']:.1f} s ({out['records'] / out['seconds']:,.0f}/s; "
        f"{dbs.vendor} writing {out['write_s']} s, waiting for rows {out['waited_for_rows_s']} s, generated "
        f"{out['generator']}); now {stored:,} decisions, {reasons:,} reason rows, {out['db_mb']:,} MB",
        flush=True,
    )
    placed = getattr(dbs, "where_rows_are", None)
    if placed is not None:
        out["rows_by_partition"] = placed(handle)
        print(f"  decisions by partition: {out['rows_by_partition']}", flush=True)
    out["settle"] = dbs.settle(handle)
    return out
