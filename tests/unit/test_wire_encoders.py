"""The hot path writes envelopes, audit events, promotion notices and the `meta.cio` stamp without building
the Pydantic models; these properties hold the encoders to the models: same JSON values, and valid models."""

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cio_kernel.contracts.audit_event import AuditEvent, encode_audit_event
from cio_kernel.contracts.envelope import (
    DecisionData,
    DecisionEnvelope,
    ErrorBody,
    FieldError,
    Reason,
    encode_decision_envelope,
)
from cio_kernel.contracts.promotion import PromotionNotice, encode_promotion_notice
from cio_kernel.contracts.signal import CioStamp, cio_stamp_json
from cio_kernel.redaction import may_hold_secrets, redact
from cio_kernel.trace_context import incoming_traceparent, traceparent_without_parsing

text = st.text(max_size=30)
ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**9), 10**9), text)
reasons = st.lists(
    st.builds(Reason, code=st.sampled_from(["VAL_ERR", "RATE_LIMITED"]), message=text, observed=numbers, limit=numbers),
    max_size=3,
)
field_errors = st.one_of(st.none(), st.lists(st.builds(FieldError, field=text, message=text, type=text), max_size=2))
decisions = st.sampled_from(["APPROVED", "REJECTED", "RETRY_SAFE"])
times = st.floats(min_value=1e9, max_value=4e9).map(lambda t: datetime.fromtimestamp(t, UTC))
jsonish = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda c: st.dictionaries(text, c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200)
@given(
    decisions,
    ids,
    st.one_of(st.none(), text),
    st.one_of(st.none(), st.integers(1, 10**6)),
    reasons,
    st.one_of(st.none(), text),
    field_errors,
    ids,
)
def test_the_envelope_encoder_writes_what_the_model_would(
    decision, decision_id, intent_id, version, reasons, subject, errors, trace
):
    if decision != "APPROVED" and not reasons:
        reasons = [Reason(code="VAL_ERR", message="x")]
    fast = encode_decision_envelope(
        decision=decision,
        decision_id=decision_id,
        intent_id=intent_id,
        policy_version=version,
        reasons=reasons,
        signal_subject=subject,
        field_errors=errors,
        trace_id=trace,
    )
    data = DecisionData(
        decision=decision,
        decision_id=decision_id,
        intent_id=intent_id,
        policy_version=version,
        reasons=reasons,
        signal_subject=subject,
        field_errors=errors,
    )
    error = (
        None
        if decision == "APPROVED"
        else ErrorBody(code=reasons[0].code, message="; ".join(r.message for r in reasons))
    )
    model = DecisionEnvelope(success=decision == "APPROVED", data=data, trace_id=trace, error=error)
    assert orjson.loads(fast) == orjson.loads(model.model_dump_json())
    assert DecisionEnvelope.model_validate_json(fast) == model


@settings(max_examples=200)
@given(
    ids,
    times,
    text,
    decisions,
    reasons,
    field_errors,
    st.one_of(st.none(), st.integers(1, 10**6)),
    st.one_of(st.none(), jsonish),
    st.integers(0, 10**7),
)
def test_the_audit_encoder_writes_what_the_model_would(
    decision_id, ts, subject, decision, reasons, errors, version, intent, latency
):
    fields = dict(
        decision_id=decision_id,
        ts=ts,
        gate_id="g",
        subject=subject,
        strategy_id="s",
        strategy_key="s",
        symbol="BTCUSDT",
        action="buy",
        intent_id=None,
        decision=decision,
        reasons=reasons,
        field_errors=errors,
        policy_version=version,
        policy_checksum="sha256:x",
        trace_id="1" * 32,
        span_id="2" * 16,
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        latency_us=latency,
        signal_subject=None,
        intent=intent if isinstance(intent, dict) else None,
        raw_intent=None,
        state={"trading_state": "active"},
    )
    fast = encode_audit_event(**fields)
    model = AuditEvent(**fields)
    assert orjson.loads(fast) == orjson.loads(model.model_dump_json())
    assert AuditEvent.model_validate_json(fast) == model


@given(st.floats(min_value=0, max_value=4e9), st.one_of(st.none(), text), st.one_of(st.none(), st.floats(0, 1e9)))
def test_the_promotion_encoder_writes_what_the_model_would(ts, intent_id, notional):
    fields = dict(
        gate_id="g",
        ts=ts,
        strategy_id="s",
        strategy_key="s",
        symbol="X",
        action="buy",
        intent_id=intent_id,
        notional_usd=notional,
        policy_version=3,
    )
    assert orjson.loads(encode_promotion_notice(**fields)) == orjson.loads(PromotionNotice(**fields).model_dump_json())


@given(times, text)
def test_the_cio_stamp_is_what_the_model_would_dump(at, source):
    model = CioStamp(decision_id="d", policy_version=2, approved_at=at, original_source=source)
    assert cio_stamp_json("d", 2, at, source) == model.model_dump(mode="json")


secretish = st.sampled_from(["password", "API_KEY", "token", "Authorization", "seed", "cookie", "note", "url"])
values = st.sampled_from(["s3cr3t-value", "api_key=abc123456", "Bearer abc.def", "https://u:pw@host/x", "plain", 5])


@settings(max_examples=300)
@given(st.dictionaries(secretish, st.one_of(values, st.dictionaries(secretish, values, max_size=2)), max_size=3))
def test_the_cheap_secret_scan_never_skips_a_redaction(body):
    raw = orjson.dumps(body)
    if redact(orjson.loads(raw)) != orjson.loads(raw):
        assert may_hold_secrets(raw)


def test_a_json_escape_cannot_hide_a_secret_key_from_the_scan():
    raw = b'{"\\u0070assword": "hunter2-hunter2"}'
    assert redact(orjson.loads(raw)) != orjson.loads(raw) and may_hold_secrets(raw)


@given(st.sampled_from(["_otel_trace_context", "_otel_trace_headers"]), st.booleans())
def test_trace_context_is_found_without_parsing_as_with_parsing(field, with_header):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"} if with_header else None
    raw = orjson.dumps({"strategy_id": "x", field: {"traceparent": tp}, "price": 1.5})
    assert traceparent_without_parsing(headers, raw) == incoming_traceparent(headers, orjson.loads(raw))
