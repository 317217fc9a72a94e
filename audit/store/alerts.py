"""The alert log: every alert the bridge received, once per `alert_id` (repeats point at their original), and
what happened to each (deliveries, dispatches, acknowledgements, escalations) as events appended once per
`event_id`."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from audit.records import AlertEvent, AlertRecord


@runtime_checkable
class AlertLog(Protocol):
    def insert_alert(self, alert: AlertRecord) -> bool:
        """Store an alert once per `alert_id`; True when it was new."""
        ...

    def get_alert(self, alert_id: str) -> AlertRecord | None: ...

    def recent_alerts(
        self,
        limit: int = 100,
        severity: str | None = None,
        since: datetime | None = None,
        originals_only: bool = False,
    ) -> list[AlertRecord]:
        """Newest first; with `since`, only alerts received at or after it; with `originals_only`, no repeats
        (so a flood of repeats cannot push an original off a page)."""
        ...

    def repeat_counts(self, alert_ids: Sequence[str]) -> dict[str, int]:
        """How many repeats point at each of these alerts (`duplicate_of`); those with none are left out."""
        ...

    def escalation_candidates(self, since: datetime, rounds: int) -> list[AlertRecord]:
        """Critical alerts received at or after `since` that are originals (not repeats), unacknowledged and
        escalated fewer than `rounds` times: oldest first, every one of them. Selected directly, so no number of
        repeats or newer alerts can push one out (issue 17)."""
        ...

    def add_alert_event(self, event: AlertEvent) -> bool:
        """Append what happened to an alert (a delivery attempt, an acknowledgement, an escalation), once per
        `event_id`."""
        ...

    def alert_events(self, alert_ids: Sequence[str]) -> list[AlertEvent]:
        """Every event of these alerts, oldest first."""
        ...

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """Delivery attempts ever recorded, by (channel, outcome): one grouped count (the web's metrics)."""
        ...
