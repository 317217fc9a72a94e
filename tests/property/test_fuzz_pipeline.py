"""Fuzz the gate's intake: whatever arrives, the pipeline answers, audits, and never promotes what it could not
validate. Runs the real pipeline (validation, decision, envelope and audit serialisation) without the network."""

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.contracts.identity import is_canonical_symbol, is_strategy_key
from cio_kernel.contracts.intent import Intent
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy
from gate.runtime.telemetry import DecisionTracer
from tests.factories import compile_spec, live_intent_body, make_spec

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pipeline() -> DecisionPipeline:
    gate_settings = GateSettings(gate_id="fuzz", max_intent_bytes=16_384)
    policy = FixedPolicy(compile_spec(make_spec(max_intent_age_s=None)))
    return DecisionPipeline(gate_settings, policy, GateState(), DecisionTracer(None), GateCounters())


PIPELINE = _pipeline()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e308, 1e-320, "NaN", "1e999", "", "0x10"]),
)


def _check(data: bytes) -> tuple[DecisionEnvelope, AuditEvent, bool]:
    outcome = PIPELINE.process("intent.trading.FUZZ", data, None, "_INBOX.fuzz")
    assert outcome.reply is not None
    envelope = DecisionEnvelope.model_validate_json(outcome.reply.payload)
    audit = AuditEvent.model_validate_json(outcome.audit_payload)
    assert audit.decision_id == envelope.data.decision_id == outcome.decision_id
    assert envelope.success == (outcome.signal is not None) == (envelope.data.decision == "APPROVED")
    if not envelope.success:
        assert envelope.error is not None and envelope.data.reasons
    # The audit record's indexed fields hold identities and bounded values whatever arrived, so no input can make
    # the audit store refuse the record (its columns: symbol 64, action 32, subject 300, strategy_id 200).
    assert audit.symbol is None or is_canonical_symbol(audit.symbol)
    assert audit.action in (None, "buy", "sell", "hold", "close")
    assert audit.strategy_key is None or is_strategy_key(audit.strategy_key)
    assert len(audit.subject) <= 300 and len(audit.strategy_id or "") <= 200 and len(audit.intent_id or "") <= 200
    return envelope, audit, outcome.signal is not None


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data):
    envelope, _, promoted = _check(data)
    try:
        valid = isinstance(orjson.loads(data), dict) and Intent.model_validate(orjson.loads(data)) is not None
    except Exception:
        valid = False
    if not valid:
        assert envelope.error.code == "VAL_ERR" and not promoted


@FUZZ
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_arbitrary_objects(body):
    envelope, _, promoted = _check(json.dumps(body).encode())
    assert envelope.error.code == "VAL_ERR" or "strategy_id" in body
    if envelope.error is not None and envelope.error.code == "VAL_ERR":
        assert not promoted and envelope.data.field_errors


@FUZZ
@given(field=st.sampled_from(sorted(live_intent_body())), value=field_values, data=st.data())
def test_valid_intent_with_one_field_corrupted(field, value, data):
    body: dict[str, Any] = live_intent_body(signal_id=f"fz-{data.draw(st.integers())}")
    body[field] = value
    # The stdlib writes NaN/Infinity as the bare tokens some producers emit, and integers of any size.
    envelope, audit, promoted = _check(json.dumps(body).encode())
    if promoted:
        intent = Intent.model_validate_json(orjson.dumps(audit.intent))
        for number in (intent.price, intent.quantity, intent.current_price, intent.confidence):
            assert math.isfinite(number) and number >= 0
        assert intent.quantity <= 1e15 and intent.price <= 1e12
    elif envelope.error.code == "VAL_ERR":
        assert any(e.field.split(".")[0] in (field, "(body)") for e in envelope.data.field_errors)


def test_oversized_payload_is_rejected_before_parsing():
    envelope, audit, promoted = _check(b'{"strategy_id": "' + b"x" * 20_000 + b'"}')
    assert envelope.error.code == "VAL_ERR" and not promoted
    assert envelope.data.field_errors[0].type == "too_large"
    assert len(audit.raw_intent) <= 4096
