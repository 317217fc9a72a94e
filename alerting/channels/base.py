"""What every channel shares: the `Channel` contract (a name, whether it is configured here, one `send`), an error
that says whether a retry can help, and the registry the dispatcher and the workers find channels in."""

from abc import ABC, abstractmethod
from collections.abc import Iterator

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


class Channel(ABC):
    """One way an alert reaches people. `name` is what the audit store records and what a delivery task names, so
    it never changes once a channel has shipped. Channels hold no state: settings are read at each call."""

    name: str

    @abstractmethod
    def configured(self) -> bool:
        """Whether this deployment set the channel up; an unconfigured channel's `send` raises
        `NotConfiguredError`."""

    @abstractmethod
    def send(self, alert: Alert, timeout_s: float | None = None) -> None:
        """Deliver `alert` once, within `timeout_s` (default `CIO_ALERT_CHANNEL_TIMEOUT_S`), or raise
        `DeliveryError` saying whether a retry can help. No retries here: the delivery task owns them."""


class Registry:
    """The channels by name, in registration order (the order the dispatcher queues them in)."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        if not isinstance(channel, Channel) or not getattr(channel, "name", ""):
            raise TypeError(f"{channel!r} is not a named Channel")
        if channel.name in self._channels:
            raise ValueError(f"a channel named {channel.name!r} is registered already")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        return self._channels[name]

    def names(self) -> list[str]:
        return list(self._channels)

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._channels.values())


def summary(alert: Alert) -> str:
    """One line a person reads first, on every channel."""
    return f"[{alert.severity.value.upper()}] {alert.title} ({alert.source})"


def body(alert: Alert) -> str:
    lines = [summary(alert), "", f"alert id: {alert.alert_id}", f"raised at: {alert.ts.isoformat()}"]
    if alert.trace_id:
        lines.append(f"trace id: {alert.trace_id}")
    lines += [f"{key}: {value}" for key, value in sorted(alert.detail.items())]
    return "\n".join(lines)
