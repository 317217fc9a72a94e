"""The decision budget on the injected clock: an intent that waited, or took, longer than the budget is answered
RETRY_SAFE/DECISION_TIMEOUT and never promoted, checked without any real time passing."""

import orjson
import pytest

from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.reason_codes import ReasonCode as C
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer
from tests.factories import NOW, compile_spec, intent_body, make_spec


class StepClock:
    """Fixed wall time; every monotonic read is `step_s` after the last (each read as a unit of work)."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.now = 0.0

    def time(self) -> float:
        return NOW

    def monotonic(self) -> float:
        self.now += self.step_s
        return self.now


def _decide(step_s: float, queued_s: float = 0.0) -> tuple[DecisionEnvelope, GateCounters, bool]:
    settings = GateSettings(gate_id="budget", decision_budget_ms=200.0)
    counters = GateCounters()
    pipeline = DecisionPipeline(
        settings,
        FixedPolicy(compile_spec(make_spec())),
        GateState(),
        DecisionTracer(None),
        counters,
        clock=StepClock(step_s),
    )
    outcome = pipeline.process("intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, "_INBOX.x", queued_s)
    assert outcome.reply is not None
    return DecisionEnvelope.model_validate_json(outcome.reply.payload), counters, outcome.signal is not None


def test_within_the_budget_the_intent_is_decided():
    envelope, counters, promoted = _decide(step_s=0.01)
    assert envelope.data.decision == "APPROVED" and promoted and counters.approved == 1


@pytest.mark.parametrize(
    ("step_s", "queued_s", "message"),
    [
        (0.01, 0.25, "waited longer than the 200 ms budget"),  # it queued too long before the gate took it
        (0.15, 0.0, "no decision within the 200 ms budget"),  # the decision itself ran over
    ],
)
def test_over_the_budget_the_intent_is_retry_safe_and_not_promoted(step_s, queued_s, message):
    envelope, counters, promoted = _decide(step_s, queued_s)
    assert envelope.data.decision == "RETRY_SAFE" and not promoted
    assert envelope.error.code == C.DECISION_TIMEOUT and message in envelope.error.message
    assert counters.approved == 0 and counters.retry_safe == 1
