"""`make bench`, third part: what a Strategist reasoning cycle costs, with each brain.

Works on a fresh SQLite database (migrated as `manage.py migrate` does) with the example policy active, its own
NATS and Valkey from the pip wheels, and a typical context: regime reports for ten symbols, a portfolio of eight
positions, `--decisions` audited decisions in the last hour (the statistics window) and 200 incidents. Each cycle
goes the whole way (lock, context, brain, validation, envelope, a new proposal superseding the previous one, the
cycle row, the thought in the audit store). The LLM brain talks to a local chat-completions server that answers
at once (deploy/fake_openai.py): its figure is the Strategist's own cost around a model, not a model's latency.

Baseline measured in the same run: a bare `services.propose` of a policy (the one write a proposing cycle cannot
avoid). Reported: wall time p50/p99 and CPU per cycle, each ÷ the baseline; and what a cycle would cost in tokens:
the prompt's size (characters, and tokens at about four characters each: no tokenizer is downloaded) and the
answer's. Then, unless `--large-window 0`, the window is filled to `--large-window` decisions (1M; written
straight into the tables, decisions and per-minute rollups) and the context and rule cycle are measured again:
their ratio to the first figures is the statistics' growth with the window (issue 22: goal ≤ 1.2×). A step that
fails is reported and the benchmark goes on. Figures are merged into `.cio/bench/results.json` under
`strategist`.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.audit_store.run import Run, machine, pct

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = [
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
]
STRATEGIES = ["momentum-1", "llm-swing", "TA Bot Mean Reversion", "Iceberg Order Detector", "ta-bot", "grid-btc"]
REASONS = [
    "CONFIDENCE_TOO_LOW",
    "ORDER_NOTIONAL_EXCEEDED",
    "PRICE_COLLAR_BREACHED",
    "TRADING_REDUCING",
    "STOP_LOSS_MISSING",
    "LEVERAGE_EXCEEDED",
]


def timed(work: Callable[[int], Any], n: int) -> dict[str, float]:
    """Wall time (p50, p99) and CPU per call (this process's CPU, which does all of the cycle's work)."""
    walls, cpu_start = [], time.process_time()
    for i in range(n):
        started = time.perf_counter()
        work(i)
        walls.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / n
    return {
        "n": n,
        "p50_ms": round(statistics.median(walls), 2),
        "p99_ms": round(pct(walls, 99), 2),
        "cpu_ms": round(cpu_ms, 2),
    }


class Stack:
    def __init__(self, work: Path) -> None:
        from deploy.servers import free_port, nats_server, redis_server

        self.work = work
        self.nats = nats_server(free_port(), work / "nats", work / "nats.log").start()
        self.redis = redis_server(free_port(), work / "redis", work / "redis.log").start()
        state = work / "state"
        os.environ.update(
            DJANGO_SETTINGS_MODULE="cio_site.settings",
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
            CIO_STATE_DIR=str(state),
            CIO_LOG_LEVEL="WARNING",
            CIO_AUDIT_STORE="django",
            NATS_URL=f"nats://127.0.0.1:{self.nats.port}",
            REDIS_URL=f"redis://127.0.0.1:{self.redis.port}/0",
            CIO_LLM_BASE_URL="",
        )
        from cio_kernel.policy.signing import PolicySigner

        state.mkdir(parents=True, exist_ok=True)
        PolicySigner.load_or_create(state)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)

    def stop(self) -> None:
        self.redis.stop()
        self.nats.stop()


def seed(decisions: int) -> dict[str, Any]:
    from django.contrib.auth.models import Group, User

    from audit import incidents
    from audit.records import DecisionRecord
    from audit.store import get_store
    from cio_kernel.contracts.audit_event import AuditEvent
    from cio_kernel.contracts.envelope import Reason
    from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position
    from cio_kernel.contracts.regime import RegimeUpdate
    from core import roles
    from policies import services
    from strategist.cycle import strategist_redis
    from strategist.inputs import store_portfolio, store_regime

    officer = User.objects.create_user("bench-officer")
    officer.groups.add(Group.objects.get(name=roles.RISK_OFFICER))
    example = (ROOT / "deploy" / "policies" / "example.json").read_text()
    services.seed_first_policy(spec=example, by=officer, rationale="bench")
    rng, now = random.Random(20261203), datetime.now(UTC)
    client = strategist_redis()
    for symbol in SYMBOLS:
        store_regime(
            client,
            RegimeUpdate(
                ts=now, symbol=symbol, volatility=rng.uniform(0.005, 0.04), trend=rng.uniform(-1, 1), regime="ranging"
            ),
        )
    store_portfolio(
        client,
        PortfolioSnapshot(
            ts=now,
            equity_usd=250_000.0,
            drawdown_pct=0.03,
            positions={s: Position(quantity=1.0, notional_usd=rng.uniform(2_000, 40_000)) for s in SYMBOLS[:8]},
        ),
    )
    records = []
    for i in range(decisions):
        decision = rng.choice(["APPROVED", "APPROVED", "REJECTED", "REJECTED", "RETRY_SAFE"])
        reasons = [Reason(code=rng.choice(REASONS), message="bench")] if decision == "REJECTED" else []
        event = AuditEvent(
            decision_id=uuid.uuid4().hex,
            ts=now - timedelta(seconds=rng.uniform(0, 3500)),
            gate_id="bench-gate",
            subject="cio.intent.trading.x",
            strategy_id=rng.choice(STRATEGIES),
            symbol=rng.choice(SYMBOLS),
            action="buy",
            intent_id=f"sig-{i}",
            decision=decision,
            reasons=reasons,
            policy_version=1,
            policy_checksum="sha256:" + "ab" * 32,
            trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16],
            traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
            latency_us=50,
            signal_subject=None,
            intent={"signal_id": f"sig-{i}"},
            state={},
        )
        payload = event.model_dump_json().encode()
        records.append(DecisionRecord.of(event, "cio.audit.decision.x", payload, None))
    store = get_store()
    for start in range(0, len(records), 2000):
        store.insert_decisions(records[start : start + 2000])
    for i in range(200):
        incidents.record(
            incidents.make(
                f"bench-{i}",
                rng.choice(["rejection_burst", "regime_shift"]),
                f"burst of {rng.choice(REASONS)} on {rng.choice(SYMBOLS)}",
                now,
                {"n": i},
                rng.choice(STRATEGIES),
                rng.choice(SYMBOLS),
            )
        )
    print(
        f"  example policy active; {len(SYMBOLS)} regimes, 8 positions, {decisions:,} decisions in the last hour, "
        "200 incidents",
        flush=True,
    )
    return {"decisions": decisions, "symbols": len(SYMBOLS), "incidents": 200}


def preload_window(decisions: int) -> dict[str, Any]:
    """`decisions` more decisions in the last hour, written straight into the tables the store writes (the
    decisions, their reasons and the per-minute rollups; audit/store/django_rows.py) with `executemany` in large
    transactions, as bench/audit_store's preload does: a million through `insert_decisions` would take minutes.
    Their payload is a short stand-in (no cycle reads it), so the file stays a few hundred MB."""
    import sqlite3

    from django.db import connection, connections

    from audit.store.django_rows import (
        DECISION_COLUMNS,
        add_minutes,
        insert_decision_sql,
        insert_reason_sql,
        lookup_key,
    )
    from audit.store.rollups import MinuteCounts
    from cio_kernel.contracts.identity import strategy_key

    path, adapt = connection.settings_dict["NAME"], connection.ops.adapt_datetimefield_value
    connections.close_all()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-500000")
    rng, now, started = random.Random(20261206), datetime.now(UTC), time.perf_counter()
    keys = {s: strategy_key(s) for s in STRATEGIES}
    first = now - timedelta(seconds=3500)
    template = dict.fromkeys(DECISION_COLUMNS)
    template.update(
        gate_id="bench-gate", subject="cio.intent.trading.x", action="buy", policy_version=1, latency_us=50,
        policy_checksum="sha256:" + "ab" * 32, audit_subject="cio.audit.decision.x", payload='{"bench": true}',
        ingested_at=adapt(now),
    )  # fmt: skip
    insert, insert_reason = insert_decision_sql("?"), insert_reason_sql("?")
    done = 0
    try:
        while done < decisions:
            rows, reasons, counts = [], [], MinuteCounts()
            for i in range(done, min(done + 50_000, decisions)):
                ts = first + timedelta(seconds=3500 * i / decisions)
                stored_ts = adapt(ts)
                strategy, symbol = rng.choice(STRATEGIES), rng.choice(SYMBOLS)
                decision = rng.choice(("APPROVED", "APPROVED", "REJECTED", "REJECTED", "RETRY_SAFE"))
                codes = (rng.choice(REASONS),) if decision == "REJECTED" else ()
                decision_id = f"{int(ts.timestamp() * 1e6):016x}{i:08x}"  # time-ordered: the index appends
                row = template | {
                    "decision_id": decision_id, "ts": stored_ts, "strategy_id": strategy,
                    "strategy_key": keys[strategy], "symbol": symbol, "intent_id": f"sig-{i}", "signal_id": f"sig-{i}",
                    "decision": decision, "reason_codes": " ".join(codes), "trace_id": decision_id,
                    "span_id": decision_id[:16], "trace_key": lookup_key(decision_id),
                    "signal_key": lookup_key(f"sig-{i}"),
                }  # fmt: skip
                rows.append(tuple(row.values()))
                reasons += [(decision_id, code, stored_ts) for code in codes]
                counts.add(ts, keys[strategy], symbol, decision, codes)
            con.execute("BEGIN")
            con.executemany(insert, rows)
            con.executemany(insert_reason, reasons)
            add_minutes(con.cursor(), counts, adapt, "?")
            con.execute("COMMIT")
            done += len(rows)
            if done % 200_000 < 50_000 or done == decisions:
                print(f"    {done:>9,} preloaded ({time.perf_counter() - started:6.1f} s)", flush=True)
    finally:
        con.close()
    loaded = time.perf_counter()
    # Written without fsync: flush it now, or the first cycle's commit (its fsync) would wait for the whole
    # preload's writeback; ingested over an hour, those decisions would have been on disk long before.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    stored, synced_s = stored_decisions(path), round(time.perf_counter() - loaded, 1)
    print(
        f"  {decisions:,} more decisions in the last hour in {loaded - started:.1f} s (then {synced_s} s to disk)",
        flush=True,
    )
    return {"added": decisions, "stored": stored, "seconds": round(loaded - started, 1), "fsync_s": synced_s}


def stored_decisions(path: str) -> int:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM audit_logs").fetchone()[0])
    finally:
        con.close()


def measure(run: Run, cycles: int, large_window: int = 0, seeded: int = 0) -> None:
    from audit.store import get_store
    from audit.store.rollups import minute_of
    from cio_kernel.contracts.regime import RegimeUpdate
    from cio_kernel.redaction import process_scrubber
    from deploy.fake_openai import FakeOpenAI, Step, answer
    from policies import selectors, services
    from policies.models import compact_spec
    from policies.selectors import baseline_version
    from strategist import cycle as strategist
    from strategist.brains.llm import LlmConfig
    from strategist.brains.prompt import messages_for
    from strategist.budget import estimate_tokens
    from strategist.context import build_context
    from strategist.cycle import strategist_redis, strategist_user
    from strategist.inputs import read_portfolio, read_regimes, store_regime
    from strategist.models import StrategistSettings
    from strategist.triggers import SCHEDULE, Trigger

    client = strategist_redis()
    active = selectors.active_version()
    trigger = Trigger(SCHEDULE, {})

    def context() -> Any:
        now = datetime.now(UTC)
        return build_context(
            trigger=trigger,
            now=now,
            active=active,
            baseline=baseline_version(active),
            regime=read_regimes(client, 900, now),
            portfolio=read_portfolio(client, 300, now),
            envelope=StrategistSettings.current().envelope(),
            stats_window_s=3600,
            scrubber=process_scrubber(),
        )

    def stats() -> Any:  # the statistics read alone, as a cycle reads them (the window from a minute)
        return get_store().decision_stats(minute_of(datetime.now(UTC) - timedelta(seconds=3600)))

    run.step("stats", lambda: timed(lambda i: stats(), cycles * 10))
    run.step("context", lambda: timed(lambda i: context(), cycles))
    spec = active.parsed_spec
    variants = [compact_spec(spec.model_copy(update={"description": f"bench {i}"})) for i in range(2)]
    user = strategist_user()
    run.step(
        "bare_propose",
        lambda: timed(lambda i: services.propose(spec=variants[i % 2], by=user, rationale="bench baseline"), cycles),
    )

    PROPOSES = ("proposed", "amended")

    def volatile(i: int) -> None:  # alternate BTC between volatile and extreme: every cycle proposes anew
        store_regime(client, RegimeUpdate(ts=datetime.now(UTC), symbol="BTCUSDT", volatility=(0.07, 0.2)[i % 2]))

    def rule_cycle(i: int) -> None:
        volatile(i)
        cycle = strategist.run_cycle(trigger, client=client, use_env_llm=False)
        # The first cycle proposes; the next amend that open proposal in place (docs/strategist.md): the same work.
        assert cycle is not None and cycle.outcome in PROPOSES, cycle.outcome if cycle else None

    run.step("rule_cycle", lambda: timed(rule_cycle, cycles))
    server = FakeOpenAI().start()
    proposals = [
        answer(
            rationale="Volatility is up: confidence up a notch and smaller orders on BTC.",
            changes=[
                {"scope": "global", "key": None, "field": "min_confidence", "value": value},
                {"scope": "symbol", "key": "BTCUSDT", "field": "max_order_notional_usd", "value": 10_000},
            ],
        )
        for value in (0.6, 0.65)
    ]
    config = LlmConfig(
        base_url=server.base_url, model="bench", api_key="bench-key", timeout_s=10, daily_token_budget=10**12
    )

    def llm_cycle(i: int) -> None:
        server.then(Step(content=proposals[i % 2]))
        cycle = strategist.run_cycle(trigger, client=client, llm_config=config)
        assert cycle is not None and cycle.brain == "llm" and cycle.outcome in PROPOSES, cycle.outcome

    try:
        run.step("llm_cycle", lambda: timed(llm_cycle, cycles))
    finally:
        server.stop()

    def tokens() -> dict[str, Any]:
        messages = messages_for(context())
        system, user_message = messages[0]["content"], messages[1]["content"]
        completion = proposals[0]
        return {
            "system_chars": len(system),
            "context_chars": len(user_message),
            "prompt_tokens_est": estimate_tokens(system) + estimate_tokens(user_message),
            "completion_chars": len(completion),
            "completion_tokens_est": estimate_tokens(completion),
        }

    run.step("tokens", tokens)
    r = run.results
    base = r.get("bare_propose") or {}
    for name in ("rule_cycle", "llm_cycle"):
        row = r.get(name)
        if row and base:
            row["p50_vs_propose"] = round(row["p50_ms"] / base["p50_ms"], 2)
            row["cpu_vs_propose"] = round(row["cpu_ms"] / base["cpu_ms"], 2)
    if large_window > seeded and run.step("preload_window", lambda: preload_window(large_window - seeded)):
        # The same context and cycle with the statistics window holding `large_window` decisions (goal: ≤ 1.2×).
        run.step("stats_large", lambda: timed(lambda i: stats(), cycles * 10))
        run.step("context_large", lambda: timed(lambda i: context(), cycles))
        run.step("rule_cycle_large", lambda: timed(lambda i: rule_cycle(cycles + i), cycles))
        ratios = {"decisions": [seeded, r["preload_window"]["stored"]]}
        for name in ("stats", "context", "rule_cycle"):
            small, large = r.get(name), r.get(f"{name}_large")
            if small and large:
                ratios[f"{name}_p50"] = round(large["p50_ms"] / small["p50_ms"], 2)
                ratios[f"{name}_cpu"] = round(large["cpu_ms"] / small["cpu_ms"], 2)
        r["large_window"] = ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--decisions", type=int, default=20_000, help="audited decisions in the statistics window")
    parser.add_argument(
        "--large-window",
        type=int,
        default=1_000_000,
        help="then the context and rule cycle again with this many decisions in the window (0: not measured)",
    )
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()
    run = Run(args)
    work = Path(tempfile.mkdtemp(prefix="cio-bench-strategist-"))
    stack = None
    try:
        started = run.step("setup", lambda: {"stack": Stack(work)})
        stack = started.pop("stack") if started else None
        if stack is not None:
            run.step("seed", lambda: seed(args.decisions))
            try:
                measure(run, args.cycles, args.large_window, args.decisions)
            except Exception as exc:
                run.results["failed_steps"]["measure"] = repr(exc)
                print(f"  FAILED: {exc!r}", flush=True)
    finally:
        if isinstance(stack, Stack):
            stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = run.results
    results["machine"] = machine()
    summary(results)
    write(Path(args.out), results)


def summary(r: dict[str, Any]) -> None:
    print("\nStrategist cycle (wall p50 / p99, CPU per cycle):", flush=True)
    for name, label in (
        ("stats", "decision statistics alone"),
        ("context", "context build"),
        ("bare_propose", "bare propose (baseline)"),
        ("rule_cycle", "cycle, rule brain"),
        ("llm_cycle", "cycle, LLM brain (instant local server)"),
        ("stats_large", "decision statistics alone, large window"),
        ("context_large", "context build, large window"),
        ("rule_cycle_large", "cycle, rule brain, large window"),
    ):
        row = r.get(name)
        if row:
            ratio = (
                f"; ÷ propose {row['p50_vs_propose']}× wall, {row['cpu_vs_propose']}× CPU"
                if "p50_vs_propose" in row
                else ""
            )
            print(f"  {label:<42} {row['p50_ms']:>7} / {row['p99_ms']:>7} ms, CPU {row['cpu_ms']} ms{ratio}")
    tokens = r.get("tokens")
    if tokens:
        print(
            f"  prompt: {tokens['system_chars'] + tokens['context_chars']:,} characters ≈ "
            f"{tokens['prompt_tokens_est']:,} tokens; answer ≈ {tokens['completion_tokens_est']} tokens"
        )
    large = r.get("large_window")
    if large and "rule_cycle_p50" in large:
        small_n, large_n = large["decisions"]
        print(
            f"  {large_n:,} vs {small_n:,} decisions in the window: statistics {large.get('stats_p50')}× wall, "
            f"context {large.get('context_p50')}× wall "
            f"({large.get('context_cpu')}× CPU), rule cycle {large['rule_cycle_p50']}× wall "
            f"({large['rule_cycle_cpu']}× CPU) (goal ≤ 1.2×)"
        )
    if r["failed_steps"]:
        print(f"  failed steps: {r['failed_steps']}")


def write(out: Path, strategist: dict[str, Any]) -> None:
    try:
        results = json.loads(out.read_text()) if out.exists() else {}
    except (OSError, ValueError):
        results = {}
    results = results if isinstance(results, dict) else {}
    results["strategist"] = strategist
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results merged into {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
