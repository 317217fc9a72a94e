"""`make bench`, part: how fast the policy impact preview replays audited intents on one core (docs/impact-preview.md).

Generates audit events as the gate writes them (`encode_audit_event`, the intent as validated) for the fleet's
shapes: the realtime strategies' sized limit and market orders with a stop, the TA bot's engine-sized orders
(quantity 0, `intent_id`, no `signal_id`), closes and holds, over three symbols and four strategies, with a portfolio
snapshot every two seconds. Then replays them with `gate.replay.replay` under the README's example policy (active)
and each of two candidates (a tighter global `max_order_notional_usd` with a flood limit; tighter limits for one
strategy): reading each event and validating its intent in one pass, then judging it under both policies, the
control plane's work once the store has read the rows.

Reported: intents/s (best of `--rounds`), the time 1M intents would take at that rate, and the diff's size; the goal
is 50,000 intents/s. A step that fails is reported and the benchmark goes on. Results are merged into
`.cio/bench/results.json` under `replay`.
"""

import argparse
import gc
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.gate_latency import ROOT
from cio_kernel.contracts.audit_event import encode_audit_event
from cio_kernel.contracts.intent import Intent
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.store import build_document
from gate.replay import AuditedIntent, replay

GOAL_PER_S = 50_000
SYMBOLS = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_400.0, "SOLUSDT": 240.0}
STRATEGIES = ["momentum-1", "mean-revert", "Iceberg Order Detector", "Volume Surge Breakout"]
START = 1_800_000_000.0


def _body(i: int, now: float) -> dict[str, Any]:
    symbol = list(SYMBOLS)[i % len(SYMBOLS)]
    price = SYMBOLS[symbol]
    strategy = STRATEGIES[i % len(STRATEGIES)]
    stamp = datetime.fromtimestamp(now - 0.05, UTC).isoformat()
    side = "buy" if i % 2 else "sell"
    if strategy == "Volume Surge Breakout":  # the TA bot: the trade engine sizes it
        return {
            "strategy_id": strategy,
            "symbol": symbol,
            "action": side if i % 11 else "close",
            "confidence": 0.72,
            "current_price": price,
            "price": price,
            "strategy_mode": "deterministic",
            "quantity": 0.0,
            "source": "ta_bot",
            "strategy": strategy,
            "stop_loss": price * (0.98 if side == "buy" else 1.02),
            "timestamp": stamp,
            "intent_id": f"ta-{i}",
        }
    body: dict[str, Any] = {
        "strategy_id": strategy,
        "strategy": "realtime",
        "symbol": symbol,
        "action": side if i % 17 else "hold",
        "confidence": 0.6 + (i % 4) / 10,
        "price": price * (1.0005 if side == "buy" else 0.9995),
        "current_price": price,
        "quantity": round((500.0 + (i % 7) * 400.0) / price, 6),
        "source": "realtime-strategies",
        "signal_id": f"sig-{i}",
        "stop_loss": price * (0.98 if side == "buy" else 1.02),
        "take_profit": price * (1.04 if side == "buy" else 0.96),
        "order_type": "limit" if i % 3 == 0 else "market",
        "timeframe": "15m",
        "timestamp": stamp,
    }
    if i % 5 == 0:
        body["indicators"] = {"rsi": 41.2, "ema_fast": price * 0.999, "ema_slow": price * 1.001}
    return body


def audit_events(n: int, per_s: float = 200.0) -> list[bytes]:
    """`n` audit events at `per_s`, as the store keeps them (`DecisionRecord.payload`)."""
    events = []
    for i in range(n):
        now = START + i / per_s
        intent = Intent.model_validate(_body(i, now))
        dump = intent.model_dump(mode="json", exclude_none=True)
        if intent.timestamp is not None:
            dump["timestamp"] = intent.timestamp.isoformat()
        payload = encode_audit_event(
            decision_id=f"{i:032x}",
            ts=datetime.fromtimestamp(now, UTC),
            gate_id=f"gate-{i % 2}",
            subject=f"cio.intent.trading.{intent.strategy_key}",
            strategy_id=intent.strategy_id,
            strategy_key=intent.strategy_key,
            symbol=intent.symbol,
            action=intent.action,
            intent_id=intent.intent_id,
            decision="APPROVED",
            reasons=[],
            field_errors=None,
            policy_version=1,
            policy_checksum="sha256:bench",
            trace_id=os.urandom(16).hex(),
            span_id=os.urandom(8).hex(),
            traceparent="",
            latency_us=120,
            signal_subject=None,
            intent=dump,
            raw_intent=None,
            state={"trading_state": "active", "snapshot_ts": datetime.fromtimestamp(now // 2 * 2, UTC)},
        )
        events.append(payload)
    return events


def policies() -> tuple[PolicySpec, dict[str, PolicySpec]]:
    """The example policy (active) and two candidates: one tightening a global limit and adding a flood limit, one
    tightening a single strategy."""
    raw = json.loads((ROOT / "deploy" / "policies" / "example.json").read_text())
    raw["strategies"]["volume_surge_breakout"] = {}  # the TA bot's strategies, listed as the fleet's are
    active = PolicySpec.parse(raw)
    tighter = json.loads(json.dumps(raw))
    tighter["global"]["max_order_notional_usd"] = 1_500.0
    tighter["global"]["max_intents_per_second"] = 2
    one = json.loads(json.dumps(raw))
    one["strategies"]["momentum_1"] = {"max_order_notional_usd": 1_500.0, "max_intents_per_second": 1}
    return active, {"global": PolicySpec.parse(tighter), "one strategy": PolicySpec.parse(one)}


def measure(n: int, rounds: int) -> dict[str, Any]:
    started = time.perf_counter()
    events = audit_events(n)
    generated_s = round(time.perf_counter() - started, 2)
    out: dict[str, Any] = {"intents": n, "generated_s": generated_s, "goal_per_s": GOAL_PER_S}
    active, candidates = policies()
    at = datetime.fromtimestamp(START, UTC)
    before = build_document(active, 1, "bench", at)
    for name, spec in candidates.items():
        after = build_document(spec, 2, "bench", at)
        best, impact = float("inf"), None
        for _ in range(rounds):
            gc.collect()
            started = time.perf_counter()
            impact = replay((AuditedIntent.from_event(e) for e in events), before, after)
            best = min(best, time.perf_counter() - started)
        assert impact is not None
        per_s = n / best
        out[name] = figures = {
            "best_s": round(best, 3),
            "intents_per_s": round(per_s),
            "one_million_s": round(1_000_000 / per_s, 1),
            "meets_goal": per_s >= GOAL_PER_S,
            "approved_to_rejected": impact.approved_to_rejected,
            "rejected_to_approved": impact.rejected_to_approved,
            "approximated_intents": impact.approximated_intents,
            "cells": len(impact.cells),
        }
        print(
            f"  candidate tightening {name}: {figures['intents_per_s']:,} intents/s (goal {GOAL_PER_S:,}: "
            f"{'met' if figures['meets_goal'] else 'MISSED'}); 1M intents in {figures['one_million_s']} s; "
            f"{figures['approved_to_rejected']:,} approvals become rejections, {figures['rejected_to_approved']:,} "
            f"the reverse, in {figures['cells']} cells; {figures['approximated_intents']:,} approximated",
            flush=True,
        )
    return out


def write(out: Path, figures: dict[str, Any]) -> None:
    results = json.loads(out.read_text()) if out.exists() else {}
    results["replay"] = figures
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results merged into {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intents", type=int, default=100_000, help="intents per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / ".cio" / "bench" / "results.json"))
    args = parser.parse_args()
    print(f"replay throughput, one core, {args.intents:,} intents, best of {args.rounds}:", flush=True)
    figures: dict[str, Any] = {"failed_steps": {}}
    try:
        figures.update(measure(args.intents, args.rounds))
    except Exception as exc:
        figures["failed_steps"]["replay"] = repr(exc)
        print(f"  FAILED: {exc!r} (going on)", flush=True)
    try:
        write(Path(args.out), figures)
    except Exception as exc:
        print(f"  could not write results: {exc!r}", flush=True)


if __name__ == "__main__":
    main()
