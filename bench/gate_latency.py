"""`make bench`: the gate over real NATS against two baselines measured in the same run, on the same machine.

Starts its own NATS (JetStream) and Valkey from the pip wheels, then, one at a time, an *echo* responder (replies
with the request: the NATS client's cost for one message in, one out), a *floor* responder (sends exactly the
messages the gate sends per intent and decides nothing) and one or two gate processes (`python -m gate`); this
process generates open-loop load. Every figure that is a target is a ratio to the echo measured in this run:

- gate CPU per intent ÷ echo CPU per message, at fixed rates (500/s and half the gate's maximum);
- p99 latency ÷ echo p99 at those rates;
- maximum sustained rate (zero lost, zero shed, p99 inside the budget) ÷ the echo's;
- two gates in the queue group against one;
- an overload step at twice the gate's maximum: every request answered, no approval after the budget, shedding
  instead of queueing, and latency back to normal once the load drops;
- policy pickup after an activation, and the audit stream holding exactly one event per request.

A step that fails is reported and the benchmark goes on. Results go to `.cio/bench/results.json`
(`python -m bench.report --readme` renders them into the README).
"""

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider

from bench.load import LoadResult, run_load
from cio_kernel import audit_checkpoint
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position, StrategyBook
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.store import build_document
from deploy.servers import free_port, nats_server, redis_server
from gate.config import GateSettings
from gate.decision.evaluate import evaluate
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_400.0, "SOLUSDT": 240.0}
STRATEGIES = ["momentum-1", "mean-revert", "Iceberg Order Detector", "ta-bot"]
BUDGET_MS = 200.0
GATE_SUBJECT = "cio.nurse.audit"  # a fixed subject for the mixed-symbol traffic (intent.trading.<SYMBOL> must match)
SIGNER = PolicySigner.generate()  # the benchmark plays the control plane: its gates trust this key


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
    return PolicySpec.parse(raw)


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        "platform": platform.platform(),
        "date": datetime.now(UTC).date().isoformat(),
    }


def summarise(result: LoadResult) -> dict[str, Any]:
    return {
        "offered_rate": result.offered_rate,
        "achieved_rate": round(result.achieved_rate, 1),
        "sent": result.sent,
        "lost": result.lost,
        "duplicates": result.duplicates,
        "approved": result.approved,
        "shed": result.shed,
        "approved_late": result.approved_late,
        "p50_us": round(result.percentile(50)),
        "p99_us": round(result.percentile(99)),
        "p999_us": round(result.percentile(99.9)),
        "mean_us": round(statistics.fmean(result.latencies_us)) if result.latencies_us else None,
        "generator_lag_ms": round(result.send_lag_s * 1000, 1),
    }


class Stack:
    """NATS, Redis and the responders, each started and stopped by the benchmark."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.nats = nats_server(free_port(), work / "nats", work / "nats.log").start()
        self.redis = redis_server(free_port(), work / "redis", work / "redis.log").start()
        self.nats_url = f"nats://127.0.0.1:{self.nats.port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # The gates sign their audit chains' heads as in a deployment (docs/audit.md): that cost is measured too.
        PolicySigner.load_or_create(work, audit_checkpoint.PRIVATE_KEY_FILE, audit_checkpoint.PUBLIC_KEY_FILE)
        self.audit_key = work / audit_checkpoint.PRIVATE_KEY_FILE

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc

    def gate(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        """A gate process on this stack, with `env` added to what every benchmarked gate gets."""
        defaults = {
            "NATS_URL": self.nats_url,
            "REDIS_URL": self.redis_url,
            "CIO_GATE_ID": name,
            "CIO_AUDIT_SPOOL_DIR": str(self.work / "spool"),
            "CIO_LOG_LEVEL": "WARNING",
            "CIO_POLICY_PUBLIC_KEY": base64.b64encode(SIGNER.public_raw).decode(),
            "CIO_AUDIT_SIGNING_KEY_FILE": str(self.audit_key),
            # Four synthetic strategies carry the whole load here: what is measured is the gate's capacity, so
            # no strategy's share may cap it (the shares are tested in tests/integration/test_intake_budget.py).
            "CIO_STRATEGY_BUDGET_PER_S": "1e9",
            "CIO_STRATEGY_BUDGET_BURST": "1e9",
            # Probes and metrics on, as deployed (docs/metrics.md): their cost is measured too (bench/metrics_cost.py
            # compares with them off).
            "CIO_GATE_HEALTH_PORT": str(free_port()),
        }
        return self.spawn(name, ["-m", "gate"], **{**defaults, **env})

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        self.redis.stop()
        self.nats.stop()

    @property
    def nats_pid(self) -> int:
        assert self.nats.proc is not None
        return self.nats.proc.pid


def _rates_until_failure(listed: list[float], ceiling: float) -> Iterator[float]:
    """The listed rates, then 25 % more each step up to `ceiling`: the search goes on until the target fails (or
    the load generator cannot keep up), so a ratio is taken against the echo's real maximum, not a list's end."""
    yield from listed
    rate = listed[-1] if listed else 1000.0
    while rate * 1.25 <= ceiling:
        rate = float(round(rate * 1.25, -3))
        yield rate


class Bench:
    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.results: dict[str, Any] = {"failed_steps": {}}
        self.sent_to_gates = 0
        self.phase = 0
        self.nc: Any = None

    async def step(self, name: str, run: Callable[[], Awaitable[Any]]) -> Any:
        """Run one step; a failure is printed and recorded, and the benchmark goes on."""
        print(f"{name}:", flush=True)
        try:
            value = await run()
        except Exception as exc:
            self.results["failed_steps"][name] = repr(exc)
            print(f"  FAILED: {exc!r} (going on)", flush=True)
            return None
        self.results[name] = value
        return value

    def payloads(self, tag: str, count: int) -> list[bytes]:
        self.phase += 1
        return [orjson.dumps(intent_body(f"{tag}{self.phase}", i)) for i in range(count)]

    async def load(self, target: str, rate: float, duration: float, pid: int | None = None) -> tuple[LoadResult, dict]:
        subject = {"echo": "bench.echo", "floor": "bench.floor"}.get(target, GATE_SUBJECT)
        count = int(rate * duration) if subject == GATE_SUBJECT else min(int(rate * duration), 5000)
        payloads = self.payloads(target, count)
        pids = {"responder": pid, "nats": self.stack.nats_pid}
        before = {k: cpu_seconds(v) for k, v in pids.items() if v is not None}
        own = time.process_time()
        result = await run_load(self.nc, subject, payloads, rate, duration, budget_us=BUDGET_MS * 1000)
        replies = max(result.received, 1)
        cpu = {f"{k}_cpu_us": round((cpu_seconds(pids[k]) - v) / replies * 1e6, 1) for k, v in before.items()}
        cpu["generator_cpu_us"] = round((time.process_time() - own) / replies * 1e6, 1)
        if subject == GATE_SUBJECT:
            self.sent_to_gates += result.sent
        return result, cpu

    def sustained(self, result: LoadResult) -> bool:
        return (
            result.lost == 0
            and result.duplicates == 0
            and result.shed == 0
            and result.percentile(99) < BUDGET_MS * 1000
        )

    async def search(self, target: str, pid: int | None) -> dict[str, Any]:
        best, steps, bound_by_generator = 0.0, [], False
        for rate in _rates_until_failure(self.args.search_rates, self.args.search_ceiling):
            result, cpu = await self.load(target, rate, self.args.search_duration, pid)
            steps.append({**summarise(result), **cpu})
            ok = self.sustained(result)
            lagging = result.send_lag_s > 0.25
            print(
                f"  {rate:>7,.0f}/s achieved {result.achieved_rate:8.0f}/s lost {result.lost:5} shed {result.shed:5} "
                f"p99 {result.percentile(99) / 1000:8.2f} ms  {'ok' if ok else 'not sustained'}"
                f"{'  (load generator fell behind its schedule)' if lagging else ''}",
                flush=True,
            )
            if not ok:
                break
            best = result.achieved_rate
            if lagging:
                bound_by_generator = True
                break
            await asyncio.sleep(1.0)  # let queues drain between steps
        return {"max_rate": round(best), "steps": steps, "bound_by_generator": bound_by_generator}

    async def fixed(self, rate: float, pids: dict[str, int | None]) -> dict[str, Any]:
        row: dict[str, Any] = {"rate": rate}
        for target, pid in pids.items():
            result, cpu = await self.load(target, rate, self.args.duration, pid)
            row[target] = {**summarise(result), **cpu}
            await asyncio.sleep(0.5)
        echo, gate = row["echo"], row["gate"]
        row["gate_cpu_ratio"] = round(gate["responder_cpu_us"] / max(echo["responder_cpu_us"], 0.1), 2)
        row["floor_cpu_ratio"] = round(row["floor"]["responder_cpu_us"] / max(echo["responder_cpu_us"], 0.1), 2)
        row["p99_ratio"] = round(gate["p99_us"] / max(echo["p99_us"], 1), 2)
        print(
            f"  {rate:>7,.0f}/s  CPU per message: echo {echo['responder_cpu_us']} us, floor "
            f"{row['floor']['responder_cpu_us']} us, gate {gate['responder_cpu_us']} us (gate/echo "
            f"{row['gate_cpu_ratio']}x)   p99: echo {echo['p99_us'] / 1000:.2f} ms, gate "
            f"{gate['p99_us'] / 1000:.2f} ms ({row['p99_ratio']}x)   lost {gate['lost']}",
            flush=True,
        )
        return row

    async def wait_for_gates(self, count: int) -> int:
        """Until `count` gates answer pings with the bench policy (each ping reaches one gate: ask a few times)."""
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(seen)} of {count} gates came up")
            try:
                beat = orjson.loads((await self.nc.request("cio.gate.ping", b"", timeout=1)).data)
                if beat["policy_version"] is not None:
                    seen.add(beat["gate_id"])
            except Exception:
                await asyncio.sleep(0.2)
        return len(seen)

    async def overload(self, gate_max: float, normal_p99_us: float | None, pid: int) -> dict[str, Any]:
        rate = max(2 * gate_max, 2000.0)
        result, cpu = await self.load("gate", rate, self.args.overload_duration, pid)
        recovery, _ = await self.load("gate", 500, 3.0, pid)
        first, second = [*recovery.latency_by_second, [], []][:2]
        out = {
            **summarise(result),
            **cpu,
            "answered_pct": round(100 * result.received / max(result.sent, 1), 3),
            "shed_pct": round(100 * result.shed / max(result.received, 1), 1),
            "recovery_p99_first_second_us": round(recovery.percentile(99, first)) if first else None,
            "recovery_p99_second_second_us": round(recovery.percentile(99, second)) if second else None,
            "recovery_lost": recovery.lost,
            "normal_p99_us": normal_p99_us,
        }
        after = [
            f"{v / 1000:.2f} ms" if v else "n/a"
            for v in (out["recovery_p99_first_second_us"], out["recovery_p99_second_second_us"])
        ]
        print(
            f"  offered {rate:,.0f}/s (2x the gate's maximum): answered {out['answered_pct']}% ({result.lost} lost), "
            f"shed {out['shed_pct']}% as OVERLOADED, approvals after the budget {result.approved_late}; after the "
            f"load drops: p99 {after[0]} in the first second, {after[1]} in the next",
            flush=True,
        )
        return out

    async def policy_pickup(self, redis: aioredis.Redis) -> dict[str, Any]:
        """Activate new versions the way the control plane does and poll the gate (1 ms apart) until a decision
        reports the new version: an upper bound on how long a gate keeps deciding under the old policy."""
        spec = bench_policy()
        base = int(time.time())  # versions only go up: start above anything earlier phases wrote
        times = []
        for n in range(self.args.pickups):
            version = base + n
            document = build_document(spec, version, "bench", signer=SIGNER)
            started = time.perf_counter()
            await publish_policy(redis, self.nc, document)
            while True:
                self.sent_to_gates += 1
                reply = await self.nc.request(GATE_SUBJECT, self.payloads("pick", 1)[0], timeout=2)
                if orjson.loads(reply.data)["data"]["policy_version"] == version:
                    break
                await asyncio.sleep(0.001)
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
        ordered = sorted(times)
        out = {
            "activations": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2], 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(ordered[-1], 2),
        }
        print(f"  {out['activations']} activations: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms", flush=True)
        return out

    async def large_policy(self, redis: aioredis.Redis, pid: int) -> dict[str, Any]:
        """Latency while the largest policy the control plane accepts (128 KiB of compact JSON: about 3,000 symbols)
        is activated once a second: parsed and verified off the event loop, re-read only when it changes."""
        raw = json.loads(bench_policy().model_dump_json())
        raw["symbols"].update({f"X{i:06d}USDT": {"max_order_quantity": 1.5} for i in range(2_950)})
        base = int(time.time()) + 10_000

        async def activate_every_second() -> None:
            for n in range(1, 6):
                spec = PolicySpec.parse({**raw, "description": f"large policy {n}"})
                await publish_policy(redis, self.nc, build_document(spec, base + n, "bench", signer=SIGNER))
                await asyncio.sleep(1.0)

        activations = asyncio.create_task(activate_every_second())
        result, cpu = await self.load("gate", 1000, 5.0, pid)
        await activations
        out = {
            **summarise(result),
            **cpu,
            "document_bytes": len(
                build_document(PolicySpec.parse(raw), 1, "b", signer=SIGNER).model_dump_json(exclude_defaults=True)
            ),
        }
        print(
            f"  5 activations of a {out['document_bytes'] / 1024:,.0f} KiB policy during 1,000/s: p50 "
            f"{out['p50_us'] / 1000:.2f} ms, p99 {out['p99_us'] / 1000:.2f} ms, lost {out['lost']}",
            flush=True,
        )
        return out

    async def run(self) -> dict[str, Any]:
        stack = self.stack
        self.nc = await nats.connect(stack.nats_url, pending_size=256 * 1024 * 1024)
        redis = aioredis.Redis.from_url(stack.redis_url)
        await publish_policy(redis, self.nc, build_document(bench_policy(), 1, "bench", signer=SIGNER))
        await self.nc.publish("cio.portfolio.snapshot", snapshot())

        async def keep_snapshots_fresh() -> None:
            while True:
                await self.nc.publish("cio.portfolio.snapshot", snapshot())
                await asyncio.sleep(2)

        snapshots = asyncio.create_task(keep_snapshots_fresh())
        echo = stack.spawn("echo", ["-m", "bench.echo_responder", stack.nats_url])
        floor = stack.spawn("floor", ["-m", "bench.floor_responder", stack.nats_url])
        gate = stack.gate("bench-gate-1")
        pids = {"echo": echo.pid, "floor": floor.pid, "gate": gate.pid}
        await self.step("startup", lambda: self.wait_for_gates(1))
        for target in pids:  # warm-up: imports, caches, allocator
            await self.load(target, 500, 1.0, pids[target])

        maxima = {}
        for target in pids:
            found = await self.step(f"max_sustained_{target}", lambda t=target: self.search(t, pids[t]))
            maxima[target] = found["max_rate"] if found else 0
        gate_max = maxima["gate"] or 2000
        rates = sorted({500.0, float(max(round(gate_max / 2, -2), 500))})
        fixed = []
        for rate in rates:
            row = await self.step(f"fixed_{rate:.0f}", lambda r=rate: self.fixed(r, pids))
            if row:
                fixed.append(row)
        self.results["fixed_rates"] = fixed

        second = stack.gate("bench-gate-2")
        if await self.step("startup_second_gate", lambda: self.wait_for_gates(2)) is not None:
            await self.step("max_sustained_two_gates", lambda: self.search("gate", second.pid))
        stack.stop("bench-gate-2")

        normal = next((row["gate"]["p99_us"] for row in fixed if row["rate"] == 500.0), None)
        await self.step("overload", lambda: self.overload(gate_max, normal, gate.pid))
        await self.step("policy_pickup", lambda: self.policy_pickup(redis))
        await self.step("large_policy", lambda: self.large_policy(redis, gate.pid))

        snapshots.cancel()

        async def audit() -> dict[str, Any]:
            await asyncio.sleep(2.0)  # the last PubAcks
            info = await self.nc.jetstream().stream_info("CIO_AUDIT")
            out = {"requests": self.sent_to_gates, "events": info.state.messages}
            out["exactly_once"] = out["requests"] == out["events"]
            signed = await self.nc.jetstream().stream_info(audit_checkpoint.CHECKPOINT_STREAM)
            out["checkpoints"] = signed.state.messages
            print(
                f"  {out['events']:,} events for {out['requests']:,} requests; {out['checkpoints']:,} signed "
                "checkpoints of the gates' heads",
                flush=True,
            )
            return out

        await self.step("audit", audit)
        slow = (stack.work / "nats.log").read_text(errors="replace").count("Slow Consumer")
        self.results["nats_slow_consumer_events"] = slow
        if slow:
            print(f"  NATS reported {slow} slow-consumer events (messages dropped by the server)", flush=True)
        await self.nc.close()
        await redis.aclose()
        self.results["maxima"] = maxima
        return self.results


def decision_cost_us(iterations: int) -> dict[str, float]:
    """The pure decision function, and the whole in-process pipeline (validate, decide, serialise), per intent,
    without and with a recorded span per decision (what exporting traces adds)."""
    spec = bench_policy()
    policy = CompiledPolicy(build_document(spec, 1, "bench"))
    state = GateState()
    state.apply_snapshot(PortfolioSnapshot.model_validate_json(snapshot()))
    intent = Intent.model_validate(intent_body("cost", 1))
    now = time.time()
    evaluate(intent, policy, state, now)
    per_eval = min(timeit.repeat(lambda: evaluate(intent, policy, state, now), number=iterations, repeat=5))
    out = {"evaluate_us": per_eval / iterations * 1e6}
    for name, tracer in (
        ("pipeline_us", DecisionTracer(None)),
        ("pipeline_traced_us", DecisionTracer(TracerProvider())),
    ):
        # Each strategy's share is charged as usual, with a rate no tight loop reaches: the cost of deciding is
        # measured here, not the cost of shedding.
        settings = GateSettings(gate_id="bench", dedupe_id_ttl_s=1e-9, strategy_budget_per_s=1e9)
        pipeline = DecisionPipeline(settings, FixedPolicy(policy), state, tracer, GateCounters())
        payloads = [orjson.dumps(intent_body(name, i)) for i in range(iterations)]
        started = time.perf_counter()
        for payload in payloads:
            pipeline.process(GATE_SUBJECT, payload, None, "_INBOX.x")
        out[name] = (time.perf_counter() - started) / iterations * 1e6
    shed_settings = GateSettings(gate_id="bench")
    shedder = DecisionPipeline(shed_settings, FixedPolicy(policy), state, DecisionTracer(None), GateCounters())
    payloads = [orjson.dumps(intent_body("shed", i)) for i in range(iterations)]
    started = time.perf_counter()
    for payload in payloads:
        shedder.shed(GATE_SUBJECT, payload, None, "_INBOX.x", 0.1)
    out["shed_us"] = (time.perf_counter() - started) / iterations * 1e6
    return {k: round(v, 1) for k, v in out.items()}


def run_on_stack(
    prefix: str,
    what: str,
    bench: Callable[["Stack"], Awaitable[dict[str, Any]]],
    freeze_heap: bool = False,
) -> dict[str, Any]:
    """Run `bench` on its own NATS and Redis in a temporary folder. Never raises: a stack that does not start or
    a run that fails is reported in `failed_steps` and printed, and the benchmark goes on to its next part."""
    results: dict[str, Any] = {"failed_steps": {}}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            stack = Stack(Path(tmp))
        except Exception as exc:
            results["failed_steps"]["stack"] = repr(exc)
            print(f"could not start NATS/Redis: {exc!r}", flush=True)
            return results
        try:
            if freeze_heap:
                gc.collect()
                gc.freeze()
            results = asyncio.run(bench(stack))
            results.setdefault("failed_steps", {})
        except Exception as exc:
            results["failed_steps"]["run"] = repr(exc)
            print(f"{what} failed: {exc!r}", flush=True)
        finally:
            stack.close()
    return results


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per fixed-rate step")
    parser.add_argument(
        "--search-rates",
        type=float,
        nargs="+",
        default=[1000, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 20000, 24000, 28000],
    )
    parser.add_argument("--search-duration", type=float, default=3.0)
    parser.add_argument(
        "--search-ceiling", type=float, default=200_000, help="past the listed rates, +25 %% a step up to this"
    )
    parser.add_argument("--overload-duration", type=float, default=5.0)
    parser.add_argument("--cost-iterations", type=int, default=20_000)
    parser.add_argument("--pickups", type=int, default=100)
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()

    # The load generator's own pauses would show up as latency: start it with a frozen, clean heap.
    results = run_on_stack("cio-bench-", "benchmark run", lambda stack: Bench(args, stack).run(), freeze_heap=True)

    print("decision cost in process:", flush=True)  # measured last: its garbage cannot disturb the latency steps
    try:
        cost = decision_cost_us(args.cost_iterations)
        results["decision_cost"] = cost
        print(
            f"  evaluate() {cost['evaluate_us']} us; pipeline {cost['pipeline_us']} us "
            f"({cost['pipeline_traced_us']} us with a recorded span); shedding {cost['shed_us']} us",
            flush=True,
        )
    except Exception as exc:
        results["failed_steps"]["decision_cost"] = repr(exc)
        print(f"  FAILED: {exc!r}", flush=True)
    results["machine"] = machine()
    results["command"] = "make bench"
    summary(results)
    write_results(results, Path(args.out))


def summary(results: dict[str, Any]) -> None:
    maxima = results.get("maxima", {})
    two = results.get("max_sustained_two_gates") or {}
    print("summary (targets are ratios to the echo measured in this run):")
    if maxima.get("echo"):
        ratio = maxima.get("gate", 0) / maxima["echo"]
        print(f"  max sustained: gate {maxima.get('gate')}/s, echo {maxima['echo']}/s -> {ratio:.2f} (target >= 0.6)")
        if (results.get("max_sustained_echo") or {}).get("bound_by_generator"):
            print("  (the echo outran the load generator: its true maximum is higher, the true ratio lower)")
    if two:
        print(f"  two gates: {two.get('max_rate')}/s against one gate's {maxima.get('gate')}/s")
    for row in results.get("fixed_rates", []):
        print(
            f"  at {row['rate']:,.0f}/s: gate CPU / echo CPU {row['gate_cpu_ratio']} (target <= 1.5), p99 ratio "
            f"{row['p99_ratio']} (target <= 1.5)"
        )
    if results.get("failed_steps"):
        print(f"  failed steps: {', '.join(results['failed_steps'])}")


if __name__ == "__main__":
    main()
