"""Incident cases as pages read them; `open_incidents()` is what a landing page lists (plain dataclasses, no
models: a caller needs nothing of Django's to show them)."""

from dataclasses import dataclass
from datetime import datetime

from outages.models import IncidentCase

Status = IncidentCase.Status


@dataclass(frozen=True)
class IncidentView:
    incident_id: str
    kind: str  # `gate_silent` or `policy_unconfirmed` (audit.incidents)
    gate_id: str
    severity: str  # of the alert it raised: info | warning | critical
    title: str
    status: str  # open | acknowledged | resolved
    owner: str | None  # who acknowledged it (or resolved it unacknowledged)
    since: datetime  # silent since (its last verified heartbeat) or unconfirmed since
    detected_at: datetime
    acknowledged_at: datetime | None
    recovered_at: datetime | None  # the heartbeat that ended the outage
    resolved_at: datetime | None
    resolved_by: str | None  # None on a resolved case: resolved by the watch, on recovery
    duration_s: float | None  # since → recovered, once it ended
    alert_id: str | None
    alert_outcome: str  # "sent", or why the alert did not leave (the watch sends it again)
    note: str


def view(case: IncidentCase) -> IncidentView:
    return IncidentView(
        incident_id=case.incident_id,
        kind=case.kind,
        gate_id=case.gate_id,
        severity=case.severity,
        title=case.title,
        status=case.status,
        owner=case.owner.get_username() if case.owner else None,
        since=case.since,
        detected_at=case.detected_at,
        acknowledged_at=case.acknowledged_at,
        recovered_at=case.recovered_at,
        resolved_at=case.resolved_at,
        resolved_by=case.resolved_by.get_username() if case.resolved_by else None,
        duration_s=case.duration_s,
        alert_id=case.alert_id or None,
        alert_outcome=case.alert_outcome,
        note=case.note,
    )


def open_incidents(limit: int = 100) -> list[IncidentView]:
    """Cases not resolved (open or acknowledged), newest detection first."""
    cases = IncidentCase.objects.select_related("owner", "resolved_by").exclude(status=Status.RESOLVED)
    return [view(case) for case in cases.order_by("-detected_at", "-pk")[:limit]]


def cases_of(incident_ids: list[str]) -> dict[str, IncidentView]:
    """The cases of these incidents, by incident id (most incidents are records with no case)."""
    found = IncidentCase.objects.select_related("owner", "resolved_by").filter(incident_id__in=incident_ids)
    return {case.incident_id: view(case) for case in found}


def case(incident_id: str) -> IncidentView | None:
    return next(iter(cases_of([incident_id]).values()), None)
