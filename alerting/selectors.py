"""Alerts as people read them: each with what became of it on every channel, its repeats and who acknowledged."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit.records import ACKNOWLEDGED, DELIVERY, ESCALATED, AlertEvent, AlertRecord
from audit.store import alert_log


@dataclass
class AlertView:
    alert: AlertRecord
    events: list[AlertEvent] = field(default_factory=list)
    repeats: int = 0  # later alerts with the same source and title inside the deduplication window

    @property
    def channels(self) -> dict[str, str]:
        """The latest outcome per channel (escalation rounds and the direct email included)."""
        latest: dict[str, str] = {}
        for event in self.events:
            if event.kind == DELIVERY and event.channel:
                latest[event.channel] = event.outcome or "?"
        return latest

    @property
    def acknowledged_by(self) -> str | None:
        acks = [e for e in self.events if e.kind == ACKNOWLEDGED]
        return str(acks[0].detail.get("by")) if acks else None

    @property
    def escalations(self) -> int:
        return sum(1 for e in self.events if e.kind == ESCALATED)

    def as_dict(self) -> dict[str, Any]:
        """The alert as agents read it (MCP): the alert's own fields, each channel's outcome, repeats and who
        acknowledged it."""
        fields = ("alert_id", "ts", "severity", "source", "title", "detail", "trace_id")
        return {
            **{name: getattr(self.alert, name) for name in fields},
            "channels": self.channels,
            "repeats": self.repeats,
            "acknowledged_by": self.acknowledged_by,
        }


def recent(limit: int = 100, severity: str | None = None) -> list[AlertView]:
    store = alert_log()
    # Originals selected directly: however many repeats arrive, they cannot push an original off the page.
    firsts = store.recent_alerts(limit=limit, severity=severity, originals_only=True)
    views = {a.alert_id: AlertView(a) for a in firsts}
    for alert_id, repeats in store.repeat_counts(list(views)).items():
        views[alert_id].repeats = repeats
    for event in store.alert_events(list(views)):
        views[event.alert_id].events.append(event)
    return list(views.values())


def one(alert_id: str) -> AlertView | None:
    store = alert_log()
    alert = store.get_alert(alert_id)
    if alert is None:
        return None
    return AlertView(alert, store.alert_events([alert_id]))


@dataclass(frozen=True)
class OpenAlert:
    """An alert nobody has acknowledged yet, as a landing page lists it."""

    alert_id: str
    received_at: datetime
    severity: str  # warning | critical
    source: str
    title: str
    repeats: int  # later alerts with the same source and title inside the deduplication window
    escalations: int  # rounds sent again so far (critical only)
    channels: dict[str, str]  # the latest outcome per channel


def open_alerts(limit: int = 100) -> list[OpenAlert]:
    """Warning and critical alerts among the newest `limit` originals that nobody acknowledged, newest first (info
    alerts tell, they ask nothing of anyone). An outage that ended has its alert acknowledged by the watch."""
    return [
        OpenAlert(
            v.alert.alert_id,
            v.alert.received_at,
            v.alert.severity,
            v.alert.source,
            v.alert.title,
            v.repeats,
            v.escalations,
            v.channels,
        )
        for v in recent(limit)
        if v.alert.severity != "info" and v.acknowledged_by is None
    ]
