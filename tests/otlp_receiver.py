"""A local OTLP/HTTP trace receiver standing in for the fleet's collector (Grafana Alloy on 4318): the alert
channels' real HTTP receiver (tests/alerting/receivers.py), read as `POST /v1/traces` bodies (protobuf
`ExportTraceServiceRequest`, as the SDK's exporter sends them), each span kept with the `service.name` of the
process that sent it. Point `OTEL_EXPORTER_OTLP_ENDPOINT` at `url`; the `otlp_receiver` fixture
(tests/plugins/otlp.py) starts one per test."""

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from tests.alerting.receivers import Receiver


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: ProtoSpan

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()  # "" for a root span

    @property
    def attributes(self) -> dict[str, Any]:
        return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in self.span.attributes}


class OtlpReceiver(Receiver):
    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, decoded."""
        found: list[ReceivedSpan] = []
        for path, _, body in list(self.requests):
            if path != "/v1/traces":
                continue
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            for resource_spans in export.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found += [ReceivedSpan(attributes.get("service.name", ""), s) for s in scope.spans]
        return found

    def named(self, name: str, service: str | None = None) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name and (service is None or s.service == service)]
