"""`make bench`, "intake": what the intake stream costs (docs/contracts.md, "Producers that never listen").

Real NATS (JetStream) and Valkey, gate processes (`python -m gate`), open-loop load from this process. Measured
in the same run, one after another, at each rate:

- the *echo* responder (the NATS client's cost for one message in, one out): the baseline every ratio in
  `make bench` is taken against;
- a gate **without** the intake stream (`CIO_INTAKE_STREAM_ENABLED=false`, the streams deleted first), then a
  gate **with** it (the default), alternating for `--rounds` rounds (medians reported), each given
  - requests: latency from the scheduled send to the reply, and CPU per intent of the gate and of NATS, counted
    until the stream path has skipped every stored request (its claim found), so the claims' whole cost is in;
  - plain publishes: latency from the scheduled send to the promoted signal (with the stream, that includes the
    hold, `CIO_INTAKE_HOLD_MS`), and CPU per intent of the gate and NATS until every intent is settled.

A step that fails is reported and the run goes on. Results: `.cio/bench/intake_stream.json`.
`python -m bench.intake_stream [--rates 500 2000] [--duration 5]`.
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import orjson
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bench.gate_latency import (
    BUDGET_MS,
    GATE_SUBJECT,
    ROOT,
    SIGNER,
    Stack,
    bench_policy,
    cpu_seconds,
    intent_body,
    machine,
    run_on_stack,
    snapshot,
    summarise,
    write_results,
)
from bench.load import run_load
from cio_kernel.intake_stream import INTAKE_CLAIMS_STREAM, INTAKE_CONSUMER, INTAKE_STREAM
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.store import build_document


def spawn_gate(stack: Stack, name: str, **env: str) -> int:
    """A gate process configured as `bench.gate_latency` starts its own (plus `env`); its pid."""
    return stack.gate(name, **env).pid


async def wait_for_gate(nc: NATS, name: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            beat = orjson.loads((await nc.request("cio.gate.ping", b"", timeout=1)).data)
            if beat["gate_id"] == name and beat["policy_version"] is not None:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"gate {name} did not come up")


async def intake_settled(nc: NATS, timeout_s: float = 60.0) -> None:
    """The intake consumer has delivered and settled everything stored (no-op without the stream)."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            info = await js.consumer_info(INTAKE_STREAM, INTAKE_CONSUMER)
        except Exception:
            return
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the intake consumer did not settle")


async def plain_load(nc: NATS, payloads: list[bytes], rate: float, drain_s: float) -> dict[str, Any]:
    """Publish without a reply subject on a fixed schedule; latency = promoted signal's arrival - scheduled send."""
    total = len(payloads)
    scheduled = [0.0] * total
    seen = bytearray(total)
    latencies: list[float] = []
    done = asyncio.Event()
    prefix = orjson.loads(payloads[0])["signal_id"].rsplit("-", 1)[0]

    async def on_signal(msg: Msg) -> None:
        now = time.perf_counter()
        signal_id = orjson.loads(msg.data).get("signal_id", "")
        head, _, index_text = signal_id.rpartition("-")
        if head != prefix:
            return
        index = int(index_text)
        if seen[index]:
            return
        seen[index] = 1
        latencies.append((now - scheduled[index]) * 1e6)
        if len(latencies) == total:
            done.set()

    sub = await nc.subscribe("signals.trading.>", cb=on_signal, pending_msgs_limit=1_000_000)
    await flush_ordered(nc)
    interval = 1.0 / rate
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) / interval) + 1)
        while sent < due:
            scheduled[sent] = start + sent * interval
            await nc.publish(GATE_SUBJECT, payloads[sent])
            sent += 1
        await asyncio.sleep(0.0005)
    await flush_ordered(nc)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), drain_s)
    await sub.unsubscribe()
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]) if ordered else None

    return {"sent": total, "promoted": len(latencies), "p50_us": pct(50), "p99_us": pct(99), "max_us": pct(100)}


class IntakeBench:
    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.results: dict[str, Any] = {"failed_steps": {}}
        self.nc: NATS | None = None
        self.phase = 0
        self.decisions = 0

    async def step(self, name: str, run: Callable[[], Awaitable[Any]]) -> Any:
        print(f"{name}:", flush=True)
        try:
            value = await run()
        except Exception as exc:
            self.results["failed_steps"][name] = repr(exc)
            print(f"  FAILED: {exc!r} (going on)", flush=True)
            return None
        self.results[name] = value
        return value

    def payloads(self, count: int) -> list[bytes]:
        self.phase += 1
        return [orjson.dumps(intent_body(f"in{self.phase}", i)) for i in range(count)]

    async def measured(self, pid: int, work: Callable[[], Awaitable[dict[str, Any]]], count: int) -> dict[str, Any]:
        """`work`'s figures plus CPU per intent of the process `pid` and of NATS, counted until the intake
        consumer has settled what the work stored."""
        assert self.nc is not None
        pids = {"responder": pid, "nats": self.stack.nats_pid}
        before = {k: cpu_seconds(v) for k, v in pids.items()}
        out = await work()
        await intake_settled(self.nc)
        out.update(
            {f"{k}_cpu_us": round((cpu_seconds(pids[k]) - v) / max(count, 1) * 1e6, 1) for k, v in before.items()}
        )
        return out

    async def requests(self, pid: int, rate: float) -> dict[str, Any]:
        assert self.nc is not None
        nc = self.nc
        count = int(rate * self.args.duration)
        payloads = self.payloads(count)

        async def work() -> dict[str, Any]:
            result = await run_load(nc, GATE_SUBJECT, payloads, rate, self.args.duration, budget_us=BUDGET_MS * 1000)
            return summarise(result)

        out = await self.measured(pid, work, count)
        self.decisions += out["sent"]
        return out

    async def plain(self, pid: int, rate: float) -> dict[str, Any]:
        assert self.nc is not None
        nc = self.nc
        count = int(rate * self.args.duration)
        payloads = self.payloads(count)
        out = await self.measured(pid, lambda: plain_load(nc, payloads, rate, drain_s=10.0), count)
        self.decisions += out["sent"]
        return out

    async def gate_phase(self, name: str, pid: int) -> dict[str, Any]:
        assert self.nc is not None
        await wait_for_gate(self.nc, name)
        await run_load(self.nc, GATE_SUBJECT, self.payloads(500), 500, 1.0)  # warm-up
        self.decisions += 500
        await intake_settled(self.nc)
        rows: dict[str, Any] = {}
        for rate in self.args.rates:
            for kind, run in (("requests", self.requests), ("plain", self.plain)):
                row = await self.step(f"  {name} {kind} {rate:.0f}/s", lambda r=rate, f=run: f(pid, r))
                if row is not None:
                    rows[f"{kind}_{rate:.0f}"] = row
                    print(
                        f"    p50 {row['p50_us'] / 1000 if row['p50_us'] else float('nan'):.2f} ms, p99 "
                        f"{row['p99_us'] / 1000 if row['p99_us'] else float('nan'):.2f} ms; CPU per intent: gate "
                        f"{row['responder_cpu_us']} us, NATS {row['nats_cpu_us']} us"
                        + (f"; lost {row['lost']}" if "lost" in row else f"; promoted {row['promoted']}/{row['sent']}"),
                        flush=True,
                    )
                await asyncio.sleep(0.5)
        return rows

    async def run(self) -> dict[str, Any]:
        stack = self.stack
        self.nc = nc = await nats.connect(stack.nats_url, pending_size=256 * 1024 * 1024)
        redis = aioredis.Redis.from_url(stack.redis_url)
        await publish_policy(redis, nc, build_document(bench_policy(), 1, "bench", signer=SIGNER))

        async def keep_snapshots_fresh() -> None:
            while True:
                await nc.publish("cio.portfolio.snapshot", snapshot())
                await asyncio.sleep(2)

        snapshots = asyncio.create_task(keep_snapshots_fresh())
        echo = stack.spawn("echo", ["-m", "bench.echo_responder", stack.nats_url])
        await asyncio.sleep(1.0)
        echo_rows: dict[str, Any] = {}
        for rate in self.args.rates:

            async def echo_load(r: float = rate) -> dict[str, Any]:
                count = int(r * self.args.duration)
                payloads = self.payloads(min(count, 5000))
                return await self.measured(
                    echo.pid,
                    lambda: self._summarised(run_load(nc, "bench.echo", payloads, r, self.args.duration)),
                    count,
                )

            row = await self.step(f"echo {rate:.0f}/s", echo_load)
            if row is not None:
                echo_rows[f"{rate:.0f}"] = row
                print(
                    f"    p99 {row['p99_us'] / 1000:.2f} ms; CPU per message {row['responder_cpu_us']} us", flush=True
                )
        self.results["echo"] = echo_rows
        stack.stop("echo")

        # Rounds alternate the two gates, so a neighbour's burst on a shared machine hits both alike; each figure
        # is the median over the rounds.
        rounds: dict[str, list[dict[str, Any]]] = {"without_stream": [], "with_stream": []}
        for n in range(self.args.rounds):
            for key, name, env in (
                ("without_stream", f"bench-no-stream-{n}", {"CIO_INTAKE_STREAM_ENABLED": "false"}),
                ("with_stream", f"bench-stream-{n}", {}),
            ):
                if key == "without_stream":
                    await drop_intake_streams(nc)  # NATS must store nothing while the gate without it runs
                pid = spawn_gate(stack, name, **env)
                label = f"round {n + 1}: gate {'with' if env == {} else 'without'} the intake stream"
                rows = await self.step(label, lambda nm=name, p=pid: self.gate_phase(nm, p))
                stack.stop(name)
                if rows:
                    rounds[key].append(rows)
        self.results["rounds"] = rounds
        self.results["without_stream"] = median_rows(rounds["without_stream"])
        self.results["with_stream"] = median_rows(rounds["with_stream"])
        snapshots.cancel()

        async def audit() -> dict[str, Any]:
            await asyncio.sleep(2.0)
            info = await nc.jetstream().stream_info("CIO_AUDIT")
            out = {"decisions": self.decisions, "events": info.state.messages}
            out["exactly_once"] = out["decisions"] == out["events"]
            print(f"    {out['events']:,} audit events for {out['decisions']:,} intents", flush=True)
            return out

        await self.step("audit", audit)
        await nc.close()
        await redis.aclose()
        return self.results

    @staticmethod
    async def _summarised(load: Awaitable[Any]) -> dict[str, Any]:
        return summarise(await load)


async def drop_intake_streams(nc: NATS) -> None:
    js = nc.jetstream()
    for name in (INTAKE_STREAM, INTAKE_CLAIMS_STREAM):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)


def median_rows(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row and field, the median over the rounds that measured it."""
    out: dict[str, Any] = {}
    for key in {k for r in rounds for k in r}:
        rows = [r[key] for r in rounds if key in r]
        out[key] = {
            field: statistics.median(v[field] for v in rows)
            for field in rows[0]
            if all(isinstance(v.get(field), int | float) for v in rows)
        }
    return out


def ratios(results: dict[str, Any], rates: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    without, with_stream, echo = (
        results.get("without_stream") or {},
        results.get("with_stream") or {},
        results.get("echo") or {},
    )
    for rate in rates:
        key = f"{rate:.0f}"
        for kind in ("requests", "plain"):
            a, b = without.get(f"{kind}_{key}"), with_stream.get(f"{kind}_{key}")
            if not a or not b:
                continue
            row = {
                "p50_with_over_without": round(b["p50_us"] / max(a["p50_us"], 1), 2),
                "p99_with_over_without": round(b["p99_us"] / max(a["p99_us"], 1), 2),
                "gate_cpu_with_over_without": round(b["responder_cpu_us"] / max(a["responder_cpu_us"], 0.1), 2),
                "nats_cpu_with_over_without": round(b["nats_cpu_us"] / max(a["nats_cpu_us"], 0.1), 2),
                "extra_cpu_us_per_intent": round(
                    b["responder_cpu_us"] + b["nats_cpu_us"] - a["responder_cpu_us"] - a["nats_cpu_us"], 1
                ),
            }
            if echo.get(key):
                row["gate_cpu_over_echo_without"] = round(
                    a["responder_cpu_us"] / max(echo[key]["responder_cpu_us"], 0.1), 2
                )
                row["gate_cpu_over_echo_with"] = round(
                    b["responder_cpu_us"] / max(echo[key]["responder_cpu_us"], 0.1), 2
                )
                row["p99_over_echo_without"] = round(a["p99_us"] / max(echo[key]["p99_us"], 1), 2)
                row["p99_over_echo_with"] = round(b["p99_us"] / max(echo[key]["p99_us"], 1), 2)
            out[f"{kind}_{key}"] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[500.0, 2000.0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "intake_stream.json"))
    args = parser.parse_args()
    results = run_on_stack("cio-bench-intake-", "intake benchmark", lambda stack: IntakeBench(args, stack).run())
    results["ratios"] = ratios(results, args.rates)
    results["machine"] = machine()
    results["hold_ms"] = float(os.environ.get("CIO_INTAKE_HOLD_MS", "500"))
    print("summary (with the intake stream against without it, same run; echo is the NATS client's floor):")
    for name, row in results["ratios"].items():
        print(f"  {name}: {json.dumps(row)}")
    if results.get("failed_steps"):
        print(f"  failed steps: {', '.join(results['failed_steps'])}")
    write_results(results, Path(args.out))


if __name__ == "__main__":
    main()
