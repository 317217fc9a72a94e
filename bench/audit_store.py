"""`make bench`, second part: the audit store's embedded default (the Django backend on SQLite) under the gate's load.

Starts its own NATS (JetStream) from the pip wheel and works on fresh SQLite files in a temporary folder, migrated
the way `manage.py migrate` does. The audit events are built the way a gate builds them (`encode_audit_event`,
random 128-bit decision ids, one hash chain per gate, the gate's headers: `Nats-Msg-Id` and the chain link) and
published to `CIO_AUDIT`; the real `AuditIngest` (durable pull consumer, one store write per batch, ack after the
write, rejection bursts to incidents as `manage.py audit_ingest` runs it; not the live feed, which needs Redis)
drains them into `DjangoAuditStore`. Every target is a ratio to a baseline measured in this run:

1. ingest rate into an empty database ÷ a bare `bulk_create` of the same rows (same batch size, one transaction
   per batch, no NATS, no parsing, no dedupe), with CPU per event beside each;
2. ingest rate ÷ the gate's maximum sustained rate, read from `.cio/bench/results.json` when `bench.gate_latency`
   wrote it just before (target >= 1.0; n/a otherwise);
3. ingest rate with `--audit-records` (1,000,000) records stored ÷ the rate with 10,000 stored (target >= 0.8);
   the preload between the two writes realistic rows (both tables, as `insert_decisions` writes them, checked
   against it) with raw `executemany` in large transactions;
4. the decisions list at that size: p50/p99 of `find_decisions` over varied filters and cursor pages (target p99
   < 50 ms), with SQLite's `EXPLAIN QUERY PLAN` of every query shape that missed.

A step that fails is reported and the benchmark goes on. Figures are merged into `.cio/bench/results.json` under
`audit` (beside what the gate benchmark put there).
"""

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cio_kernel.audit_chain import CHAIN_HEADER, GENESIS, HASH_HEADER, PREV_HEADER, SEQ_HEADER, chain_id, link_hash
from cio_kernel.contracts.audit_event import encode_audit_event
from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.identity import strategy_key

ROOT = Path(__file__).resolve().parents[1]
STREAM = "CIO_AUDIT"
QUERY_TARGET_MS = 50.0
SCALE_TARGET = 0.8
GATE_TARGET = 1.0

# -- realistic audit events ------------------------------------------------------------------------------------
T0 = datetime(2026, 3, 2, tzinfo=UTC)
SPACING_S = 0.5  # one decision every half second on average: 1M records span about six days
VERSION_EVERY = 20_000  # a policy activation every 20k decisions (~50 versions in 1M)
GATES = (("gate-a", 5), ("gate-b", 4), ("gate-c", 1))
STRATEGIES = [
    ("momentum-1", 18),
    ("mean-revert", 14),
    ("TA Bot Mean Reversion", 12),
    ("Iceberg Order Detector", 9),
    ("ta-bot", 8),
    ("llm-swing", 6),
    ("grid-btc", 6),
    ("breakout-4h", 5),
    ("funding-arb", 4),
    ("vwap-exec", 4),
    ("rsi-divergence", 3),
    ("pairs-eth-btc", 3),
    ("news-sentiment", 2),
    ("liquidation-hunter", 2),
    ("orderflow-imbalance", 1),
    ("dca-weekly", 1),
]
PRICES = {
    "BTCUSDT": 97_000.0,
    "ETHUSDT": 3_400.0,
    "SOLUSDT": 240.0,
    "BNBUSDT": 690.0,
    "XRPUSDT": 2.4,
    "ADAUSDT": 1.05,
    "DOGEUSDT": 0.38,
    "AVAXUSDT": 48.0,
    "LINKUSDT": 24.0,
    "DOTUSDT": 9.1,
    "MATICUSDT": 0.62,
    "LTCUSDT": 110.0,
    "ATOMUSDT": 11.0,
    "NEARUSDT": 6.8,
    "APTUSDT": 12.5,
    "ARBUSDT": 1.1,
    "OPUSDT": 2.6,
    "INJUSDT": 31.0,
    "SUIUSDT": 4.2,
    "TRXUSDT": 0.25,
}
SYMBOL_WEIGHTS = [30, 20, 10, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
REJECT_CODES = [
    ("CONFIDENCE_TOO_LOW", 30),
    ("ORDER_NOTIONAL_EXCEEDED", 14),
    ("SYMBOL_EXPOSURE_EXCEEDED", 10),
    ("STOP_LOSS_REQUIRED", 8),
    ("RATE_LIMITED", 8),
    ("POSITION_SIZE_EXCEEDED", 6),
    ("PRICE_COLLAR_BREACHED", 6),
    ("INTENT_STALE", 5),
    ("DUPLICATE_INTENT", 4),
    ("SYMBOL_NOT_ALLOWED", 4),
    ("STOP_LOSS_TOO_WIDE", 3),
    ("TRADING_HALTED", 1),
    ("LEVERAGE_EXCEEDED", 1),
]
RETRY_CODES = [("POLICY_STALE", 3), ("SNAPSHOT_STALE", 3), ("DECISION_TIMEOUT", 1)]
AUDIT_SUBJECTS = {
    "APPROVED": "cio.audit.decision.approved",
    "REJECTED": "cio.audit.decision.rejected",
    "RETRY_SAFE": "cio.audit.decision.retry_safe",
}
CHECKSUM = "sha256:" + "5e" * 32
# audit_logs columns in the order the preload writes them (checked against the model at run time).
COLUMNS = (
    "decision_id",
    "ts",
    "gate_id",
    "subject",
    "strategy_id",
    "strategy_key",
    "symbol",
    "action",
    "intent_id",
    "signal_id",
    "decision",
    "reason_codes",
    "policy_version",
    "policy_checksum",
    "trace_id",
    "span_id",
    "latency_us",
    "trading_state",
    "snapshot_ts",
    "audit_subject",
    "payload",
    "chain",
    "seq",
    "prev_hash",
    "hash",
    "ingested_at",
)


def _cum(weighted: list[tuple[str, int]] | list[int]) -> list[int]:
    total, out = 0, []
    for item in weighted:
        total += item[1] if isinstance(item, tuple) else item
        out.append(total)
    return out


def _db_ts(value: datetime) -> str:
    """How Django's SQLite backend stores an aware datetime with USE_TZ (naive UTC, `str()`)."""
    return str(value.astimezone(UTC).replace(tzinfo=None))


@dataclass(slots=True)
class Event:
    audit_subject: str
    decision_id: str
    payload: bytes
    headers: dict[str, str]
    row: tuple[Any, ...]  # audit_logs values in COLUMNS order
    reasons: list[tuple[str, str, str]]  # audit_log_reasons (decision_id, code, ts)


class Fleet:
    """A few gates deciding for a fleet of strategies: audit events in time order, each gate's chain linked."""

    def __init__(self, seed: int = 20260302, time_ordered_ids: bool = False) -> None:
        self.rng = random.Random(seed)
        self.time_ordered_ids = time_ordered_ids
        self.k = 0
        self.chains = {gate: [chain_id(gate, 1_772_400_000 + n), 0, GENESIS] for n, (gate, _) in enumerate(GATES)}
        self.gates = [g for g, _ in GATES]
        self.gate_cum = _cum(list(GATES))
        self.strategies = [s for s, _ in STRATEGIES]
        self.strategy_cum = _cum(STRATEGIES)
        self.symbols = list(PRICES)
        self.symbol_cum = _cum(SYMBOL_WEIGHTS)
        self.reject = [c for c, _ in REJECT_CODES]
        self.reject_cum = _cum(REJECT_CODES)
        self.retry = [c for c, _ in RETRY_CODES]
        self.retry_cum = _cum(RETRY_CODES)
        self._shed = Reason(code="OVERLOADED", message="the gate is overloaded: retry")

    def reason(self, code: str) -> Any:
        rng = self.rng
        if code in ("POLICY_STALE", "SNAPSHOT_STALE", "DECISION_TIMEOUT"):
            return Reason(code=code, message=f"{code.lower().replace('_', ' ')}: retry")
        limit = round(rng.choice((0.5, 0.6, 5e4, 2.5e5, 1e6, 30.0)), 3)
        return Reason(code=code, message=code.lower().replace("_", " "), observed=round(limit * 1.3, 3), limit=limit)

    def next(self) -> Event:
        rng = self.rng
        k = self.k
        self.k += 1
        ts = T0 + timedelta(seconds=(k + rng.random()) * SPACING_S)
        gate = rng.choices(self.gates, cum_weights=self.gate_cum)[0]
        strategy = rng.choices(self.strategies, cum_weights=self.strategy_cum)[0]
        symbol = rng.choices(self.symbols, cum_weights=self.symbol_cum)[0]
        action = "buy" if rng.random() < 0.52 else "sell"
        roll = rng.random()
        decision = "APPROVED" if roll < 0.55 else "REJECTED" if roll < 0.93 else "RETRY_SAFE"
        if self.time_ordered_ids:  # what-if: microseconds since the epoch, then 72 random bits (still 32 hex)
            decision_id = f"{int(ts.timestamp() * 1_000_000):014x}{rng.getrandbits(72):018x}"
        else:  # as the gate does today (gate/runtime/pipeline.py)
            decision_id = f"{rng.getrandbits(128):032x}"
        trace_id, span_id = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        traceparent = f"00-{trace_id}-{span_id}-01"
        latency_us = int(rng.lognormvariate(4.6, 0.6))
        shed = decision == "RETRY_SAFE" and rng.random() < 0.5
        version = 1 + k // VERSION_EVERY
        if decision == "APPROVED":
            reasons = []
        elif decision == "REJECTED":
            codes = [rng.choices(self.reject, cum_weights=self.reject_cum)[0]]
            if rng.random() < 0.2:
                codes.append(rng.choices(self.reject, cum_weights=self.reject_cum)[0])
            reasons = [self.reason(c) for c in dict.fromkeys(codes)]
        elif shed:
            reasons = [self._shed]
        else:
            reasons = [self.reason(rng.choices(self.retry, cum_weights=self.retry_cum)[0])]
        if shed:  # shed unparsed: no intent, no policy, no state
            strategy_id = key = symbol_id = side = intent_id = signal_id = None
            intent = policy_version = checksum = state = None
            intake = "intent.trading.unparsed"
        else:
            strategy_id, symbol_id, side = strategy, symbol, action
            key = strategy_key(strategy)
            price = round(PRICES[symbol] * (1 + (rng.random() - 0.5) * 0.01), 6)
            signal_id = intent_id = f"sig-{rng.getrandbits(64):016x}"
            intent = {
                "strategy_id": strategy,
                "symbol": symbol,
                "action": action,
                "confidence": round(rng.uniform(0.3, 0.99), 3),
                "price": price,
                "quantity": round(1000.0 / price, 6),
                "current_price": price,
                "source": "strategy-fleet",
                "strategy": strategy,
                "signal_id": signal_id,
                "stop_loss": round(price * (0.98 if action == "buy" else 1.02), 6),
                "timestamp": (ts - timedelta(milliseconds=rng.randint(2, 40))).isoformat(),
                "_otel_trace_context": {"traceparent": traceparent},
            }
            policy_version, checksum = version, CHECKSUM
            trading = "active" if rng.random() < 0.97 else "reducing"
            state = {"trading_state": trading, "snapshot_ts": ts - timedelta(milliseconds=rng.randint(200, 4000))}
            intake = f"intent.trading.{symbol}"
        payload = encode_audit_event(
            decision_id=decision_id,
            ts=ts,
            gate_id=gate,
            subject=intake,
            strategy_id=strategy_id,
            strategy_key=key,
            symbol=symbol_id,
            action=side,
            intent_id=intent_id,
            decision=decision,
            reasons=reasons,
            field_errors=None,
            policy_version=policy_version,
            policy_checksum=checksum,
            trace_id=trace_id,
            span_id=span_id,
            traceparent=traceparent,
            latency_us=latency_us,
            signal_subject=f"signals.trading.{strategy}" if decision == "APPROVED" else None,
            intent=intent,
            raw_intent=None,
            state=state,
        )
        audit_subject = AUDIT_SUBJECTS[decision]
        link = self.chains[gate]
        chain, seq, prev = link[0], link[1] + 1, link[2]
        digest = link_hash(chain, seq, prev, audit_subject, payload)
        link[1], link[2] = seq, digest
        headers = {"Nats-Msg-Id": decision_id, CHAIN_HEADER: chain, SEQ_HEADER: str(seq), PREV_HEADER: prev}
        headers[HASH_HEADER] = digest
        ts_s = _db_ts(ts)
        codes = list(dict.fromkeys(r.code for r in reasons))
        row = (
            decision_id,
            ts_s,
            gate,
            intake,
            strategy_id,
            key,
            symbol_id,
            side,
            intent_id,
            signal_id,
            decision,
            " ".join(codes),
            policy_version,
            checksum,
            trace_id,
            span_id,
            latency_us,
            state["trading_state"] if state else None,
            _db_ts(state["snapshot_ts"]) if state else None,
            audit_subject,
            payload.decode(),
            chain,
            seq,
            prev,
            digest,
            _db_ts(ts + timedelta(milliseconds=150 + rng.randint(0, 900))),
        )
        return Event(audit_subject, decision_id, payload, headers, row, [(decision_id, c, ts_s) for c in codes])

    def take(self, count: int) -> list[Event]:
        return [self.next() for _ in range(count)]


# -- machine and process figures ---------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "date": datetime.now(UTC).date().isoformat(),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


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
    if set(model) != set(COLUMNS):
        raise RuntimeError(f"audit_logs columns changed: model {model}, benchmark {COLUMNS}")


def check_rows_like_insert_decisions(events: list[Event]) -> None:
    """The preload's rows must be exactly what `insert_decisions` writes for the same published event."""
    from audit.records import DecisionRecord
    from audit.store.django_db import _DECISION_COLUMNS, row_values

    if tuple(COLUMNS) != _DECISION_COLUMNS:
        raise RuntimeError(f"preload columns {COLUMNS} are not the store's {_DECISION_COLUMNS}")
    for ev in events:
        record = DecisionRecord.from_message(ev.audit_subject, ev.payload, ev.headers)
        expected = row_values(record, ev.row[-1])  # the same ingested_at: the one column the store stamps
        for column, value, wanted in zip(COLUMNS, ev.row, expected, strict=True):
            if value != wanted:
                raise RuntimeError(f"preload row differs from insert_decisions in {column}: {value!r} != {wanted!r}")
        if [(ev.decision_id, c, ev.row[1]) for c in record.reason_codes] != ev.reasons:
            raise RuntimeError(f"preload reasons differ from insert_decisions for {ev.decision_id}")


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
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        insert = f"INSERT INTO audit_logs ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})"
        reasons = "INSERT INTO audit_log_reasons (decision_id, code, ts) VALUES (?, ?, ?)"
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


def stored_counts(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(path)
    try:
        return (
            con.execute("SELECT count(*) FROM audit_logs").fetchone()[0],
            con.execute("SELECT count(*) FROM audit_log_reasons").fetchone()[0],
        )
    finally:
        con.close()


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


async def drain(nats_url: str, nats_pid: int, events: list[Event], batch_size: int) -> dict[str, Any]:
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
        "publish_s": round(publish_s, 2),
        "duplicates": c.duplicates,
        "quarantined": c.quarantined,
        "incidents": getattr(c, "incidents", None),
        "checkpoints": getattr(c, "checkpoints", None),
        "checkpoints_published": checkpoints,
    }


def ingest_line(r: dict[str, Any]) -> str:
    return (
        f"{r['rate']:>7,} events/s ({r['events']:,} in {r['seconds']:.2f} s, batches of {r['batch_size']}: "
        f"p50 {r['batch_p50_ms']} ms, p99 {r['batch_p99_ms']} ms); CPU {r['cpu_us_per_event']} us/event in this "
        f"process + {r['nats_cpu_us_per_event']} us in nats-server"
    )


def _decision_row(r: Any) -> Any:
    """The ORM model for a record: the bare `bulk_create` baseline's way of writing it."""
    from audit import models

    return models.Decision(
        decision_id=r.decision_id,
        ts=r.ts,
        gate_id=r.gate_id,
        subject=r.subject,
        strategy_id=r.strategy_id,
        strategy_key=r.strategy_key,
        symbol=r.symbol,
        action=r.action,
        intent_id=r.intent_id,
        signal_id=r.signal_id,
        decision=r.decision,
        reason_codes=" ".join(r.reason_codes),
        policy_version=r.policy_version,
        policy_checksum=r.policy_checksum,
        trace_id=r.trace_id,
        span_id=r.span_id,
        latency_us=r.latency_us,
        trading_state=r.trading_state,
        snapshot_ts=r.snapshot_ts,
        audit_subject=r.audit_subject,
        payload=r.payload.decode(),
        chain=r.chain,
        seq=r.seq,
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


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
    return {
        "events": len(events),
        "seconds": round(elapsed, 3),
        "rate": round(len(events) / elapsed),
        "cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
    }


def bare_executemany(path: Path, events: list[Event], batch_size: int) -> dict[str, Any]:
    """The same rows as raw `executemany`, one transaction per batch, with the database's own settings: the
    floor of SQLite itself at this durability."""
    from django.db import connections

    connections.close_all()
    con = sqlite3.connect(path, isolation_level=None)
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    insert = f"INSERT INTO audit_logs ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})"
    reasons = "INSERT INTO audit_log_reasons (decision_id, code, ts) VALUES (?, ?, ?)"
    try:
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(0, len(events), batch_size):
            batch = events[i : i + batch_size]
            con.execute("BEGIN IMMEDIATE")
            con.executemany(insert, [e.row for e in batch])
            con.executemany(reasons, [r for e in batch for r in e.reasons])
            con.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        con.close()
    return {
        "events": len(events),
        "seconds": round(elapsed, 3),
        "rate": round(len(events) / elapsed),
        "cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
    }


# -- the decisions list ----------------------------------------------------------------------------------------
def query_mix(fleet: Fleet, rng: random.Random, versions: int) -> list[tuple[str, Callable[[], Any]]]:
    """Query shapes a reviewer uses (each call draws new parameters); `cursor` follows pages of the others."""
    from audit.store.base import DecisionQuery

    end = T0 + timedelta(seconds=fleet.k * SPACING_S)

    def window(hours_low: float, hours_high: float) -> tuple[datetime, datetime]:
        length = timedelta(hours=rng.uniform(hours_low, hours_high))
        span = (end - T0) - length
        start = T0 + span * rng.random() if span > timedelta(0) else T0
        return start, start + length

    def strategy() -> str:
        return rng.choices(fleet.strategies, cum_weights=fleet.strategy_cum)[0]

    def symbol() -> str:
        return rng.choices(fleet.symbols, cum_weights=fleet.symbol_cum)[0]

    def code() -> str:
        return rng.choice([*fleet.reject, *fleet.retry, "OVERLOADED"])

    def decision() -> str:
        return rng.choice(("APPROVED", "REJECTED", "RETRY_SAFE"))

    def strategy_decision() -> Any:
        return DecisionQuery(strategy_key=strategy_key(strategy()), decision=decision())

    def symbol_range() -> Any:
        since, until = window(1, 24)
        return DecisionQuery(symbol=symbol(), since=since, until=until)

    def reason_code() -> Any:
        return DecisionQuery(reason_code=code())

    def reason_range() -> Any:
        since, until = window(1, 24)
        return DecisionQuery(reason_code=code(), since=since, until=until)

    def policy_version() -> Any:
        return DecisionQuery(policy_version=rng.randint(1, versions))

    def newest() -> Any:
        return DecisionQuery()

    def strategy_symbol_decision() -> Any:
        return DecisionQuery(strategy_key=strategy_key(strategy()), symbol=symbol(), decision=decision())

    def symbol_reason() -> Any:
        return DecisionQuery(symbol=symbol(), reason_code=rng.choice(fleet.reject[:4]))

    return [
        ("newest (no filter)", newest),
        ("strategy + decision", strategy_decision),
        ("symbol + time range", symbol_range),
        ("reason_code", reason_code),
        ("reason_code + time range", reason_range),
        ("policy_version", policy_version),
        ("strategy + symbol + decision", strategy_symbol_decision),
        ("symbol + reason_code", symbol_reason),
    ]


def run_queries(fleet: Fleet, count: int, seed: int) -> dict[str, Any]:
    from dataclasses import replace

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.store.django_db import DjangoAuditStore

    store = DjangoAuditStore()
    rng = random.Random(seed)
    versions = 1 + (fleet.k - 1) // VERSION_EVERY
    shapes = query_mix(fleet, rng, versions)
    timings: dict[str, list[float]] = {name: [] for name, _ in shapes}
    timings["cursor pages 2-4"] = []
    examples: dict[str, str] = {}
    rows: dict[str, list[int]] = {name: [] for name in timings}

    def timed(name: str, query: Any) -> Any:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            page = store.find_decisions(query)
            took = (time.perf_counter() - started) * 1000
        timings[name].append(took)
        rows[name].append(len(page.records))
        if captured.captured_queries and (name not in examples or took > max(timings[name][:-1], default=0)):
            examples[name] = captured.captured_queries[-1]["sql"]  # the slowest of its shape
        return page

    for _, make in shapes:  # warm-up: the first touch of each index reads it from the OS cache
        store.find_decisions(make())
    done, i = 0, 0
    while done < count:
        name, make = shapes[i % len(shapes)]
        i += 1
        query = make()
        page = timed(name, query)
        done += 1
        if i % len(shapes) in (1, 2, 4) and page.next_cursor and done < count:  # follow a few pages
            for _ in range(3):
                if not page.next_cursor or done >= count:
                    break
                page = timed("cursor pages 2-4", replace(query, cursor=page.next_cursor))
                done += 1
    all_ms = [t for ts in timings.values() for t in ts]
    shapes_out = {
        name: {
            "queries": len(ts),
            "p50_ms": round(pct(ts, 50), 2),
            "p99_ms": round(pct(ts, 99), 2),
            "max_ms": round(max(ts), 2),
            "mean_rows": round(statistics.fmean(rows[name]), 1),
        }
        for name, ts in timings.items()
        if ts
    }
    out: dict[str, Any] = {
        "queries": len(all_ms),
        "p50_ms": round(pct(all_ms, 50), 2),
        "p99_ms": round(pct(all_ms, 99), 2),
        "max_ms": round(max(all_ms), 2),
        "shapes": shapes_out,
        "plans": {},
    }
    for name, sql in examples.items():
        if shapes_out[name]["max_ms"] >= QUERY_TARGET_MS:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
                plan = [row[3] for row in cursor.fetchall()]
            out["plans"][name] = {"sql": sql, "plan": plan}
    connection.close()
    return out


# -- the gate's figure from the same `make bench` -------------------------------------------------------------
def gate_max(results_path: Path, started: float, max_age_s: float) -> tuple[float | None, float | None, str, float]:
    """The gate's maximum sustained rate from the gate benchmark's results, if it wrote them in this `make bench`
    (the file's age; after an earlier audit run merged into it, the time that run saw). Also the first search
    step the gate did not sustain: the true maximum lies between the two."""
    try:
        results = json.loads(results_path.read_text())
        written = results_path.stat().st_mtime
    except (OSError, ValueError) as exc:
        return None, None, f"no gate results ({type(exc).__name__})", 0.0
    store = (results.get("audit") or {}).get("store") or {}
    written = store.get("gate_results_written_at") or written
    gate = results.get("max_sustained_gate") or {}
    rate = (results.get("maxima") or {}).get("gate") or gate.get("max_rate")
    if not rate:
        return None, None, "the gate benchmark recorded no maximum sustained rate", written
    age = started - written
    if age > max_age_s:
        return None, None, f"the gate's figure ({rate:,}/s) is {age / 3600:.1f} h old, not from this run", written
    failed = [step["offered_rate"] for step in gate.get("steps", []) if step.get("offered_rate", 0) > rate]
    note = " (a lower bound: the load generator was the limit)" if gate.get("bound_by_generator") else ""
    return float(rate), (float(min(failed)) if failed else None), note, written


# -- the run ---------------------------------------------------------------------------------------------------
class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {"failed_steps": {}}

    def step(self, name: str, run: Callable[[], Any]) -> Any:
        print(f"{name}:", flush=True)
        started = time.perf_counter()
        try:
            value = run()
        except Exception as exc:
            self.results["failed_steps"][name] = repr(exc)
            print(f"  FAILED: {exc!r} (going on)", flush=True)
            return None
        if isinstance(value, dict):
            value.setdefault("step_s", round(time.perf_counter() - started, 1))
        self.results[name] = value
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument(
        "--time-ordered-ids",
        action="store_true",
        help="what-if: decision ids that start with the decision's time (the gate's are random 128-bit today)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files (printed) for a closer look")
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()

    started_wall, started = time.time(), time.perf_counter()
    info = machine()
    print(
        f"audit store benchmark on {info['cpu']}, {info['cpus']} cores, Python {info['python']}, "
        f"SQLite {info['sqlite']}",
        flush=True,
    )
    run = Run(args)
    results = run.results
    work = Path(tempfile.mkdtemp(prefix="cio-bench-audit-"))
    nats_proc = None
    try:
        dbs = run.step("setup", lambda: _setup(work, args.sqlite_pragma))
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
    finally:
        if nats_proc is not None:
            nats_proc.stop()
        if args.keep:
            print(f"SQLite files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["machine"] = info
    results["sqlite_pragmas"] = args.sqlite_pragma
    results["time_ordered_ids"] = args.time_ordered_ids
    summary(results, args)
    write(Path(args.out), results)


def _setup(work: Path, pragmas: list[str]) -> dict[str, Any]:
    dbs = Databases(work, pragmas)
    check_columns()
    print(f"  migrated a fresh SQLite database in {work}", flush=True)
    if pragmas:
        print(f"  WHAT-IF: every Django connection runs PRAGMA {'; PRAGMA '.join(pragmas)}", flush=True)
    return {"databases": dbs}


def _measure(run: Run, dbs: Databases, nats_proc: Any, started_wall: float) -> None:
    from audit.ingest import AuditIngest

    args, results = run.args, run.results
    batch = args.batch_size or AuditIngest.__dataclass_fields__["batch_size"].default
    fleet = Fleet(args.seed, args.time_ordered_ids)
    nats_url = f"nats://127.0.0.1:{nats_proc.port}" if nats_proc else None
    nats_pid = nats_proc.proc.pid if nats_proc else 0

    def rows_check() -> dict[str, Any]:
        sample = Fleet(args.seed + 1, args.time_ordered_ids).take(2000)
        check_rows_like_insert_decisions(sample)
        size = statistics.fmean(len(e.payload) for e in sample)
        reasons = sum(len(e.reasons) for e in sample) / len(sample)
        print(
            f"  2,000 generated rows equal insert_decisions' own; event {size:,.0f} bytes, {reasons:.2f} reasons "
            "per decision on average",
            flush=True,
        )
        return {"mean_payload_bytes": round(size), "reasons_per_decision": round(reasons, 2)}

    run.step("rows_check", rows_check)
    events = fleet.take(args.events)

    def ingest_empty() -> dict[str, Any]:
        if nats_url is None:
            raise RuntimeError("no NATS")
        dbs.fresh("ingest-empty")
        out = asyncio.run(drain(nats_url, nats_pid, events, batch))
        print(f"  AuditIngest into an empty database: {ingest_line(out)}", flush=True)
        return out

    def bulk() -> dict[str, Any]:
        dbs.fresh("bare-bulk-create")
        out = bare_bulk_create(events, batch)
        print(
            f"  bare bulk_create, same rows and batches: {out['rate']:>7,} events/s; CPU "
            f"{out['cpu_us_per_event']} us/event",
            flush=True,
        )
        return out

    def raw() -> dict[str, Any]:
        path = dbs.fresh("bare-executemany")
        out = bare_executemany(path, events, batch)
        print(
            f"  raw sqlite3 executemany, same rows and batches: {out['rate']:>7,} events/s; CPU "
            f"{out['cpu_us_per_event']} us/event",
            flush=True,
        )
        return out

    ingest = run.step("ingest_empty", ingest_empty)
    base = run.step("bare_bulk_create", bulk)
    run.step("bare_executemany", raw)
    if args.time_ordered_ids:
        print("WHAT-IF: decision ids start with the decision's time (not what the gate does today)", flush=True)
    if ingest and base:
        results["ingest_vs_bare"] = round(ingest["rate"] / base["rate"], 2)
        print(f"  ingest / bare bulk_create: {results['ingest_vs_bare']:.2f}", flush=True)

    rate, upper, note, written = gate_max(Path(args.out), started_wall, args.gate_max_age_s)
    results["gate_max_rate"], results["gate_first_unsustained_rate"] = rate, upper
    results["gate_results_written_at"] = written or None
    if ingest and rate:
        results["ingest_vs_gate"] = round(ingest["rate"] / rate, 2)
        if upper:
            results["ingest_vs_gate_unsustained_step"] = round(ingest["rate"] / upper, 2)
            note += (
                f"; the gate's search failed at its next step, {upper:,.0f}/s, so its true maximum lies between: "
                f"against that step the ratio is {results['ingest_vs_gate_unsustained_step']:.2f}"
            )
        print(
            f"ingest / gate max sustained: {ingest['rate']:,}/s / {rate:,.0f}/s = {results['ingest_vs_gate']:.2f} "
            f"(target >= {GATE_TARGET}){note}",
            flush=True,
        )
    else:
        results["ingest_vs_gate"] = None
        print(f"ingest / gate max sustained: n/a ({note or 'no ingest figure'})", flush=True)

    # -- scale: the same ingest at 10k and at 1M stored ---------------------------------------------------------
    scale_path = dbs.fresh("scale")
    scale = Fleet(args.seed + 2, args.time_ordered_ids)
    small, large = args.small_records, max(args.audit_records, args.small_records + args.events)

    def load_small() -> dict[str, Any]:
        out = preload(scale_path, scale, small)
        print(f"  {small:,} records in {out['seconds']:.1f} s", flush=True)
        return out

    def ingest_at() -> dict[str, Any]:
        if nats_url is None:
            raise RuntimeError("no NATS")
        dbs.close()
        out = asyncio.run(drain(nats_url, nats_pid, scale.take(args.events), batch))
        print(f"  AuditIngest with {out['stored_before']:,} stored: {ingest_line(out)}", flush=True)
        return out

    def load_large() -> dict[str, Any]:
        have = stored_counts(scale_path)[0]
        out = preload(scale_path, scale, large - have)
        stored, reasons = stored_counts(scale_path)
        out.update(stored=stored, reasons=reasons, db_mb=Databases.size_mb(scale_path))
        print(
            f"  {out['records']:,} records in {out['seconds']:.1f} s ({out['records'] / out['seconds']:,.0f}/s; "
            f"SQLite writing {out['write_s']} s, waiting for rows {out['waited_for_rows_s']} s, generated "
            f"{out['generator']}); now {stored:,} decisions, {reasons:,} reason rows, {out['db_mb']:,} MB",
            flush=True,
        )
        return out

    run.step("preload_small", load_small)
    at_small = run.step("ingest_at_small", ingest_at)
    loaded = run.step("preload_large", load_large)
    at_large = run.step("ingest_at_large", ingest_at) if loaded else None
    if at_small and at_large:
        results["scale_ratio"] = round(at_large["rate"] / at_small["rate"], 2)
        print(
            f"  at {at_large['stored_before']:,} / at {at_small['stored_before']:,}: {results['scale_ratio']:.2f} "
            f"(target >= {SCALE_TARGET})",
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

    def queries() -> dict[str, Any]:
        dbs.close()
        out = run_queries(scale, args.queries, args.seed + 3)
        stored = stored_counts(scale_path)[0]
        out["stored"] = stored
        print(
            f"  {out['queries']} find_decisions at {stored:,} stored: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} "
            f"ms, max {out['max_ms']} ms (target p99 < {QUERY_TARGET_MS:.0f} ms)",
            flush=True,
        )
        for name, s in out["shapes"].items():
            print(
                f"    {name:<30} {s['queries']:>3} queries  p50 {s['p50_ms']:>8.2f} ms  p99 {s['p99_ms']:>8.2f} ms  "
                f"max {s['max_ms']:>8.2f} ms  ({s['mean_rows']:.0f} rows a page)",
                flush=True,
            )
        for name, p in out["plans"].items():
            print(f"    EXPLAIN QUERY PLAN, {name}:", flush=True)
            for line in p["plan"]:
                print(f"      {line}", flush=True)
        return out

    if loaded:
        run.step("query", queries)


def summary(results: dict[str, Any], args: argparse.Namespace) -> None:
    m = results.get("machine", {})
    ingest = results.get("ingest_empty") or {}
    base = results.get("bare_bulk_create") or {}
    q = results.get("query") or {}
    print(f"audit summary ({m.get('cpu')}, {m.get('cpus')} cores; targets are ratios to this run's baselines):")
    if ingest:
        print(f"  ingest into empty SQLite: {ingest['rate']:,} events/s, {ingest['cpu_us_per_event']} us CPU/event")
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
            f"({'ok' if r >= SCALE_TARGET else 'MISSED'}; target >= {SCALE_TARGET})"
        )
    if q:
        ok = q["p99_ms"] < QUERY_TARGET_MS
        print(
            f"  decisions list at {q.get('stored', 0):,}: p99 {q['p99_ms']} ms ({'ok' if ok else 'MISSED'}; target "
            f"< {QUERY_TARGET_MS:.0f} ms)"
        )
    pre = results.get("preload_large")
    if pre:
        print(f"  preload of {pre['records']:,} records: {pre['seconds']:.1f} s")
    if results.get("failed_steps"):
        print(f"  failed steps: {', '.join(results['failed_steps'])}")
    print(f"  the audit benchmark took {results.get('elapsed_s')} s")


def write(out: Path, audit: dict[str, Any]) -> None:
    """Merge into the gate benchmark's results: its own `audit` figures (events in the stream) stay."""
    try:
        results = json.loads(out.read_text()) if out.exists() else {}
        if not isinstance(results, dict):
            results = {}
    except (OSError, ValueError):
        results = {}
    merged = results.get("audit") if isinstance(results.get("audit"), dict) else {}
    merged = {k: v for k, v in merged.items() if k in ("requests", "events", "exactly_once")}
    merged["store"] = audit
    results["audit"] = merged
    failed = results.setdefault("failed_steps", {})
    for key in [k for k in failed if k.startswith("audit_store.")]:
        del failed[key]
    for name, error in audit.get("failed_steps", {}).items():
        failed[f"audit_store.{name}"] = error
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        print(f"results merged into {out} (key audit.store)")
    except OSError as exc:
        print(f"could not write {out}: {exc!r}")


if __name__ == "__main__":
    main()
