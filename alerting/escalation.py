"""Escalation: a critical alert nobody acknowledged within `CIO_ALERT_ESCALATE_AFTER_S` is sent again, on every
channel, up to `CIO_ALERT_ESCALATIONS` times (each round waits the same interval again). Acknowledging it in
admin stops the rounds. Each round is an `escalated` event with a deterministic id, so two sweeps at once
escalate once. The sweep only takes the rounds; its caller dispatches them (alerting/tasks.py, alerting/bridge.py)."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings

from alerting.delivery import alert_of
from audit.records import ACKNOWLEDGED, ESCALATED, AlertEvent
from audit.store import alert_log
from cio_kernel.contracts.alert import Alert

log = logging.getLogger(__name__)


class DueRound(NamedTuple):
    alert: Alert
    round_: int


def acknowledge(alert_id: str, by: str, note: str = "", now: datetime | None = None) -> AlertEvent:
    event = AlertEvent(
        event_id=f"{alert_id}:ack:{uuid.uuid4().hex[:12]}",
        alert_id=alert_id,
        ts=now or datetime.now(UTC),
        kind=ACKNOWLEDGED,
        detail={"by": by, "note": note},
    )
    alert_log().add_alert_event(event)
    return event


def sweep(now: datetime | None = None) -> list[DueRound]:
    """Take every round that is due (its `escalated` event recorded) and return them, to be dispatched."""
    now = now or datetime.now(UTC)
    every = timedelta(seconds=settings.CIO_ALERT_ESCALATE_AFTER_S)
    rounds = settings.CIO_ALERT_ESCALATIONS
    store = alert_log()
    # Originals, unacknowledged, with rounds left: selected directly, so a flood of repeats cannot push one out.
    alerts = store.escalation_candidates(since=now - every * (rounds + 2), rounds=rounds)
    events: dict[str, list[AlertEvent]] = {}
    for event in store.alert_events([a.alert_id for a in alerts]):
        events.setdefault(event.alert_id, []).append(event)
    due = []
    for alert in alerts:
        history = events.get(alert.alert_id, [])
        if any(e.kind == ACKNOWLEDGED for e in history):
            continue
        done = sum(1 for e in history if e.kind == ESCALATED)
        if done >= rounds or now < alert.received_at + every * (done + 1):
            continue
        round_ = done + 1
        new = store.add_alert_event(
            AlertEvent(f"{alert.alert_id}:escalated:{round_}", alert.alert_id, now, ESCALATED, detail={"round": round_})
        )
        if new:  # another sweep may have taken this round already
            due.append(DueRound(alert_of(alert), round_))
            log.warning("alert %s not acknowledged: escalation round %d", alert.alert_id, round_)
    return due
