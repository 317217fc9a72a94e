"""Raising alerts (SPEC §7): any process publishes an `Alert` on `cio.alert.<severity>`; the alerting bridge
delivers it. A condition that persists raises one alert per `every_s` per key, not one per check."""

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from cio_kernel.contracts.alert import Alert, Severity, alert_subject
from cio_kernel.redaction import process_scrubber

Publish = Callable[[str, bytes], Awaitable[Any]]


def make_alert(
    severity: Severity, source: str, title: str, detail: dict[str, Any] | None = None, trace_id: str | None = None
) -> Alert:
    scrub = process_scrubber()
    return Alert(
        alert_id=secrets.token_hex(16),
        ts=datetime.now(UTC),
        severity=severity,
        source=source,
        title=scrub.text(title)[:300],
        detail=scrub.value(detail or {}),
        trace_id=trace_id,
    )


class AlertPublisher:
    def __init__(
        self, publish: Publish, source: str, every_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._publish = publish
        self.source = source
        self._every_s = every_s
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self.raised = 0

    async def raise_alert(
        self,
        key: str,
        severity: Severity,
        title: str,
        detail: dict[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> Alert | None:
        """Publish unless this key raised within `every_s`; returns the alert, or None when held back."""
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            return None
        alert = make_alert(severity, self.source, title, {"key": key, **(detail or {})}, trace_id)
        await self._publish(alert_subject(severity), alert.model_dump_json().encode())
        self._last[key] = now
        self.raised += 1
        return alert
