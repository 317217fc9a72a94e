"""What every channel shares: one `send(alert)` per module, and an error that says whether a retry can help."""

from cio_kernel.contracts.alert import Alert


class DeliveryError(Exception):
    """The channel did not take the alert. `retry_may_help`: a transient failure (the server is away, busy or
    slow) is retried with backoff; a permanent one (refused, misconfigured) is not."""

    def __init__(self, message: str, *, retry_may_help: bool) -> None:
        super().__init__(message)
        self.retry_may_help = retry_may_help


class NotConfiguredError(DeliveryError):
    """The channel has no configuration here: the alert is recorded as skipped on it, never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_may_help=False)


def summary(alert: Alert) -> str:
    """One line a person reads first, on every channel."""
    return f"[{alert.severity.value.upper()}] {alert.title} ({alert.source})"


def body(alert: Alert) -> str:
    lines = [summary(alert), "", f"alert id: {alert.alert_id}", f"raised at: {alert.ts.isoformat()}"]
    if alert.trace_id:
        lines.append(f"trace id: {alert.trace_id}")
    lines += [f"{key}: {value}" for key, value in sorted(alert.detail.items())]
    return "\n".join(lines)
