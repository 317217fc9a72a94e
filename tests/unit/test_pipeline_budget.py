"""The pipeline's own budget in process: what is over the intake limits or over a strategy's share is answered
and audited without being parsed, and even a failure inside the pipeline leaves an answer and a record."""

from collections import Counter

import orjson

from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.reason_codes import ReasonCode as C
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy, PolicySource
from gate.runtime.telemetry import DecisionTracer
from tests.factories import NOW, compile_spec, intent_body, make_spec


class FrozenClock:
    def time(self) -> float:
        return NOW

    def monotonic(self) -> float:
        return 1_000.0


class FailingPolicySource:
    """A policy source whose every read fails: stands for any bug between parsing and the answer."""

    def usable(self, now_monotonic: float) -> CompiledPolicy | None:
        raise RuntimeError("boom")

    def is_stale(self, now_monotonic: float) -> bool:
        raise RuntimeError("boom")


def _pipeline(source: PolicySource, **settings: object) -> tuple[DecisionPipeline, GateCounters]:
    counters = GateCounters()
    pipeline = DecisionPipeline(
        GateSettings(gate_id="t", **settings), source, GateState(), DecisionTracer(None), counters, FrozenClock()
    )
    return pipeline, counters


def _nested(depth: int) -> bytes:
    """A valid intent whose `metadata` takes the whole payload to `depth` levels."""
    lists = depth - 2
    return orjson.dumps(intent_body())[:-1] + b',"metadata":{"a":' + b"[" * lists + b"]" * lists + b"}}"


def test_a_deep_intent_is_val_err_with_a_bounded_audit_record():
    pipeline, counters = _pipeline(FixedPolicy(compile_spec(make_spec())))
    for depth in (33, 250, 400):
        outcome = pipeline.process("cio.nurse.audit", _nested(depth), None, "_INBOX.r")
        assert outcome.reply is not None
        envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
        assert envelope.error.code == C.VAL_ERR and envelope.data.field_errors[0].type == "too_deep"
        event = AuditEvent.model_validate_json(outcome.audit_payload)
        assert event.raw_intent is not None and len(event.raw_intent) <= 4096 and event.intent is None
    outcome = pipeline.process("cio.nurse.audit", _nested(32), None, "_INBOX.r")  # within the limit: decided
    assert AuditEvent.model_validate_json(outcome.audit_payload).intent is not None
    assert counters.invalid == 3 and counters.received == 4


def test_a_failure_inside_the_pipeline_is_answered_retry_safe_and_audited():
    pipeline, counters = _pipeline(FailingPolicySource())
    outcome = pipeline.process("cio.nurse.audit", orjson.dumps(intent_body()), None, "_INBOX.r")
    assert outcome.signal is None and outcome.promotion is None and outcome.reply is not None
    envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
    assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.INTERNAL_ERROR
    assert AuditEvent.model_validate_json(outcome.audit_payload).decision == "RETRY_SAFE"
    assert (counters.received, counters.retry_safe, counters.approved) == (1, 1, 0)


def test_a_strategy_over_its_share_is_answered_unparsed_and_others_are_decided():
    payload = orjson.dumps(intent_body(strategy_id="flood"))
    pipeline, counters = _pipeline(
        FixedPolicy(compile_spec(make_spec(max_intent_age_s=None))),
        strategy_budget_burst=3.0,
        max_intent_bytes=1024,
    )
    kinds = [pipeline.process("cio.nurse.audit", payload, None, "_INBOX.r").decision for _ in range(5)]
    assert kinds.count("RETRY_SAFE") == 5 - int(3 // (1 + (len(payload) >> 9)))
    outcome = pipeline.process("cio.nurse.audit", orjson.dumps(intent_body(strategy_id="quiet")), None, "_INBOX.r")
    assert outcome.decision == "APPROVED"
    event = AuditEvent.model_validate_json(pipeline.process("cio.nurse.audit", payload, None, None).audit_payload)
    assert [r.code for r in event.reasons] == [C.STRATEGY_OVER_BUDGET] and event.intent is None
    assert counters.over_budget == kinds.count("RETRY_SAFE") + 1


def test_only_strategies_the_policy_names_are_spared_the_open_share():
    # The flood claims a new strategy on a new subject token each time (as the shared identity may); the open
    # share (1.5 bursts of 4 intents) is all it gets. `momentum_pulse` (own_identity, on its own subject) and
    # `momentum_1` (listed, shared identity: by its subject or the id in its body) are decided after it;
    # `momentum_2`, which the policy does not name, pays the open share like the flood and is refused with it.
    spec = make_spec(max_intent_age_s=None, strategies={"momentum_pulse": {"own_identity": True}, "momentum_1": {}})
    pipeline, counters = _pipeline(FixedPolicy(compile_spec(spec)), strategy_budget_burst=4.0, max_intent_bytes=511)
    flood = [
        pipeline.process(f"cio.intent.trading.rot_{i}", orjson.dumps(intent_body(strategy_id=f"rot_{i}")), None, None)
        for i in range(20)
    ]
    assert sum(o.decision != "RETRY_SAFE" for o in flood) == 6 and counters.over_budget == 14
    for strategy, subject, decision in [
        ("momentum_pulse", "cio.intent.trading.momentum_pulse", "APPROVED"),
        ("momentum-1", "cio.intent.trading.momentum_1", "APPROVED"),
        ("Momentum 1", "intent.trading.BTCUSDT", "APPROVED"),
        ("momentum-2", "cio.intent.trading.momentum_2", "RETRY_SAFE"),
        ("momentum-2", "intent.trading.BTCUSDT", "RETRY_SAFE"),
        # Claiming `momentum_pulse` off its subject is a made-up claim (its intents come only on its own subject).
        ("momentum_pulse", "intent.trading.BTCUSDT", "RETRY_SAFE"),
    ]:
        payload = orjson.dumps(intent_body(strategy_id=strategy, signal_id=f"s-{strategy}"))
        assert pipeline.process(subject, payload, None, None).decision == decision, strategy


def test_a_failing_policy_read_for_the_share_still_answers_and_audits():
    pipeline, counters = _pipeline(FailingPolicySource())
    payload = orjson.dumps(intent_body(strategy_id="momentum_pulse"))
    outcome = pipeline.process("cio.intent.trading.momentum_pulse", payload, None, "_INBOX.r")
    assert outcome.reply is not None and outcome.signal is None
    envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
    assert envelope.data.decision == "RETRY_SAFE" and envelope.error.code == C.INTERNAL_ERROR
    assert AuditEvent.model_validate_json(outcome.audit_payload).decision == "RETRY_SAFE"
    assert (counters.received, counters.retry_safe) == (1, 1)


class SteppingClock:
    """The gate's clocks, moved by the test: simulated seconds of fleet traffic run in a fraction of one."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def time(self) -> float:
        return NOW + self.elapsed

    def monotonic(self) -> float:
        return 1_000.0 + self.elapsed


def _fleet_intent(strategy_id: str, i: int, clock: SteppingClock) -> bytes:
    """The fleet's shapes (SPEC §3): the TA bot's engine-sized `quantity 0.0` with null sizing, display-name ids,
    the trace context in the body, an extra field, exponent floats."""
    return orjson.dumps(
        intent_body(
            strategy_id=strategy_id,
            signal_id=f"{strategy_id}-{i}",
            quantity=0.0,
            position_size_pct=None,
            quote_quantity=None,
            confidence_score=7.5e-01,
            indicators={"rsi": 4.21e1, "atr_pct": 1.2e-05},
            timestamp=clock.time(),
            _otel_trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
    )


def test_the_fleet_at_its_normal_rates_is_never_over_its_share():
    # 40 strategies on the shared identity (display names, on the subjects the fleet uses) and one with its own,
    # each sending 5 intents a second for a simulated minute, all in the same instants: not one is shed.
    clock = SteppingClock()
    counters = GateCounters()
    pipeline = DecisionPipeline(
        GateSettings(gate_id="t"),
        FixedPolicy(
            compile_spec(make_spec(max_intent_age_s=None, strategies={"momentum_pulse": {"own_identity": True}}))
        ),
        GateState(),
        DecisionTracer(None),
        counters,
        clock,
    )
    fleet = [(f"TA Bot {n}", "cio.intent.trading" if n % 2 else "intent.trading.BTCUSDT") for n in range(40)]
    fleet.append(("momentum_pulse", "cio.intent.trading.momentum_pulse"))
    codes: Counter[str] = Counter()
    for tick in range(300):
        clock.elapsed = tick * 0.2
        for strategy_id, subject in fleet:
            outcome = pipeline.process(subject, _fleet_intent(strategy_id, tick, clock), None, "_INBOX.r")
            assert outcome.reply is not None
            envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
            codes[envelope.error.code if envelope.error else "none"] += 1
    assert counters.over_budget == 0 and C.STRATEGY_OVER_BUDGET not in codes, codes
    assert counters.received == 300 * len(fleet) and codes[C.VAL_ERR] == 0, codes


def test_an_intent_the_gate_failed_on_is_answered_gate_internal_error_and_counted_once():
    pipeline, counters = _pipeline(FixedPolicy(compile_spec(make_spec())))
    data = orjson.dumps(intent_body())
    for counted in (False, True):  # `process` raised before counting it, or after
        outcome = pipeline.failed("cio.nurse.audit", data, None, "_INBOX.r", 0.0, counted)
        assert outcome.decision == "RETRY_SAFE" and outcome.signal is None and outcome.promotion is None
        assert outcome.reply is not None and outcome.reply.subject == "_INBOX.r"
        envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
        assert [r.code for r in envelope.data.reasons] == [C.GATE_INTERNAL_ERROR]
        event = AuditEvent.model_validate_json(outcome.audit_payload)
        assert event.decision == "RETRY_SAFE" and event.decision_id == envelope.data.decision_id
        assert [r.code for r in event.reasons] == [C.GATE_INTERNAL_ERROR] and event.intent is None
    assert (counters.received, counters.retry_safe, counters.approved) == (1, 2, 0)
