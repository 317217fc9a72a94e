"""Steps `ingest_empty`, `ingest_at_small` and `ingest_at_large`: the events published to `CIO_AUDIT` (and the
gates' signed checkpoints of them), then the real `AuditIngest` timed while it drains them into `DjangoAuditStore`."""

import asyncio
import contextlib
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from bench.audit_store.databases import Databases
from bench.audit_store.fleet import Event, Fleet
from bench.audit_store.run import cpu_seconds, pct
from cio_kernel.audit_chain import CHAIN_HEADER, HASH_HEADER, SEQ_HEADER

STREAM = "CIO_AUDIT"


# -- the ingest over real NATS ---------------------------------------------------------------------------------
async def publish(nc: Any, events: list[Event]) -> float:
    """A fresh `CIO_AUDIT` (the gate's configuration) holding exactly `events`; returns the seconds it took."""
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=["cio.audit.decision.>"],
            storage=StorageType.FILE,
            duplicate_window=600.0,
            max_age=7 * 86_400.0,
            max_bytes=8 * 1024**3,
            discard=DiscardPolicy.OLD,
        )
    )
    started = time.perf_counter()
    window = 1000
    for i in range(0, len(events), window):
        await asyncio.gather(
            *(js.publish(e.audit_subject, e.payload, headers=e.headers) for e in events[i : i + window])
        )
    info = await js.stream_info(STREAM)
    if info.state.messages != len(events):
        raise RuntimeError(f"{STREAM} holds {info.state.messages} events, {len(events)} were published")
    return time.perf_counter() - started


CHECKPOINT_EVERY = 1000  # a signed checkpoint per chain every 1,000 events: more often than gates sign at this rate


async def publish_checkpoints(nc: Any, events: list[Event]) -> int:
    """A fresh `CIO_AUDIT_CHECKPOINTS` holding the gates' signed heads of these events' chains (one every
    `CHECKPOINT_EVERY` events of a chain, and each chain's last): what the ingest copies beside the events."""
    from nats.js.errors import NotFoundError

    from cio_kernel.audit_checkpoint import (
        CHECKPOINT_STREAM,
        CHECKPOINT_SUBJECT_PREFIX,
        AuditCheckpoint,
        checkpoint_subject,
    )
    from cio_kernel.audit_stream import checkpoint_stream_config
    from cio_kernel.policy.signing import PolicySigner

    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(CHECKPOINT_STREAM)
    await js.add_stream(checkpoint_stream_config(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX))
    signer = PolicySigner.generate()
    heads: dict[str, tuple[int, str]] = {}
    chosen: list[tuple[str, int, str]] = []
    for e in events:
        chain, seq, digest = e.headers[CHAIN_HEADER], int(e.headers[SEQ_HEADER]), e.headers[HASH_HEADER]
        heads[chain] = (seq, digest)
        if seq % CHECKPOINT_EVERY == 0:
            chosen.append((chain, seq, digest))
    chosen += [(chain, seq, digest) for chain, (seq, digest) in heads.items() if seq % CHECKPOINT_EVERY]
    for chain, seq, digest in chosen:
        checkpoint = AuditCheckpoint.sign(signer, chain, seq, digest, chain.rpartition(".")[0], datetime.now(UTC))
        await js.publish(checkpoint_subject(chain), checkpoint.model_dump_json().encode())
    return len(chosen)


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the server's processes spent in between (one that started meanwhile counts from zero; one that
    ended meanwhile is missed)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


async def drain(dbs: Databases, nats_url: str, nats_pid: int, events: list[Event], batch_size: int) -> dict[str, Any]:
    """Publish `events` (and the gates' signed checkpoints of them), then time a real `AuditIngest` storing all of
    them in the current database, copying the checkpoints beside them as `manage.py audit_ingest` does."""
    import nats
    from django.db import connections

    from audit.ingest import AuditIngest
    from audit.store.django_db import DjangoAuditStore

    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    try:
        publish_s = await publish(nc, events)
        checkpoints = await publish_checkpoints(nc, events)
        store = DjangoAuditStore()
        try:  # as `manage.py audit_ingest` runs it (rejection bursts become incidents), without the live feed
            from audit.incidents import RejectionBurstDetector

            ingest = AuditIngest(nc, store, batch_size=batch_size, bursts=RejectionBurstDetector())
        except (ImportError, TypeError):
            ingest = AuditIngest(nc, store, batch_size=batch_size)
        await ingest.start()
        stop = asyncio.Event()
        copying = None
        try:
            before = await ingest._call(store.count_decisions)  # opens the store thread's connection first
            batch_s: list[float] = []
            db_cpu = dbs.server_cpu()
            cpu, nats_cpu, started = time.process_time(), cpu_seconds(nats_pid), time.perf_counter()
            if hasattr(ingest, "_checkpoint_loop"):  # beside the events, in its own task, as `run` does
                copying = asyncio.create_task(ingest._checkpoint_loop(stop))
            idle_since = None
            while ingest.counters.received < len(events):
                t = time.perf_counter()
                handled = await ingest.step()
                if handled:
                    batch_s.append(time.perf_counter() - t)
                    idle_since = None
                elif idle_since is None:
                    idle_since = t
                elif t - idle_since > 10:
                    raise RuntimeError(f"the ingest stalled at {ingest.counters.received} of {len(events)}")
            elapsed = time.perf_counter() - started
            cpu, nats_cpu = time.process_time() - cpu, cpu_seconds(nats_pid) - nats_cpu
            db_cpu_s = _cpu_delta(db_cpu, dbs.server_cpu())
            if copying is not None:  # (not timed) the few checkpoints still on their way
                stop.set()
                copying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await copying
                while await ingest.checkpoint_step(timeout_s=0.2):
                    pass
            after = await ingest._call(store.count_decisions)
            await ingest._call(connections.close_all)
        finally:
            if copying is not None and not copying.done():
                copying.cancel()
            await ingest.close()
    finally:
        await nc.close()
    c = ingest.counters
    if after - before != len(events) or c.stored != len(events):
        raise RuntimeError(f"stored {c.stored} (table grew by {after - before}) of {len(events)} events")
    median = statistics.median(batch_s)
    return {
        "events": len(events),
        "batch_size": batch_size,
        "stored_before": before,
        "seconds": round(elapsed, 3),
        "rate": round(len(events) / elapsed),
        "median_batch_rate": round(batch_size / median) if median else None,
        "batch_p50_ms": round(median * 1000, 2),
        "batch_p99_ms": round(pct(batch_s, 99) * 1000, 2),
        "cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
        "nats_cpu_us_per_event": round(nats_cpu / len(events) * 1e6, 1),
        "db_server_cpu_us_per_event": round(db_cpu_s / len(events) * 1e6, 1) if dbs.vendor != "sqlite" else None,
        "publish_s": round(publish_s, 2),
        "duplicates": c.duplicates,
        "quarantined": c.quarantined,
        "incidents": getattr(c, "incidents", None),
        "checkpoints": getattr(c, "checkpoints", None),
        "checkpoints_published": checkpoints,
    }


def ingest_line(r: dict[str, Any]) -> str:
    server = r.get("db_server_cpu_us_per_event")
    return (
        f"{r['rate']:>7,} events/s ({r['events']:,} in {r['seconds']:.2f} s, batches of {r['batch_size']}: "
        f"p50 {r['batch_p50_ms']} ms, p99 {r['batch_p99_ms']} ms); CPU {r['cpu_us_per_event']} us/event in this "
        f"process + {r['nats_cpu_us_per_event']} us in nats-server"
        + (f" + {server} us in the PostgreSQL server" if server is not None else "")
    )


def ingest_empty(
    dbs: Databases, nats_url: str | None, nats_pid: int, events: list[Event], batch: int
) -> dict[str, Any]:
    if nats_url is None:
        raise RuntimeError("no NATS")
    dbs.fresh("ingest-empty")
    out = asyncio.run(drain(dbs, nats_url, nats_pid, events, batch))
    print(f"  AuditIngest into an empty database: {ingest_line(out)}", flush=True)
    return out


def ingest_at(
    dbs: Databases, nats_url: str | None, nats_pid: int, fleet: Fleet, count: int, batch: int
) -> dict[str, Any]:
    """`count` more of the fleet's events into the database as it is (the scale steps)."""
    if nats_url is None:
        raise RuntimeError("no NATS")
    dbs.close()
    out = asyncio.run(drain(dbs, nats_url, nats_pid, fleet.take(count), batch))
    print(f"  AuditIngest with {out['stored_before']:,} stored: {ingest_line(out)}", flush=True)
    return out
