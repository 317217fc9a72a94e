"""Tracing for the gate: every decision carries a W3C trace context; spans are recorded and exported over
OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, for `CIO_TRACE_SAMPLE_RATIO` of decisions.

Without an exporter a recorded span would go nowhere, so the gate only derives the ids (the parent's trace id,
a fresh span id): the decision, its reply, the signal and the audit event carry them exactly as before, at a
fraction of the SDK's cost per decision.
"""

import logging
import os
import random
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from cio_kernel.trace_context import format_traceparent, valid_traceparent

log = logging.getLogger(__name__)

SPAN_NAME = "cio.gate.decide"
_SAMPLED = 0x01
# Span and trace ids need uniqueness, not secrecy (the SDK's own generator is `random` too).
_ids = random.Random(os.urandom(32))


def build_tracer_provider(service_name: str, gate_id: str) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP, or None when no endpoint is configured (nothing would be exported)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:  # the exporter is a dependency; this guards trimmed installs
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is missing")
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.instance.id": gate_id}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@dataclass(slots=True)
class DecisionTrace:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    traceparent: str
    span: Span | None  # recorded only when exporting and sampled

    def finish(
        self, decision: str, decision_id: str, strategy_id: str | None, symbol: str | None, codes: list[str]
    ) -> None:
        span = self.span
        if span is None:
            return
        span.set_attributes({"cio.decision": decision, "cio.decision_id": decision_id})
        if strategy_id is not None and symbol is not None:
            span.set_attributes({"cio.strategy_id": strategy_id, "cio.symbol": symbol})
        if decision != "APPROVED":
            span.set_attribute("cio.reason_codes", codes)
            if decision == "RETRY_SAFE":
                span.set_status(Status(StatusCode.ERROR, codes[0] if codes else decision))
        span.end()


class DecisionTracer:
    def __init__(self, provider: TracerProvider | None, sample_ratio: float = 1.0) -> None:
        self._tracer = provider.get_tracer("gate") if provider is not None else None
        self._ratio = sample_ratio

    @property
    def recording(self) -> bool:
        return self._tracer is not None

    def start(self, incoming: str | None) -> DecisionTrace:
        """Continue `incoming` (a valid traceparent) or start a trace."""
        parent = valid_traceparent(incoming)
        if self._tracer is not None and self._ratio > 0 and (self._ratio >= 1 or _ids.random() < self._ratio):
            span = self._tracer.start_span(SPAN_NAME, context=_parent_context(parent), kind=SpanKind.CONSUMER)
            ctx = span.get_span_context()
            trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
            return DecisionTrace(
                trace_id, span_id, format_traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags)), span
            )
        span_id = f"{_ids.getrandbits(64) or 1:016x}"
        if parent is not None:
            trace_id, flags = parent[3:35], parent[53:55]
        else:
            trace_id, flags = f"{_ids.getrandbits(128) or 1:032x}", f"{_SAMPLED:02x}"
        return DecisionTrace(trace_id, span_id, f"00-{trace_id}-{span_id}-{flags}", None)


def _parent_context(traceparent: str | None) -> Context | None:
    """A context whose current span is the remote parent named by `traceparent` (None starts a new trace)."""
    if traceparent is None:
        return None
    parts = traceparent.split("-")
    span_context = SpanContext(
        trace_id=int(parts[1], 16),
        span_id=int(parts[2], 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parts[3], 16) & 0xFF),
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))
