"""The shared tracer (cio_kernel/tracing.py) against a real local OTLP receiver: nothing built without an endpoint,
a child of a valid traceparent, the root of a given trace id otherwise, failures recorded."""

import pytest
from opentelemetry.trace import SpanKind

from cio_kernel.tracing import ENDPOINT_ENV, ProcessTracer, build_tracer_provider, span_ids
from tests.otlp_receiver import OtlpReceiver

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def test_without_an_endpoint_nothing_is_built_and_a_span_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    tracer = ProcessTracer("svc", "scope")
    with tracer.span("work", trace_id=TRACE) as span:
        assert span is None
    assert tracer.provider() is None and build_tracer_provider("svc") is None
    assert span_ids(None) == {}


def test_spans_continue_a_traceparent_or_take_the_given_trace_id(
    otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, otlp_receiver.url)
    tracer = ProcessTracer("svc-under-test", "scope")
    try:
        with tracer.span("child", traceparent=f"00-{TRACE}-{PARENT}-01", kind=SpanKind.CONSUMER) as child:
            assert span_ids(child)["trace_id"] == TRACE
        with tracer.span("pinned", trace_id="f" * 32, attributes={"cio.n": 3}):
            pass
        with tracer.span("fresh", trace_id="not a trace id", traceparent="00-garbage"):
            pass
        with pytest.raises(RuntimeError), tracer.span("failing"):
            raise RuntimeError("refused: password=hunter2-hunter2")
        assert tracer.flush()
    finally:
        tracer.shutdown()
    spans = {s.name: s for s in otlp_receiver.spans}
    assert {s.service for s in spans.values()} == {"svc-under-test"}
    assert (spans["child"].trace_id, spans["child"].parent_span_id) == (TRACE, PARENT)
    assert (spans["pinned"].trace_id, spans["pinned"].parent_span_id) == ("f" * 32, "")
    assert spans["pinned"].attributes == {"cio.n": 3}
    assert spans["fresh"].trace_id not in (TRACE, "f" * 32) and spans["fresh"].parent_span_id == ""
    assert spans["failing"].span.status.code == 2  # STATUS_CODE_ERROR
    [event] = spans["failing"].span.events
    recorded = {a.key: a.value.string_value for a in event.attributes}
    assert event.name == "exception" and recorded["exception.type"] == "RuntimeError"
    assert "refused: password=" in recorded["exception.message"] and "hunter2" not in recorded["exception.message"]


def test_a_changed_endpoint_gets_a_new_provider(otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    tracer = ProcessTracer("svc", "scope")
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    assert tracer.provider() is None
    monkeypatch.setenv(ENDPOINT_ENV, otlp_receiver.url)
    try:
        assert tracer.provider() is not None
    finally:
        tracer.shutdown()
    assert tracer.provider() is not None  # the endpoint is still set: built again on the next use
    tracer.shutdown()
