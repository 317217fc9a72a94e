"""Local stand-ins for the Grafana and OpenTelemetry alert channels under `make up`, so every channel can be
seen delivering (docs/devstack.md, "Alert channels"): two small HTTP servers speaking as much of each protocol as
`alerting/channels/` uses.

- Grafana: `POST /api/annotations` (a JSON annotation with `time`, `tags`, `text`), answered as Grafana does
  (`{"id": n, "message": "Annotation added"}`).
- OpenTelemetry: OTLP/HTTP with protobuf bodies on `/v1/traces`, `/v1/logs` and `/v1/metrics`, answered with
  an empty export response (200), which the SDK's exporters take as success.

Each delivery is printed as one line and appended to `<folder>/grafana.jsonl` or `<folder>/otlp.jsonl`; the
servers keep what they received in memory too (`received`), for a test. Anything else is answered 404.
"""

import argparse
import signal
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from cio_kernel.log_format import configure_logging

MAX_BODY_BYTES = 4 * 1024 * 1024  # a local stand-in: an alert is a few kB


def grafana_delivery(path: str, body: bytes) -> dict[str, Any] | None:
    """What an annotation says, or None when this is not one."""
    if path != "/api/annotations":
        return None
    annotation = orjson.loads(body)
    if not isinstance(annotation, dict) or not isinstance(annotation.get("text"), str):
        return None
    return {"kind": "annotation", "tags": annotation.get("tags", []), "text": annotation["text"]}


def otlp_delivery(path: str, body: bytes) -> dict[str, Any] | None:
    """What an OTLP/HTTP export holds (span names, log bodies, metric names), or None when it is not one."""
    if path == "/v1/traces":
        traces = ExportTraceServiceRequest.FromString(body)
        items = [s.name for r in traces.resource_spans for sc in r.scope_spans for s in sc.spans]
        return {"kind": "spans", "items": items}
    if path == "/v1/logs":
        logs = ExportLogsServiceRequest.FromString(body)
        items = [lr.body.string_value for r in logs.resource_logs for sc in r.scope_logs for lr in sc.log_records]
        return {"kind": "logs", "items": items}
    if path == "/v1/metrics":
        metrics = ExportMetricsServiceRequest.FromString(body)
        items = [m.name for r in metrics.resource_metrics for sc in r.scope_metrics for m in sc.metrics]
        return {"kind": "metrics", "items": items}
    return None


PROTOCOLS = {"grafana": grafana_delivery, "otlp": otlp_delivery}


@dataclass
class AlertReceiver:
    """One stand-in: `protocol` is `grafana` or `otlp`."""

    protocol: str
    host: str = "127.0.0.1"
    port: int = 0
    folder: Path | None = None
    echo: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def take(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            delivery = PROTOCOLS[self.protocol](path, body)
        except (orjson.JSONDecodeError, DecodeError):
            return 400, b'{"message": "bad request"}'
        if delivery is None:
            return 404, b'{"message": "not found"}'
        with self._lock:
            self.received.append(delivery)
            number = len(self.received)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                with (self.folder / f"{self.protocol}.jsonl").open("ab") as out:
                    out.write(orjson.dumps(delivery) + b"\n")
        if self.echo:
            print(f"{self.protocol}: {summary(delivery)}", flush=True)
        if self.protocol == "grafana":
            return 200, orjson.dumps({"id": number, "message": "Annotation added"})
        return 200, b""  # an empty Export*ServiceResponse: nothing rejected

    def start(self) -> "AlertReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    status, payload = 413, b'{"message": "too large"}'
                else:
                    status, payload = receiver.take(self.path, self.rfile.read(length))
                kind = "application/json" if receiver.protocol == "grafana" else "application/x-protobuf"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the channel gave up (its timeout)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def summary(delivery: dict[str, Any]) -> str:
    if delivery["kind"] == "annotation":
        first = delivery["text"].splitlines()[0] if delivery["text"] else ""
        return f"annotation [{', '.join(map(str, delivery['tags']))}] {first[:160]}"
    items = ", ".join(str(item)[:80] for item in delivery["items"][:3])
    return f"{len(delivery['items'])} {delivery['kind']}: {items}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grafana-port", type=int, required=True)
    parser.add_argument("--otlp-port", type=int, required=True)
    parser.add_argument("--folder", type=Path, default=None, help="also append every delivery here (.jsonl)")
    args = parser.parse_args()
    grafana = AlertReceiver("grafana", port=args.grafana_port, folder=args.folder, echo=True).start()
    otlp = AlertReceiver("otlp", port=args.otlp_port, folder=args.folder, echo=True).start()
    print(
        f"alert stand-ins: Grafana annotations on {grafana.url}/api/annotations, OTLP/HTTP on {otlp.url}/v1/; "
        f"deliveries in {args.folder or '(memory only)'}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    grafana.stop()
    otlp.stop()


if __name__ == "__main__":
    configure_logging("alert-standins")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
