"""`make bench`: the gate over real NATS, against a trivial echo responder on the same NATS as the baseline.

Starts its own NATS (JetStream) and Valkey from the pip wheels, one gate process (`python -m gate`) and one echo
process; this process is the load generator. Prints p50/p99/p99.9 request→reply latency at fixed offered
rates, the maximum sustained rate with zero lost replies, the ratios to the baseline, the decision function's
own cost, and checks that the audit stream holds exactly one event per intent sent. Results also go to
`.cio/bench/results.json`.
"""

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
import redis.asyncio as aioredis

from bench.load import LoadResult, run_load
from deploy.servers import free_port, nats_server, redis_server
from gate.config import GateSettings
from gate.contracts.heartbeat import GateCounters
from gate.contracts.intent import Intent
from gate.contracts.portfolio import PortfolioSnapshot, Position, StrategyBook
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.policy.spec import PolicySpec
from gate.policy.store import build_document, write_active_policy
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_400.0, "SOLUSDT": 240.0}
STRATEGIES = ["momentum-1", "mean-revert", "Iceberg Order Detector", "ta-bot"]
BUDGET_MS = 200.0


def bench_policy() -> PolicySpec:
    """The README's example policy, every control switched on, with limits the benchmark traffic stays inside
    (rate limits and the dedupe window would otherwise reject most of a synthetic burst)."""
    raw = json.loads((ROOT / "deploy" / "policies" / "example.json").read_text())
    glob = raw["global"]
    glob.update(
        dedupe_window_s=0, max_intents_per_second=None, max_symbol_exposure_usd=1e12, max_total_exposure_usd=1e12
    )
    for rules in [*raw["strategies"].values(), *raw["symbols"].values()]:
        rules.pop("max_intents_per_second", None)
        rules.pop("max_intents_per_minute", None)
        rules.pop("trading_state", None)
    return PolicySpec.model_validate(raw)


def intent_body(phase: str, i: int) -> dict[str, Any]:
    symbol = list(SYMBOLS)[i % len(SYMBOLS)]
    price = SYMBOLS[symbol]
    return {
        "strategy_id": STRATEGIES[i % len(STRATEGIES)],
        "strategy": "bench",
        "symbol": symbol,
        "action": "buy" if i % 2 else "sell",
        "confidence": 0.8,
        "price": price,
        "current_price": price,
        "quantity": round(1000.0 / price, 6),
        "source": "bench",
        "signal_id": f"{phase}-{i}",
        "stop_loss": price * (0.98 if i % 2 else 1.02),
        "timestamp": datetime.now(UTC).isoformat(),
        "_otel_trace_context": {"traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"},
    }


def snapshot() -> bytes:
    now = datetime.now(UTC)
    return (
        PortfolioSnapshot(
            ts=now,
            equity_usd=1e7,
            drawdown_pct=0.01,
            positions={s: Position(quantity=1.0, notional_usd=p) for s, p in SYMBOLS.items()},
            pnl_since=now.replace(hour=0, minute=0, second=0, microsecond=0),
            daily_pnl_usd=-100.0,
            strategies={s: StrategyBook(daily_pnl_usd=0.0) for s in STRATEGIES},
        )
        .model_dump_json()
        .encode()
    )


async def policy_pickup(nc: Any, redis: aioredis.Redis, activations: int) -> tuple[list[float], int]:
    """Activate new versions the way the control plane does and poll the gate (1 ms apart) until a decision
    reports the new version: an upper bound on how long a gate keeps deciding under the old policy."""
    spec = bench_policy()
    base = int(time.time())  # versions only go up: start above anything earlier phases wrote
    results = []
    requests = 0
    for n in range(activations):
        version = base + n
        document = build_document(spec, version, "bench")
        started = time.perf_counter()
        await write_active_policy(redis, document)
        await nc.publish("cio.strategist.update", orjson.dumps({"version": version, "checksum": document.checksum}))
        while True:
            requests += 1
            reply = await nc.request(
                "intent.trading.BTCUSDT", orjson.dumps(intent_body(f"pick{version}", 0)), timeout=2
            )
            if orjson.loads(reply.data)["data"]["policy_version"] == version:
                break
            await asyncio.sleep(0.001)
        results.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    return results, requests


def decision_cost_us(iterations: int) -> dict[str, float]:
    """The pure decision function, and the whole in-process pipeline (validate, decide, serialise), per intent."""
    spec = bench_policy()
    policy = CompiledPolicy(build_document(spec, 1, "bench"))
    state = GateState()
    state.apply_snapshot(PortfolioSnapshot.model_validate_json(snapshot()))
    intent = Intent.model_validate(intent_body("cost", 1))
    now = time.time()
    evaluate(intent, policy, state, now)
    per_eval = min(timeit.repeat(lambda: evaluate(intent, policy, state, now), number=iterations, repeat=5))
    pipeline = DecisionPipeline(
        GateSettings(gate_id="bench", dedupe_id_ttl_s=1e-9),
        FixedPolicy(policy),
        state,
        DecisionTracer(None),
        GateCounters(),
    )
    payloads = [orjson.dumps(intent_body("pipe", i)) for i in range(iterations)]
    started = time.perf_counter()
    for payload in payloads:
        pipeline.process("intent.trading.BTCUSDT", payload, None, "_INBOX.x")
    per_pipeline = (time.perf_counter() - started) / iterations
    return {"evaluate_us": per_eval / iterations * 1e6, "pipeline_us": per_pipeline * 1e6}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(result: LoadResult) -> dict[str, Any]:
    return {
        "offered_rate": result.offered_rate,
        "achieved_rate": round(result.achieved_rate, 1),
        "sent": result.sent,
        "lost": result.lost,
        "duplicates": result.duplicates,
        "p50_us": round(result.percentile(50)),
        "p99_us": round(result.percentile(99)),
        "p999_us": round(result.percentile(99.9)),
        "mean_us": round(statistics.fmean(result.latencies_us)) if result.latencies_us else None,
    }


def sustained(result: LoadResult) -> bool:
    return result.lost == 0 and result.duplicates == 0 and result.percentile(99) < BUDGET_MS * 1000


async def measure(args: argparse.Namespace, nats_url: str, redis_url: str, gate_pid: int) -> dict[str, Any]:
    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    redis = aioredis.Redis.from_url(redis_url)
    document = build_document(bench_policy(), 1, "bench")
    await write_active_policy(redis, document)
    await nc.publish("cio.strategist.update", orjson.dumps({"version": 1, "checksum": document.checksum}))
    await nc.publish("cio.portfolio.snapshot", snapshot())
    for _ in range(100):  # the gate answers pings once it is up
        try:
            beat = orjson.loads((await nc.request("cio.gate.ping", b"", timeout=1)).data)
            if beat["policy_version"] == 1:
                break
        except Exception:
            pass
        await asyncio.sleep(0.2)
    else:
        raise RuntimeError("the gate did not come up with the bench policy")

    async def keep_snapshots_fresh() -> None:
        while True:
            await nc.publish("cio.portfolio.snapshot", snapshot())
            await asyncio.sleep(2)

    snapshots = asyncio.create_task(keep_snapshots_fresh())
    gate_sent = 0
    phase = 0

    async def gate_run(rate: float, duration: float) -> tuple[LoadResult, float]:
        nonlocal gate_sent, phase
        phase += 1
        payloads = [orjson.dumps(intent_body(f"p{phase}", i)) for i in range(int(rate * duration))]
        cpu_before = _cpu_seconds(gate_pid)
        result = await run_load(nc, "intent.trading.BTCUSDT", payloads, rate, duration)
        cpu_us = (_cpu_seconds(gate_pid) - cpu_before) / max(result.received, 1) * 1e6
        gate_sent += result.sent
        return result, cpu_us

    async def echo_run(rate: float, duration: float) -> LoadResult:
        payloads = [orjson.dumps(intent_body("echo", i)) for i in range(min(int(rate * duration), 5000))]
        return await run_load(nc, "bench.echo", payloads, rate, duration)

    await gate_run(500, 1.0)  # warm-up (imports, caches, JIT-free but allocator warm)
    await echo_run(500, 1.0)
    fixed: list[dict[str, Any]] = []
    for rate in args.rates:
        echo = await echo_run(rate, args.duration)
        gate, cpu_us = await gate_run(rate, args.duration)
        row = {
            "rate": rate,
            "echo": summarise(echo),
            "gate": summarise(gate),
            "gate_cpu_us_per_intent": round(cpu_us, 1),
        }
        row["p99_ratio"] = round(row["gate"]["p99_us"] / max(row["echo"]["p99_us"], 1), 2)
        row["p50_ratio"] = round(row["gate"]["p50_us"] / max(row["echo"]["p50_us"], 1), 2)
        fixed.append(row)
        print(
            f"  {rate:>6}/s  echo p50/p99/p99.9 {row['echo']['p50_us']}/{row['echo']['p99_us']}/"
            f"{row['echo']['p999_us']} us   gate {row['gate']['p50_us']}/{row['gate']['p99_us']}/"
            f"{row['gate']['p999_us']} us   lost {row['gate']['lost']}  p99 ratio {row['p99_ratio']}",
            flush=True,
        )

    async def search(run: Any) -> tuple[float, list[dict[str, Any]]]:
        best, steps = 0.0, []
        for rate in args.search_rates:
            outcome = await run(rate, args.search_duration)
            result = outcome[0] if isinstance(outcome, tuple) else outcome
            steps.append(summarise(result))
            ok = sustained(result)
            print(
                f"  {rate:>6}/s  achieved {result.achieved_rate:8.0f}/s  lost {result.lost:5}  "
                f"p99 {result.percentile(99) / 1000:8.1f} ms  {'ok' if ok else 'not sustained'}",
                flush=True,
            )
            if not ok:
                break
            best = result.achieved_rate
            await asyncio.sleep(1.0)  # let queues drain between steps
        return best, steps

    print(
        "policy pickup: activation (Redis CAS + cio.strategist.update) -> first decision under the new version:",
        flush=True,
    )
    pickup_ms, pickup_requests = await policy_pickup(nc, redis, args.pickups)
    gate_sent += pickup_requests
    ordered = sorted(pickup_ms)
    pickup = {
        "activations": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
    }
    print(
        f"  {pickup['activations']} activations: p50 {pickup['p50_ms']} ms, p99 {pickup['p99_ms']} ms, "
        f"max {pickup['max_ms']} ms",
        flush=True,
    )

    print("max sustained throughput, echo baseline:", flush=True)
    echo_max, echo_steps = await search(echo_run)
    print("max sustained throughput, gate:", flush=True)
    gate_max, gate_steps = await search(gate_run)

    snapshots.cancel()
    await asyncio.sleep(2.0)
    info = await nc.jetstream().stream_info("CIO_AUDIT")
    await nc.close()
    await redis.aclose()
    return {
        "fixed_rates": fixed,
        "policy_pickup": pickup,
        "max_sustained": {
            "echo": round(echo_max),
            "gate": round(gate_max),
            "ratio": round(gate_max / echo_max, 2) if echo_max else None,
            "echo_steps": echo_steps,
            "gate_steps": gate_steps,
        },
        "audit": {
            "intents_sent": gate_sent,
            "audit_events": info.state.messages,
            "exactly_once": info.state.messages == gate_sent,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--search-rates", type=float, nargs="+", default=[3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000]
    )
    parser.add_argument("--search-duration", type=float, default=3.0)
    parser.add_argument("--cost-iterations", type=int, default=20_000)
    parser.add_argument("--pickups", type=int, default=100)
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
        work = Path(tmp)
        nats_proc = nats_server(free_port(), work / "nats", work / "nats.log").start()
        redis_proc = redis_server(free_port(), work / "redis", work / "redis.log").start()
        nats_url = f"nats://127.0.0.1:{nats_proc.port}"
        redis_url = f"redis://127.0.0.1:{redis_proc.port}/0"
        env = {
            **os.environ,
            "NATS_URL": nats_url,
            "REDIS_URL": redis_url,
            "CIO_GATE_ID": "bench-gate",
            "CIO_AUDIT_SPOOL_DIR": str(work / "spool"),
            "CIO_LOG_LEVEL": "WARNING",
        }
        gate_log = (work / "gate.log").open("wb")
        gate = subprocess.Popen(
            [sys.executable, "-m", "gate"], cwd=ROOT, env=env, stdout=gate_log, stderr=subprocess.STDOUT
        )
        echo = subprocess.Popen(
            [sys.executable, "-m", "bench.echo_responder", nats_url], cwd=ROOT, stdout=subprocess.DEVNULL
        )
        try:
            print("request -> reply latency at fixed offered rates (open loop, from scheduled send time):", flush=True)
            # The load generator's own pauses would show up as latency: start it with a frozen, clean heap.
            gc.collect()
            gc.freeze()
            results = asyncio.run(measure(args, nats_url, redis_url, gate.pid))
        finally:
            for proc in (gate, echo):
                proc.terminate()
                proc.wait(30)
            redis_proc.stop()
            nats_proc.stop()

    # Measured last, so its garbage cannot disturb the latency phases.
    print(f"decision cost ({args.cost_iterations} intents, in process):", flush=True)
    cost = decision_cost_us(args.cost_iterations)
    print(
        f"  evaluate(): {cost['evaluate_us']:.1f} us/intent   whole pipeline: {cost['pipeline_us']:.1f} us/intent",
        flush=True,
    )
    results["decision_cost"] = cost
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    results["command"] = "make bench"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    audit = results["audit"]
    ms = results["max_sustained"]
    print(
        f"max sustained (zero lost, p99 < {BUDGET_MS:g} ms): gate {ms['gate']}/s, echo {ms['echo']}/s, "
        f"ratio {ms['ratio']}"
    )
    print(
        f"audit: {audit['audit_events']} events for {audit['intents_sent']} intents sent -> "
        f"{'exactly once' if audit['exactly_once'] else 'MISMATCH'}"
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
