"""The intake stream's pure rules (docs/contracts.md, "Producers that never listen"): deterministic decision ids,
fingerprints, decision subjects, and the final decision of an intent past its freshness (never promoted)."""

import orjson
import pytest

from cio_kernel.contracts.envelope import DecisionEnvelope, Reason
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.ids import is_uuid7, uuid7_ms
from cio_kernel.intake_stream import decision_token, fingerprint, stream_decision_id
from cio_kernel.reason_codes import ReasonCode as C
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy, Outcome
from gate.runtime.telemetry import DecisionTracer
from tests.factories import NOW, compile_spec, intent_body, make_spec

FINAL = Reason(code=C.INTAKE_EXPIRED, message="too late")


class FixedClock:
    """The factories' fixed "now" (their intents' timestamps), and a monotonic clock that does not move."""

    def time(self) -> float:
        return NOW

    def monotonic(self) -> float:
        return 1_000.0


def test_stream_decision_ids_are_deterministic_and_distinct():
    first = stream_decision_id("CIO_INTAKE", 7, 1_700_000_000_000_000)
    assert first == stream_decision_id("CIO_INTAKE", 7, 1_700_000_000_000_000)
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != stream_decision_id("CIO_INTAKE", 8, 1_700_000_000_000_000)
    assert first != stream_decision_id("CIO_INTAKE", 7, 1_700_000_000_000_001)  # a recreated stream's seq 7


def test_stream_decision_ids_are_uuid7_of_the_stored_millisecond():
    ids = [
        stream_decision_id("CIO_INTAKE", seq, us)
        for seq, us in ((9, 1_700_000_000_000_999), (3, 1_700_000_000_001_000))
    ]
    assert all(is_uuid7(i) for i in ids)
    assert [uuid7_ms(i) for i in ids] == [1_700_000_000_000, 1_700_000_000_001]
    assert ids == sorted(ids)  # stored later sorts later, whatever the sequence


def test_fingerprints_tell_subject_and_payload_apart():
    base = fingerprint("cio.intent.trading.a", b"{}")
    assert base == fingerprint("cio.intent.trading.a", b"{}") and len(base) == 32
    assert base != fingerprint("cio.intent.trading.b", b"{}")
    assert base != fingerprint("cio.intent.trading.a", b"{ }")
    long = "cio.intent.trading." + "x" * 100
    assert fingerprint(long, b"{}") != fingerprint(long + "y", b"{}")


@pytest.mark.parametrize(
    ("subject", "body_key", "token"),
    [
        ("cio.intent.trading.momentum_pulse", "other", "momentum_pulse"),  # the subject proves the publisher
        ("cio.intent.trading.Volume_Surge_Breakout", "volume_surge_breakout", "volume_surge_breakout"),
        ("intent.trading.BTCUSDT", "momentum_1", "momentum_1"),
        ("cio.nurse.audit", None, "no-strategy"),
    ],
)
def test_decision_subject_token(subject, body_key, token):
    assert decision_token(subject, body_key) == token


def _pipeline(policy: bool = True) -> DecisionPipeline:
    return DecisionPipeline(
        GateSettings(gate_id="unit"),
        FixedPolicy(compile_spec(make_spec()) if policy else None),
        GateState(),
        DecisionTracer(None),
        GateCounters(),
        clock=FixedClock(),
    )


def _envelope(outcome: Outcome) -> DecisionEnvelope:
    return DecisionEnvelope.model_validate_json(outcome.envelope)


def test_an_intent_past_freshness_is_never_promoted_and_keeps_its_decision_id():
    fresh = _pipeline().process("intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, None, decision_id="a" * 32)
    assert fresh.decision == "APPROVED" and fresh.decision_id == "a" * 32 and fresh.signal is not None
    late = _pipeline().process(
        "intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, None, decision_id="b" * 32, final=FINAL
    )
    assert late.decision == "RETRY_SAFE" and late.signal is None and late.promotion is None
    assert late.decision_id == "b" * 32 and late.reply is None
    assert [r.code for r in _envelope(late).data.reasons] == [C.INTAKE_EXPIRED]
    assert late.decision_subject == "cio.decision.momentum_1"


def test_the_final_decision_keeps_a_rejection_and_says_why_it_could_not_decide():
    rejected = _pipeline().process(
        "intent.trading.BTCUSDT", orjson.dumps(intent_body(action="hold")), None, None, final=FINAL
    )
    assert rejected.decision == "REJECTED"
    assert [r.code for r in _envelope(rejected).data.reasons] == [C.HOLD_NOT_PROMOTED]
    undecided = _pipeline(policy=False).process(
        "intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, None, final=FINAL
    )
    assert undecided.decision == "RETRY_SAFE"
    assert [r.code for r in _envelope(undecided).data.reasons] == [C.INTAKE_EXPIRED, C.NO_POLICY]


def test_the_envelope_is_built_for_every_decision_and_is_the_reply():
    outcome = _pipeline().process("intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, "_INBOX.x")
    assert outcome.reply is not None and outcome.reply.payload == outcome.envelope
    shed = _pipeline().shed("cio.intent.trading.momentum_pulse", b"{}", None, None, 1.0)
    assert shed.reply is None and _envelope(shed).data.decision == "RETRY_SAFE"
    assert shed.decision_subject == "cio.decision.momentum_pulse"


def test_the_pipeline_makes_time_ordered_uuid7_decision_ids():
    decided = [_pipeline().process("intent.trading.BTCUSDT", orjson.dumps(intent_body()), None, None) for _ in range(3)]
    shed = _pipeline().shed("cio.intent.trading.momentum_pulse", b"{}", None, None, 1.0)
    ids = [o.decision_id for o in decided] + [shed.decision_id]
    assert all(is_uuid7(i) for i in ids) and ids == sorted(ids)
    assert _envelope(shed).data.decision_id == shed.decision_id
