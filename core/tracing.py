"""The control plane's spans: activations, kill switches and the Strategist's cycles, in the web process and the
Celery worker alike, exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (cio_kernel/tracing.py).

Each span takes the trace id the control plane already hands out (the REST envelope's `trace_id`, a cycle's
`trace_id` in its thought and policy events), so a trace id found in the audit store finds the span too."""

from cio_kernel.tracing import ProcessTracer

SERVICE_NAME = "petrosa-cio-control-plane"
ACTIVATE = "cio.policy.activate"
TRADING_STATE = "cio.trading_state.set"
STRATEGIST_CYCLE = "cio.strategist.cycle"

control_plane = ProcessTracer(SERVICE_NAME, "cio.control_plane")
