"""Alerting: alerts any process publishes on `cio.alert.<severity>` reach every configured channel (email,
Grafana, OpenTelemetry) independently, with retries, a dead letter, deduplication and escalation, and are kept
with every delivery attempt in the audit store (docs/alerting.md)."""
