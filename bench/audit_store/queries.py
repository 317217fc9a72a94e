"""Step `query`: the decisions list at the large size, p50/p99 of `find_decisions` over varied filters and cursor
pages, with the plan of every query shape that missed the target (SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's
`EXPLAIN`)."""

import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bench.audit_store.databases import Databases, stored_counts
from bench.audit_store.fleet import SPACING_S, T0, VERSION_EVERY, Fleet
from bench.audit_store.run import pct
from cio_kernel.contracts.identity import strategy_key

QUERY_TARGET_MS = 50.0


# -- the decisions list ----------------------------------------------------------------------------------------
def query_mix(fleet: Fleet, rng: random.Random, versions: int) -> list[tuple[str, Callable[[], Any]]]:
    """Query shapes a reviewer uses (each call draws new parameters); `cursor` follows pages of the others."""
    from audit.store.decisions import DecisionQuery

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

    def stored_ids() -> tuple[str, str | None]:
        """A stored decision's trace and signal id, read by row number (outside the timing)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT trace_id, signal_id FROM audit_logs WHERE id = %s", [rng.randint(1, fleet.k)])
            found = cursor.fetchone()
        return found if found else ("0" * 32, None)

    def trace() -> Any:
        return DecisionQuery(trace_id=stored_ids()[0])

    def signal() -> Any:
        return DecisionQuery(signal_id=stored_ids()[1] or "sig-none")

    return [
        ("newest (no filter)", newest),
        ("strategy + decision", strategy_decision),
        ("symbol + time range", symbol_range),
        ("reason_code", reason_code),
        ("reason_code + time range", reason_range),
        ("policy_version", policy_version),
        ("strategy + symbol + decision", strategy_symbol_decision),
        ("symbol + reason_code", symbol_reason),
        ("trace id (trace to thought)", trace),
        ("signal id (admin search)", signal),
    ]


def run_queries(dbs: Databases, fleet: Fleet, count: int, seed: int) -> dict[str, Any]:
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
                plan = dbs.plan(cursor, sql)
            out["plans"][name] = {"sql": sql, "plan": plan}
    connection.close()
    return out


def query_step(dbs: Databases, handle: Any, fleet: Fleet, count: int, seed: int) -> dict[str, Any]:
    dbs.close()
    out = run_queries(dbs, fleet, count, seed)
    stored = stored_counts(dbs, handle)[0]
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
        print(f"    plan, {name}:", flush=True)
        for line in p["plan"]:
            print(f"      {line}", flush=True)
    return out
