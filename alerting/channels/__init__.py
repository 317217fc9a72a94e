"""The alert channels, each a module with `NAME`, `configured()` and `send(alert)` (docs/alerting.md)."""

from types import ModuleType

from alerting.channels import email, grafana, otel

CHANNELS: dict[str, ModuleType] = {module.NAME: module for module in (email, grafana, otel)}
