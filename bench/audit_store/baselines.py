"""Steps `bare_bulk_create` and `bare_executemany`: the same rows without the ingest (no NATS, no parsing, no
dedupe), one transaction per batch: what the store costs alone, and the floor of the database itself (raw
`executemany` of the store's statements: sqlite3 or psycopg)."""

import time
from datetime import datetime
from typing import Any

from audit.store.django_rows import DECISION_COLUMNS, row_values
from bench.audit_store.databases import Databases
from bench.audit_store.fleet import Event


def _decision_row(r: Any) -> Any:
    """The ORM model for a record: the bare `bulk_create` baseline's way of writing it (the store's row, with
    datetimes left to the ORM; `ingested_at` is the model's to stamp)."""
    from audit import models

    values = dict(zip(DECISION_COLUMNS, row_values(r, None, _as_is), strict=True))
    del values["ingested_at"]
    return models.Decision(**values)


def _as_is(value: datetime) -> datetime:
    return value


# -- baselines without the ingest ------------------------------------------------------------------------------
def bare_bulk_create(events: list[Event], batch_size: int) -> dict[str, Any]:
    """The same rows through the ORM's `bulk_create`, one transaction per batch: what the store costs alone."""
    from django.db import connection, transaction

    from audit import models
    from audit.records import DecisionRecord

    records = [DecisionRecord.from_message(e.audit_subject, e.payload, e.headers) for e in events]
    connection.ensure_connection()
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(0, len(records), batch_size):
        batch = records[i : i + batch_size]
        with transaction.atomic():
            models.Decision.objects.bulk_create([_decision_row(r) for r in batch], batch_size=500)
            models.DecisionReason.objects.bulk_create(
                [
                    models.DecisionReason(decision_id=r.decision_id, code=c, ts=r.ts)
                    for r in batch
                    for c in r.reason_codes
                ],
                batch_size=500,
            )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return _figures(len(events), elapsed, cpu)


def bare_executemany(dbs: Databases, handle: Any, events: list[Event], batch_size: int) -> dict[str, Any]:
    """The same rows as raw `executemany`, one transaction per batch, with the database's own settings: the
    floor of the database itself at this durability."""
    with dbs.writer(handle, bulk=False) as write:
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(0, len(events), batch_size):
            batch = events[i : i + batch_size]
            write([e.row for e in batch], [r for e in batch for r in e.reasons])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _figures(len(events), elapsed, cpu)


def _figures(events: int, elapsed: float, cpu: float) -> dict[str, Any]:
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "rate": round(events / elapsed),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
    }


def _reported(what: str, out: dict[str, Any]) -> dict[str, Any]:
    print(
        f"  {what}, same rows and batches: {out['rate']:>7,} events/s; CPU {out['cpu_us_per_event']} us/event",
        flush=True,
    )
    return out


def bulk_create_step(dbs: Databases, events: list[Event], batch_size: int) -> dict[str, Any]:
    dbs.fresh("bare-bulk-create")
    return _reported("bare bulk_create", bare_bulk_create(events, batch_size))


def executemany_step(dbs: Databases, events: list[Event], batch_size: int) -> dict[str, Any]:
    driver = "psycopg" if dbs.vendor == "postgresql" else "sqlite3"
    return _reported(
        f"raw {driver} executemany", bare_executemany(dbs, dbs.fresh("bare-executemany"), events, batch_size)
    )
