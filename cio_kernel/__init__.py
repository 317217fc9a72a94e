"""The shared kernel: what every part of Petrosa CIO, and every external client, must agree on.

The gate, the control plane, the audit ingest, the Strategist, the canary and the fleet client all speak the
same wire contracts, validate the same policy schema, sign and verify the same documents, use the same
subjects and Redis keys, parse trace context and redact secrets the same way. That lives here, and only that:
this package depends on nothing else in the project (a test walks the imports), so the canary, which runs
outside the cluster, can import it without pulling in the gate's runtime or Django.
"""
