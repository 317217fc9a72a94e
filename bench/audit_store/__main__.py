"""`make bench`, second part: the audit store's Django backend under the gate's load, on its embedded default
(SQLite, `--backend sqlite`, the default) or on production's database (`--backend postgresql`); `make bench` runs
both.

Starts its own NATS (JetStream) from the pip wheel and works on fresh databases in a temporary folder, migrated
the way `manage.py migrate` does: SQLite files copied from a migrated template file, or an embedded PostgreSQL
server (deploy/embedded_pg.py, its default settings, autovacuum on) whose databases are made from a migrated
template database that already has the daily partitions of `audit_logs` for the days the generated decisions fall
on (production makes them a week ahead, audit/store/partitions.py: no decision lands in DEFAULT, and the preload
reports where they landed). The audit events are built the way a gate builds them (`encode_audit_event`,
UUIDv7 decision ids, one hash chain per gate, the gate's headers: `Nats-Msg-Id` and the chain link) and
published to `CIO_AUDIT`; the real `AuditIngest` (durable pull consumer, one store write per batch, ack after the
write, rejection bursts to incidents as `manage.py audit_ingest` runs it; not the live feed, which needs Redis)
drains them into `DjangoAuditStore`. Every target is a ratio to a baseline measured in this run:

1. ingest rate into an empty database ÷ a bare `bulk_create` of the same rows (same batch size, one transaction
   per batch, no NATS, no parsing, no dedupe), with CPU per event beside each;
2. ingest rate ÷ the gate's maximum sustained rate, read from `.cio/bench/results.json` when `bench.gate_latency`
   wrote it just before (target >= 1.0; n/a otherwise);
3. ingest rate with `--audit-records` (1,000,000) records stored ÷ the rate with 10,000 stored (target >= 0.8);
   the preload between the two writes realistic rows (both tables, as `insert_decisions` writes them, checked
   against what it stored) in large transactions (raw `executemany` on SQLite, `COPY` on PostgreSQL; not the
   per-minute rollups: they hold what the measured ingests add), then, on PostgreSQL, waits for autovacuum to
   analyze the loaded tables as it would in production (no VACUUM or ANALYZE is run by hand);
4. the decisions list at that size: p50/p99 of `find_decisions` over varied filters and cursor pages (target p99
   < 50 ms), with the plan of every query shape that missed (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
   PostgreSQL);
5. storage per decision at that size, every audit table and index counted (on PostgreSQL every partition with its
   TOAST and indexes: `pg_total_relation_size`), ÷ the mean event's size (target <= 2).

A step that fails is reported and the benchmark goes on. Figures are merged into `.cio/bench/results.json` under
`audit.store` (SQLite) or `audit.store_postgresql`, beside what the gate benchmark put there.
"""

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.audit_store import baselines
from bench.audit_store.databases import Databases, setup, storage
from bench.audit_store.fleet import SPACING_S, T0, Fleet, rows_check
from bench.audit_store.gate import GATE_TARGET, ingest_vs_gate
from bench.audit_store.ingest import ingest_at, ingest_empty
from bench.audit_store.preload import preload_large, preload_small
from bench.audit_store.queries import QUERY_TARGET_MS, query_step
from bench.audit_store.run import Run, machine

ROOT = Path(__file__).resolve().parents[2]
SCALE_TARGET = 0.8
STORAGE_TARGET = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite", help="the Django database")
    parser.add_argument("--events", type=int, default=20_000, help="events per ingest measurement")
    parser.add_argument("--audit-records", type=int, default=1_000_000, help="records stored for the scale steps")
    parser.add_argument("--small-records", type=int, default=10_000, help="records stored for the scale baseline")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=None, help="the ingest's batch (default: AuditIngest's)")
    parser.add_argument("--gate-max-age-s", type=float, default=1800.0, help="how old the gate's figure may be")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA",
        help="what-if: run e.g. 'journal_mode=WAL' on every Django connection (repeatable; not the default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed) for a closer look")
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()

    started_wall, started = time.time(), time.perf_counter()
    info = machine()
    print(
        f"audit store benchmark ({args.backend}) on {info['cpu']}, {info['cpus']} cores, Python {info['python']}, "
        f"SQLite {info['sqlite']}",
        flush=True,
    )
    run = Run(args)
    results = run.results
    results["backend"] = args.backend
    work = Path(tempfile.mkdtemp(prefix="cio-bench-audit-"))
    nats_proc = pg_server = None
    try:
        url = None
        if args.backend == "postgresql":
            from deploy.embedded_pg import start

            pg_server, url = start(work / "pg")
        dbs = run.step("setup", lambda: setup(work, args.backend, url, args.sqlite_pragma, T0.date(), _days(args)))
        if isinstance(dbs, dict):
            dbs = dbs.pop("databases")
        try:
            from deploy.servers import free_port, nats_server

            nats_proc = nats_server(free_port(), work / "nats", work / "nats.log").start()
        except Exception as exc:
            results["failed_steps"]["nats"] = repr(exc)
            print(f"could not start NATS: {exc!r} (the ingest steps are skipped)", flush=True)
        if dbs is not None:
            try:
                _measure(run, dbs, nats_proc, started_wall)
            except Exception as exc:
                results["failed_steps"]["run"] = repr(exc)
                print(f"audit benchmark run failed: {exc!r}", flush=True)
    except Exception as exc:
        results["failed_steps"]["database"] = repr(exc)
        print(f"could not start the database: {exc!r}", flush=True)
    finally:
        if nats_proc is not None:
            nats_proc.stop()
        if pg_server is not None:
            pg_server.cleanup()
        if args.keep:
            print(f"work folder kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["machine"] = info
    results["sqlite_pragmas"] = args.sqlite_pragma
    summary(results, args)
    write(Path(args.out), results, args.backend)


def _days(args: argparse.Namespace) -> int:
    """Days after the first the scale steps' decisions span (at most every record of one fleet), and one more."""
    records = max(args.audit_records, args.small_records + args.events) + 2 * args.events
    return math.ceil(records * SPACING_S / 86_400) + 1


def _store_cpu_us(ingest: dict[str, Any]) -> float:
    """CPU per event of the ingest process and, on PostgreSQL, of the server, where most of the store's work is."""
    return ingest["cpu_us_per_event"] + (ingest.get("db_server_cpu_us_per_event") or 0.0)


def _measure(run: Run, dbs: Databases, nats_proc: Any, started_wall: float) -> None:
    from audit.ingest import AuditIngest

    args, results = run.args, run.results
    batch = args.batch_size or AuditIngest.__dataclass_fields__["batch_size"].default
    fleet = Fleet(args.seed, dbs.ts)
    nats_url = f"nats://127.0.0.1:{nats_proc.port}" if nats_proc else None
    nats_pid = nats_proc.proc.pid if nats_proc else 0

    sample = run.step("rows_check", lambda: rows_check(dbs, args.seed + 1))
    events = fleet.take(args.events)
    ingest = run.step("ingest_empty", lambda: ingest_empty(dbs, nats_url, nats_pid, events, batch))
    base = run.step("bare_bulk_create", lambda: baselines.bulk_create_step(dbs, events, batch))
    run.step("bare_executemany", lambda: baselines.executemany_step(dbs, events, batch))
    if ingest and base:
        results["ingest_vs_bare"] = round(ingest["rate"] / base["rate"], 2)
        print(f"  ingest / bare bulk_create: {results['ingest_vs_bare']:.2f}", flush=True)
    rate = ingest_vs_gate(results, ingest, Path(args.out), started_wall, args.gate_max_age_s)

    # -- scale: the same ingest at 10k and at 1M stored ---------------------------------------------------------
    scale_db = dbs.fresh("scale")
    scale = Fleet(args.seed + 2, dbs.ts)
    small, large = args.small_records, max(args.audit_records, args.small_records + args.events)
    run.step("preload_small", lambda: preload_small(dbs, scale_db, scale, small))
    at_small = run.step("ingest_at_small", lambda: ingest_at(dbs, nats_url, nats_pid, scale, args.events, batch))
    loaded = run.step("preload_large", lambda: preload_large(dbs, scale_db, scale, large))
    at_large = (
        run.step("ingest_at_large", lambda: ingest_at(dbs, nats_url, nats_pid, scale, args.events, batch))
        if loaded
        else None
    )
    if at_small and at_large:
        results["scale_ratio"] = round(at_large["rate"] / at_small["rate"], 2)
        # The same ratio in CPU (events per CPU second): what the store's own work does as it grows, apart from
        # the disk's syncs and from whatever else the machine's two cores were doing during either step.
        results["scale_cpu_ratio"] = round(_store_cpu_us(at_small) / _store_cpu_us(at_large), 2)
        print(
            f"  at {at_large['stored_before']:,} / at {at_small['stored_before']:,}: {results['scale_ratio']:.2f} "
            f"(target >= {SCALE_TARGET}); in CPU per event {results['scale_cpu_ratio']:.2f}",
            flush=True,
        )
    if at_large and rate:
        results["ingest_at_large_vs_gate"] = round(at_large["rate"] / rate, 2)
        print(
            f"  with {at_large['stored_before']:,} stored, ingest / gate max sustained: "
            f"{results['ingest_at_large_vs_gate']:.2f} (for information: below 1.0 the stream's backlog grows while "
            "a gate runs at its maximum)",
            flush=True,
        )
    if loaded:
        run.step("query", lambda: query_step(dbs, scale_db, scale, args.queries, args.seed + 3))
        event_bytes = (sample or {}).get("mean_payload_bytes", 0)
        run.step("storage", lambda: storage(dbs, scale_db, event_bytes))


def summary(results: dict[str, Any], args: argparse.Namespace) -> None:
    m = results.get("machine", {})
    ingest = results.get("ingest_empty") or {}
    base = results.get("bare_bulk_create") or {}
    q = results.get("query") or {}
    backend = "PostgreSQL" if args.backend == "postgresql" else "SQLite"
    print(
        f"audit summary, {backend} ({m.get('cpu')}, {m.get('cpus')} cores; targets are ratios to this run's baselines):"
    )
    if ingest:
        server = ingest.get("db_server_cpu_us_per_event")
        print(
            f"  ingest into empty {backend}: {ingest['rate']:,} events/s, {ingest['cpu_us_per_event']} us CPU/event"
            + (f" (+ {server} us in the server)" if server is not None else "")
        )
    if base:
        print(
            f"  bare bulk_create: {base['rate']:,} events/s, {base['cpu_us_per_event']} us CPU/event; ingest / bare "
            f"{results.get('ingest_vs_bare', 'n/a')}"
        )
    ratio = results.get("ingest_vs_gate")
    verdict = "n/a" if ratio is None else f"{ratio:.2f} ({'ok' if ratio >= GATE_TARGET else 'MISSED'})"
    print(f"  ingest / gate max sustained: {verdict} (target >= {GATE_TARGET})")
    if results.get("ingest_at_large_vs_gate") is not None:
        print(f"  the same with {args.audit_records:,} stored: {results['ingest_at_large_vs_gate']:.2f}")
    if "scale_ratio" in results:
        r = results["scale_ratio"]
        print(
            f"  ingest at {args.audit_records:,} / at {args.small_records:,}: {r:.2f} "
            f"({'ok' if r >= SCALE_TARGET else 'MISSED'}; target >= {SCALE_TARGET}); in CPU per event "
            f"{results.get('scale_cpu_ratio', 'n/a')}"
        )
    if q:
        ok = q["p99_ms"] < QUERY_TARGET_MS
        print(
            f"  decisions list at {q.get('stored', 0):,}: p99 {q['p99_ms']} ms ({'ok' if ok else 'MISSED'}; target "
            f"< {QUERY_TARGET_MS:.0f} ms)"
        )
    st = results.get("storage") or {}
    if st.get("ratio") is not None:
        ok = st["ratio"] <= STORAGE_TARGET
        print(
            f"  storage per decision at {st['decisions']:,}: {st['bytes_per_decision']:,} bytes, "
            f"{st['ratio']:.2f}x the event ({'ok' if ok else 'MISSED'}; target <= {STORAGE_TARGET})"
        )
    pre = results.get("preload_large")
    if pre:
        print(f"  preload of {pre['records']:,} records: {pre['seconds']:.1f} s")
    if results.get("failed_steps"):
        print(f"  failed steps: {', '.join(results['failed_steps'])}")
    print(f"  the audit benchmark took {results.get('elapsed_s')} s")


def write(out: Path, audit: dict[str, Any], backend: str = "sqlite") -> None:
    """Merge into the gate benchmark's results: its own `audit` figures (events in the stream) and the other
    backend's stay. SQLite's go under `audit.store`, PostgreSQL's under `audit.store_postgresql`."""
    key = "store" if backend == "sqlite" else f"store_{backend}"
    prefix = "audit_store." if backend == "sqlite" else f"audit_store_{backend}."
    try:
        results = json.loads(out.read_text()) if out.exists() else {}
        if not isinstance(results, dict):
            results = {}
    except (OSError, ValueError):
        results = {}
    merged = results.get("audit") if isinstance(results.get("audit"), dict) else {}
    merged = {
        k: v for k, v in merged.items() if k in ("requests", "events", "exactly_once", "store", "store_postgresql")
    }
    merged[key] = audit
    results["audit"] = merged
    failed = results.setdefault("failed_steps", {})
    for name in [k for k in failed if k.startswith(prefix)]:
        del failed[name]
    for name, error in audit.get("failed_steps", {}).items():
        failed[f"{prefix}{name}"] = error
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        print(f"results merged into {out} (key audit.{key})")
    except OSError as exc:
        print(f"could not write {out}: {exc!r}")


if __name__ == "__main__":
    main()
