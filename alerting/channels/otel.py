"""OpenTelemetry: a log record, a span carrying an `alert` event (a child of the alert's trace when it has one),
and a `cio.alerts` counter, each exported at once through the OTLP/HTTP exporters the standard `OTEL_EXPORTER_OTLP_*`
variables configure. Delivered only when the receiver took all three."""

import os
import secrets
import time
from typing import Any

from django.conf import settings
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from alerting.channels.base import Channel, DeliveryError, NotConfiguredError, summary
from cio_kernel.contracts.alert import Alert, Severity

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
_SEVERITY = {
    Severity.INFO: SeverityNumber.INFO,
    Severity.WARNING: SeverityNumber.WARN,
    Severity.CRITICAL: SeverityNumber.ERROR,
}
_SCOPE = InstrumentationScope("petrosa-cio.alerting")


class OtelDeliveryError(DeliveryError):
    pass


def attributes(alert: Alert) -> dict[str, Any]:
    found: dict[str, Any] = {
        "cio.alert.id": alert.alert_id,
        "cio.alert.severity": alert.severity.value,
        "cio.alert.source": alert.source,
        "cio.alert.title": alert.title,
    }
    for key, value in alert.detail.items():
        if isinstance(value, str | bool | int | float):
            found[f"cio.alert.detail.{key}"] = value
    return found


class OtelChannel(Channel):
    name = "otel"

    def configured(self) -> bool:
        return any(os.environ.get(name) for name in _ENDPOINTS)

    def send(self, alert: Alert, timeout_s: float | None = None) -> None:
        if not self.configured():
            raise NotConfiguredError("no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)")
        timeout = timeout_s or settings.CIO_ALERT_CHANNEL_TIMEOUT_S
        resource = Resource.create({"service.name": settings.CIO_ALERT_OTEL_SERVICE})
        attrs = attributes(alert)
        failed = []
        span = _span(alert, resource, attrs)
        if OTLPSpanExporter(timeout=timeout).export([span]) is not SpanExportResult.SUCCESS:
            failed.append("span")
        record = LogRecord(
            timestamp=int(alert.ts.timestamp() * 1e9),
            observed_timestamp=time.time_ns(),
            trace_id=span.context.trace_id,
            span_id=span.context.span_id,
            severity_text=alert.severity.value.upper(),
            severity_number=_SEVERITY[alert.severity],
            body=summary(alert),
            attributes=attrs,
        )
        exported = OTLPLogExporter(timeout=timeout).export([ReadableLogRecord(record, resource, _SCOPE)])
        if exported is not LogRecordExportResult.SUCCESS:
            failed.append("log record")
        if not _count(alert, resource, timeout):
            failed.append("counter")
        if failed:
            raise OtelDeliveryError(f"the OTLP receiver did not take the {', '.join(failed)}", retry_may_help=True)


def _span(alert: Alert, resource: Resource, attrs: dict[str, Any]) -> Any:
    parent = None
    if alert.trace_id:  # the alert joins the trace it is about
        remote = trace.SpanContext(
            int(alert.trace_id, 16),
            int.from_bytes(secrets.token_bytes(8), "big") | 1,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    tracer = TracerProvider(resource=resource).get_tracer(_SCOPE.name)
    span = tracer.start_span("cio.alert", context=parent, attributes=attrs)
    span.add_event("alert", attrs, timestamp=int(alert.ts.timestamp() * 1e9))
    span.end()
    return span


def _count(alert: Alert, resource: Resource, timeout: float) -> bool:
    exporter = OTLPMetricExporter(timeout=timeout, preferred_temporality={Counter: AggregationTemporality.DELTA})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    try:
        counter = meters.get_meter(_SCOPE.name).create_counter("cio.alerts", description="alerts raised")
        counter.add(1, {"severity": alert.severity.value, "source": alert.source})
        return bool(meters.force_flush(timeout_millis=int(timeout * 1000)))
    finally:
        meters.shutdown(timeout_millis=int(timeout * 1000))
