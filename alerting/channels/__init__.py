"""The alert channels: each a `Channel` (alerting/channels/base.py) in a module of its own, registered here once.
Adding one is a module, a line below and its tests (docs/architecture.md, "Adding an alert channel")."""

from alerting.channels.base import Registry
from alerting.channels.email import EmailChannel
from alerting.channels.grafana import GrafanaChannel
from alerting.channels.otel import OtelChannel

registry = Registry()
registry.register(EmailChannel())
registry.register(GrafanaChannel())
registry.register(OtelChannel())
