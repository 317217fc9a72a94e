"""OpenTelemetry set-up for the gate: a real SDK tracer; spans are exported only when an OTLP endpoint is set."""

import logging
import os

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from gate.runtime.trace_context import valid_traceparent

log = logging.getLogger(__name__)


def build_tracer_provider(service_name: str, gate_id: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.instance.id": gate_id}))
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:  # the exporter is a dependency; this guards trimmed installs
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is missing")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def parent_context(traceparent: str | None) -> Context | None:
    """A context whose current span is the remote parent named by `traceparent` (None starts a new trace)."""
    value = valid_traceparent(traceparent)
    if value is None:
        return None
    parts = value.split("-")
    span_context = SpanContext(
        trace_id=int(parts[1], 16),
        span_id=int(parts[2], 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parts[3], 16) & 0xFF),
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))
