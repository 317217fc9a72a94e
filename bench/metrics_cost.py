"""`make bench`, part: what the gate's probes and metrics cost (docs/metrics.md). A gate with its health port on
(as deployed) and one with it off, spawned in turn on one stack, alternating which goes first each round; at each
fixed rate the echo responder is measured in the same round, and every figure is a ratio to it: gate CPU per
intent ÷ echo CPU per message, gate p99 ÷ echo p99. Medians and the spread across rounds are printed, since one
round's p99 on a small machine moves by tens of percent. The decision counters run either way (one dict slot and
one histogram bucket per decision); the port adds the server and a loop tick every half second.

A round that fails is reported and the next one runs. Results go to `.cio/bench/metrics_cost.json`.
"""

import argparse
import asyncio
import statistics
from pathlib import Path
from typing import Any

import httpx
import nats
import redis.asyncio as aioredis

from bench.gate_latency import ROOT, SIGNER, Bench, Stack, bench_policy, run_on_stack, snapshot, write_results
from cio_kernel.policy.publication import publish_policy
from cio_kernel.policy.store import build_document
from deploy.servers import free_port

ARMS = ("metrics on", "metrics off")
HISTOGRAM_COUNT = "cio_gate_decision_latency_seconds_count"


async def _round(bench: Bench, stack: Stack, arm: str, n: int, rates: list[float], echo_pid: int) -> dict[str, Any]:
    port = free_port() if arm == "metrics on" else 0
    name = f"metrics-{n}"
    gate = stack.gate(name, CIO_AUDIT_SPOOL_DIR=str(stack.work / name), CIO_GATE_HEALTH_PORT=str(port))
    try:
        await bench.wait_for_gates(1)
        sent_before = bench.sent_to_gates
        await bench.load("gate", rates[0], 1.0, gate.pid)  # warm-up
        row: dict[str, Any] = {}
        for rate in rates:
            echo, echo_cpu = await bench.load("echo", rate, bench.args.duration, echo_pid)
            result, cpu = await bench.load("gate", rate, bench.args.duration, gate.pid)
            row[str(int(rate))] = {
                "cpu_ratio": round(cpu["responder_cpu_us"] / max(echo_cpu["responder_cpu_us"], 0.1), 2),
                "p99_ratio": round(result.percentile(99) / max(echo.percentile(99), 1), 2),
                "gate_cpu_us": cpu["responder_cpu_us"],
                "gate_p99_ms": round(result.percentile(99) / 1000, 2),
                "lost": result.lost,
                "shed": result.shed,
            }
        if port:  # the scrape answers, and counts every decision the gate made
            async with httpx.AsyncClient(timeout=5) as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            count = next(line for line in text.splitlines() if line.startswith(HISTOGRAM_COUNT))
            row["histogram_count"] = int(float(count.split()[-1]))
            row["sent"] = bench.sent_to_gates - sent_before
        return row
    finally:
        stack.stop(name)


async def measure(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    bench = Bench(args, stack)
    bench.nc = await nats.connect(stack.nats_url, pending_size=256 * 1024 * 1024)
    store = aioredis.Redis.from_url(stack.redis_url)
    await publish_policy(store, bench.nc, build_document(bench_policy(), 1, "bench", signer=SIGNER))

    async def fresh_book() -> None:
        while True:
            await bench.nc.publish("cio.portfolio.snapshot", snapshot())
            await asyncio.sleep(2)

    book = asyncio.create_task(fresh_book())
    echo = stack.spawn("echo", ["-m", "bench.echo_responder", stack.nats_url])
    results: dict[str, Any] = {"failed_steps": {}, "rounds": {arm: [] for arm in ARMS}}
    try:
        await bench.load("echo", args.rates[0], 1.0, echo.pid)  # warm-up
        n = 0
        for number in range(args.rounds):
            for arm in ARMS if number % 2 == 0 else tuple(reversed(ARMS)):
                n += 1
                try:
                    row = await _round(bench, stack, arm, n, args.rates, echo.pid)
                except Exception as exc:
                    results["failed_steps"][f"round {number + 1} {arm}"] = repr(exc)
                    print(f"  round {number + 1} {arm}: FAILED {exc!r} (going on)", flush=True)
                    continue
                results["rounds"][arm].append(row)
                figures = "  ".join(
                    f"{rate}/s CPU {r['cpu_ratio']}x p99 {r['p99_ratio']}x" for rate, r in row.items() if rate.isdigit()
                )
                print(f"  round {number + 1} {arm:<11} {figures}", flush=True)
    finally:
        book.cancel()
        await bench.nc.close()
        await store.aclose()
    results["summary"] = summary(results["rounds"], args.rates)
    return results


def summary(rounds: dict[str, list[dict[str, Any]]], rates: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm, rows in rounds.items():
        for rate in (str(int(r)) for r in rates):
            cpu = [row[rate]["cpu_ratio"] for row in rows if rate in row]
            p99 = [row[rate]["p99_ratio"] for row in rows if rate in row]
            if not cpu:
                continue
            out[f"{arm} {rate}/s"] = figures = {
                "cpu_ratio_median": round(statistics.median(cpu), 2),
                "p99_ratio_median": round(statistics.median(p99), 2),
                "p99_ratio_range": [min(p99), max(p99)],
                "lost": sum(row[rate]["lost"] for row in rows if rate in row),
                "shed": sum(row[rate]["shed"] for row in rows if rate in row),
            }
            print(
                f"  {arm:<11} {rate:>5}/s: gate/echo CPU {figures['cpu_ratio_median']}x (median of {len(cpu)}), "
                f"p99 {figures['p99_ratio_median']}x (rounds {min(p99)}..{max(p99)}), "
                f"lost {figures['lost']}, shed {figures['shed']}",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 2000])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per rate and target")
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "metrics_cost.json"))
    args = parser.parse_args()
    print("the gate's probes and metrics: on vs off, interleaved, each against the echo of its round", flush=True)
    results = run_on_stack("cio-metrics-cost-", "metrics cost", lambda stack: measure(args, stack))
    write_results(results, Path(args.out))


if __name__ == "__main__":
    main()
