"""An alert as the gates raise it, for the alerting tests to send."""

from datetime import UTC, datetime
from typing import Any

from cio_kernel.contracts.alert import Alert, Severity

TRACE = "5b8efff798038103d269b633813fc60c"


def alert(severity: Severity = Severity.CRITICAL, **overrides: Any) -> Alert:
    values = {
        "alert_id": "a" * 32,
        "ts": datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
        "severity": severity,
        "source": "gate:g1",
        "title": "gate lost Redis",
        "detail": {"gate_id": "g1", "lost_s": 3.5},
        "trace_id": TRACE,
    }
    values.update(overrides)
    return Alert(**values)
