"""What intents built to be expensive cost the gate, in process, against a normal intent: the figures behind
"no intent costs much more than its size is charged to its strategy's share" (docs/contracts.md, Intake).

Each shape is decided by a real `DecisionPipeline` (policy, validation, redaction, audit record) with a share no
loop reaches, so deciding is measured, not shedding; `python -m bench.intake_cost [name …]`. `units` is what the
strategy's share is charged (`intent_cost`); `x normal` over `units` near or below 1 means the charge covers it.
"""

import statistics
import sys
import time

import orjson

from bench.gate_latency import bench_policy, snapshot
from bench.gate_latency import intent_body as bench_intent
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.store import build_document
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.runtime.fair_share import intent_cost
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer


def intent_body(**overrides: object) -> dict[str, object]:
    return {**bench_intent("cost", 1), **overrides}


def _with(extra: bytes) -> bytes:
    """A normal intent with `extra` (raw JSON members) added at its end."""
    return orjson.dumps(intent_body())[:-1] + b"," + extra + b"}"


def _fields(text: bytes, names: tuple[bytes, ...] = (b"rationale", b"llm_reasoning", b"note_1", b"note_2")) -> bytes:
    return _with(b",".join(b'"%s":"%s"' % (name, text) for name in names))


def shapes() -> dict[str, bytes]:
    return {
        "normal": orjson.dumps(intent_body()),
        "TA bot (SPEC §3)": orjson.dumps(
            intent_body(
                strategy_id="TA Bot Momentum",
                quantity=0.0,
                position_size_pct=None,
                quote_quantity=None,
                confidence_score=7.5e-01,
                indicators={"atr_pct": 1.2e-05},
                _otel_trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            )
        ),
        "depth 32, arrays": _with(b'"metadata":{"a":' + b"[" * 30 + b"]" * 30 + b"}"),
        "depth 32, objects": _with(b'"metadata":' + b'{"a":' * 31 + b"1" + b"}" * 31),
        "depth 33, mixed (refused)": _with(b'"metadata":' + b'{"a":[' * 16 + b"1" + b"]}" * 16),
        "brackets in strings": _with(b'"rationale":"' + b"{[" * 7000 + b'","llm_reasoning":"' + b"[{" * 7000 + b'"'),
        "60 KB of whitespace": orjson.dumps(intent_body())[:-1] + b" " * 60000 + b"}",
        "1015 keys": _with(b'"metadata":{' + b",".join(b'"k%d":1' % i for i in range(1015)) + b"}"),
        "5000 keys (refused)": _with(b'"metadata":{' + b",".join(b'"k%d":1' % i for i in range(5000)) + b"}"),
        "1000 empty objects in a list": _with(b'"llm_alternatives":[' + b",".join([b"{}"] * 1000) + b"]"),
        "1000 extra fields": _with(b",".join(b'"e%d":0' % i for i in range(1000))),
        "1000 meta entries": _with(b'"meta":{' + b",".join(b'"k%d":"%s"' % (i, b"x" * 40) for i in range(1000)) + b"}"),
        "surrogate pairs, 16 KB": _with(b'"rationale":"' + b"\\ud83d\\ude00" * 1300 + b'"'),
        "duplicate keys": _with(b",".join([b'"metadata":{"a":1}'] * 600)),
        "2000 exponent floats": _with(b'"metadata":{"a":[' + b",".join([b"1.2345678901234567e-300"] * 2000) + b"]}"),
        "4 x 16 KB tokentoken": _fields(b"tokentoken" * 1600),
        "4 x 16 KB api_key=abc": _fields(b"api_key=abc " * 1300),
        "4 x 16 KB bearer": _fields(b"bearer " * 2200),
        "4 x 16 KB a://b:c": _fields(b"a://b:c" * 2200),
        "4 x 16 KB words, then token=x": _fields(b"hello world " * 1300 + b"token=x"),
        "4 x 16 KB non-ASCII words, then token=x": _fields("héllo wörld ".encode() * 1100 + b"token=x"),
        "1000 secret keys": _with(b'"metadata":{' + b",".join(b'"password%d":"x"' % i for i in range(1000)) + b"}"),
        "invalid, 1000 secret keys": b'{"strategy_id":5,'
        + b",".join(b'"password%d":"%s"' % (i, b"tokentoken" * 3) for i in range(1000))
        + b"}",
    }


def main(names: list[str]) -> None:
    state = GateState()
    state.apply_snapshot(PortfolioSnapshot.model_validate_json(snapshot()))
    pipeline = DecisionPipeline(
        GateSettings(gate_id="bench", dedupe_id_ttl_s=1e-9, strategy_budget_per_s=1e12, strategy_budget_burst=1e12),
        FixedPolicy(CompiledPolicy(build_document(bench_policy(), 1, "bench"))),
        state,
        DecisionTracer(None),
        GateCounters(),
    )

    def median_us(data: bytes, runs: int) -> tuple[float, str]:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            outcome = pipeline.process("cio.intent.trading", data, None, "_INBOX.bench")
            times.append(time.perf_counter() - started)
        assert outcome.reply is not None
        error = orjson.loads(outcome.reply.payload).get("error") or {}
        return statistics.median(times) * 1e6, f"{outcome.decision} {error.get('code', '')}"

    all_shapes = shapes()
    normal, _ = median_us(all_shapes["normal"], 2000)
    print(f"{'shape':42} {'bytes':>6} {'us':>8} {'x normal':>9} {'units':>6}  answer")
    for name in names or list(all_shapes):
        data = all_shapes.get(name, b"")
        try:
            cost, answer = median_us(data, 30 if len(data) > 5000 else 300)
        except Exception as exc:  # a failed step is reported and the benchmark goes on
            print(f"{name:42} {len(data):6d} FAILED: {type(exc).__name__}: {exc}"[:200])
            continue
        print(f"{name:42} {len(data):6d} {cost:8.1f} {cost / normal:9.1f} {intent_cost(len(data)):6.0f}  {answer}")


if __name__ == "__main__":
    main(sys.argv[1:])
