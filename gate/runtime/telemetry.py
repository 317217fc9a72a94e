"""Tracing for the gate: every decision carries a W3C trace context; spans are recorded and exported over
OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, for `CIO_TRACE_SAMPLE_RATIO` of decisions.

Without an exporter a recorded span would go nowhere, so the gate only derives the ids (the parent's trace id,
a fresh span id): the decision, its reply, the signal and the audit event carry them exactly as before, at a
fraction of the SDK's cost per decision.
"""

import os
import random
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from cio_kernel import tracing
from cio_kernel.trace_context import format_traceparent, valid_traceparent

SPAN_NAME = "cio.gate.decide"
_SAMPLED = 0x01
# Span and trace ids need uniqueness, not secrecy (the SDK's own generator is `random` too).
_ids = random.Random(os.urandom(32))


def build_tracer_provider(service_name: str, gate_id: str) -> TracerProvider | None:
    """The kernel's provider (cio_kernel/tracing.py), named for this gate; None without an endpoint."""
    return tracing.build_tracer_provider(service_name, gate_id)


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
            span = self._tracer.start_span(SPAN_NAME, context=tracing.parent_context(parent), kind=SpanKind.CONSUMER)
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
