"""OpenTelemetry for every process of the project, at no cost when nothing would receive the spans.

A provider (OTLP/HTTP, batched) is built only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it no SDK
provider exists and a `ProcessTracer.span` is an empty context manager. The exporter reads the standard
`OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` variables itself (docs/tracing.md).

`ProcessTracer` serves processes that record a span now and then (the control plane's activations and kill
switches, the Strategist's cycles, the trade-engine stand-in): it builds its provider on first use, and rebuilds it
when the endpoint changes. The gate builds its own provider once (gate/runtime/telemetry.py): it records a span per
decision and must not look at the environment each time.
"""

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from cio_kernel.redaction import process_scrubber
from cio_kernel.trace_context import valid_traceparent

log = logging.getLogger(__name__)

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
AttributeValue = str | bool | int | float | list[str]
_MESSAGE_CHARS = 500


class _PinnableTraceIds(RandomIdGenerator):
    """Random ids, except that a root span started under `_pinned` takes that trace id: the control plane already
    hands a trace id to its callers (the REST envelope's `trace_id`, a cycle's `trace_id` in its thought), and the
    span must carry the same one, or the trace in the backend and the record in the audit store would not meet."""

    def generate_trace_id(self) -> int:
        pinned = _pinned.get()
        return pinned if pinned is not None else super().generate_trace_id()


_pinned: ContextVar[int | None] = ContextVar("cio_pinned_trace_id", default=None)


def build_tracer_provider(service_name: str, instance_id: str | None = None) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP, or None when no endpoint is configured (nothing would be exported)."""
    if not os.environ.get(ENDPOINT_ENV):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:  # the exporter is a dependency; this guards trimmed installs
        log.warning("%s is set but opentelemetry-exporter-otlp-proto-http is missing", ENDPOINT_ENV)
        return None
    attributes = {"service.name": service_name}
    if instance_id:
        attributes["service.instance.id"] = instance_id
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=_PinnableTraceIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def parent_context(traceparent: str | None) -> Context | None:
    """A context whose current span is the remote parent named by a valid `traceparent` (None: a new trace)."""
    valid = valid_traceparent(traceparent)
    if valid is None:
        return None
    _, trace_id, span_id, flags = valid.split("-")
    span_context = SpanContext(
        trace_id=int(trace_id, 16), span_id=int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16))
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def _trace_id(value: str | None) -> int | None:
    """A 32-hex trace id as an int, or None when it is not one (a span then starts a trace of its own)."""
    if not value or len(value) != 32:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    return number or None


class ProcessTracer:
    """The spans of one process, recorded only while an endpoint is configured."""

    def __init__(self, service_name: str, scope: str) -> None:
        self.service_name = service_name
        self._scope = scope
        self._lock = threading.Lock()
        self._endpoint: str | None = None
        self._provider: TracerProvider | None = None

    def provider(self) -> TracerProvider | None:
        endpoint = os.environ.get(ENDPOINT_ENV) or None
        if endpoint == self._endpoint:
            return self._provider
        with self._lock:
            if endpoint != self._endpoint:
                old, self._provider = self._provider, build_tracer_provider(self.service_name)
                self._endpoint = endpoint
                if old is not None:
                    old.shutdown()  # what it holds goes to the endpoint it was built for
        return self._provider

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        traceparent: str | None = None,
        trace_id: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Iterator[Span | None]:
        """A span around the block: a child of `traceparent` when it is valid, else the root of `trace_id` when
        that is a trace id, else of a new trace. Yields None (and costs nothing) without an endpoint. An
        exception leaving the block is recorded on the span (redacted) and raised on."""
        provider = self.provider()
        if provider is None:
            yield None
            return
        context = parent_context(traceparent)
        token = _pinned.set(_trace_id(trace_id) if context is None else None)
        try:
            span = provider.get_tracer(self._scope).start_span(
                name, context=context, kind=kind, attributes=dict(attributes or {})
            )
        finally:
            _pinned.reset(token)
        with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            try:
                yield span
            except BaseException as exc:
                _record_failure(span, exc)
                raise

    def flush(self, timeout_millis: int = 5_000) -> bool:
        provider = self._provider
        return provider.force_flush(timeout_millis) if provider is not None else True

    def shutdown(self) -> None:
        with self._lock:
            provider, self._provider, self._endpoint = self._provider, None, None
        if provider is not None:
            provider.shutdown()


def _record_failure(span: Span, exc: BaseException) -> None:
    """Error status and an `exception` event whose message went through the process's redaction (as a log line
    would): an exception's text may quote what it failed on. No stack trace: the logs have it, redacted."""
    kind = type(exc).__qualname__
    span.set_status(Status(StatusCode.ERROR, kind))
    message = process_scrubber().text(str(exc))[:_MESSAGE_CHARS]
    span.add_event("exception", {"exception.type": kind, "exception.message": message})


def span_ids(span: Span | None) -> dict[str, Any]:
    """`trace_id` and `span_id` of a recorded span as hex, for a record that points back at it ({} for None)."""
    if span is None:
        return {}
    context = span.get_span_context()
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
