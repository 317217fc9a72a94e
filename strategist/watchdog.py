"""The Strategist watched from outside: the control plane's watch (`reconcile_policies --watch`, under the
`control` NATS identity, which may publish alerts; the Strategist's may not) raises

- a **critical** alert for every anomaly counted since the last alert (`anomalies.py`: a forged or replayed cycle
  task, an illegitimate lock or debounce key broken, a cached input refused);
- a **warning** when no cycle has completed within twice the schedule's shortest interval plus
  `CIO_STRATEGIST_OVERDUE_GRACE_S` (the Strategist is enabled and a schedule row is), and a **critical** alert
  every `CIO_STRATEGIST_OVERDUE_ALERT_EVERY_S` after it while that lasts. The broker's identity can both drop the
  cycle tasks and drop a warning's deliveries (only a critical alert has the bridge's direct email), so the
  reminder must be critical for a Strategist kept from running to reach someone.

Both are read from the database, which neither the broker's nor the Strategist's Redis identity can write: a
Strategist kept from running, or kept quiet, is still noticed."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Max
from django.utils import timezone

from cio_kernel.contracts.alert import Severity
from policies import live
from strategist import anomalies, cycle_requests
from strategist.models import Anomaly, Cycle, StrategistSettings

log = logging.getLogger(__name__)

Alert = Callable[[Severity, str, dict[str, object]], str]
OVERDUE = "strategist_overdue"


class Watchdog:
    def __init__(self, alert: Alert = live.raise_alert) -> None:
        self._alert = alert
        self._overdue_alerted_at: datetime | None = None
        self._overdue_alerts = 0

    def check(self, now: datetime | None = None) -> list[str]:
        """One pass; the alerts it sent (their keys)."""
        now = now or timezone.now()
        return [*self._anomalies(), *self._overdue(now)]

    def _anomalies(self) -> list[str]:
        sent = []
        for row in Anomaly.objects.filter(count__gt=F("alerted_count")):
            title = anomalies.TITLES.get(row.kind, f"Strategist: anomaly {row.kind}")
            detail = {
                "key": f"strategist_{row.kind}",
                "new": row.count - row.alerted_count,
                "total": row.count,
                "last_seen": row.last_seen.isoformat(),
                "last": row.last_detail,
            }
            if self._alert(Severity.CRITICAL, title, detail) == "sent":
                Anomaly.objects.filter(pk=row.pk, alerted_count__lt=row.count).update(alerted_count=row.count)
                sent.append(row.kind)
            else:
                log.warning("the %s alert could not be sent; the next pass tries again", row.kind)
        return sent

    def overdue_s(self, now: datetime) -> float | None:
        """How far past its due time the Strategist is (None when it is not, or nothing is expected of it)."""
        row = StrategistSettings.current()
        spacing = cycle_requests.schedule_spacing_s()
        if not row.enabled or spacing is None:
            return None
        from django_celery_beat.models import PeriodicTask

        changed = PeriodicTask.objects.filter(task=cycle_requests.RUN_CYCLE, enabled=True).aggregate(
            at=Max("date_changed")
        )["at"]
        finished = Cycle.objects.aggregate(at=Max("finished_at"))["at"]
        since = max(t for t in (finished, changed, row.updated_at) if t is not None)
        allowed = timedelta(seconds=2 * spacing + float(settings.CIO_STRATEGIST_OVERDUE_GRACE_S))
        late = (now - since - allowed).total_seconds()
        return late if late > 0 else None

    def _overdue(self, now: datetime) -> list[str]:
        late = self.overdue_s(now)
        if late is None:
            self._overdue_alerted_at, self._overdue_alerts = None, 0
            return []
        every = timedelta(seconds=float(settings.CIO_STRATEGIST_OVERDUE_ALERT_EVERY_S))
        if self._overdue_alerted_at is not None and now - self._overdue_alerted_at < every:
            return []
        finished = Cycle.objects.aggregate(at=Max("finished_at"))["at"]
        detail = {"key": OVERDUE, "late_s": int(late), "last_cycle": finished.isoformat() if finished else None}
        severity = Severity.WARNING if self._overdue_alerts == 0 else Severity.CRITICAL
        if self._alert(severity, "Strategist: no cycle completed within its schedule", detail) != "sent":
            return []
        self._overdue_alerted_at, self._overdue_alerts = now, self._overdue_alerts + 1
        return [OVERDUE]


class WatchPass:
    """The watch as a pass of `manage.py reconcile_policies` (installed by this app: `policies.extensions`)."""

    name = "strategist watch"

    def __init__(self) -> None:
        self.watchdog = Watchdog()  # one per process: it remembers when it last alerted an overdue Strategist

    def run(self) -> list[str]:
        return [f"alert {alert} sent" for alert in self.watchdog.check()]
