"""What officers do with an incident case: acknowledge it (they own it now) and resolve it. Both need the
permission that acknowledges alerts (`approve_policyversion`: risk officers), and both stop the escalation of the
alert the case raised, which is recorded in the alert log as any acknowledgement is."""

from typing import Any

from django.utils import timezone

from alerting import escalation
from core import roles
from core.errors import InvalidTransitionError, NotFoundError
from outages.models import IncidentCase

Status = IncidentCase.Status
ACKNOWLEDGE = roles.APPROVE  # the same permission as acknowledging an alert (alerting/admin.py)


def acknowledge(incident_id: str, by: Any, note: str = "") -> IncidentCase:
    """Open → acknowledged: `by` owns it from now on. `INVALID_TRANSITION` when it is not open any more."""
    roles.require(by, ACKNOWLEDGE, "acknowledge incidents")
    case = _case(incident_id)
    # A conditional update, as the watch's own: whichever of the two acts first wins, the other is told.
    changed = IncidentCase.objects.filter(pk=case.pk, status=Status.OPEN).update(
        status=Status.ACKNOWLEDGED,
        owner=by,
        acknowledged_at=timezone.now(),
        note=_noted(case.note, by, "acknowledged", note),
    )
    if not changed:
        raise InvalidTransitionError(f"incident {incident_id} is {_case(incident_id).status}, not open")
    _acknowledge_alert(case, by, note)
    return _case(incident_id)


def resolve(incident_id: str, by: Any, note: str = "") -> IncidentCase:
    """Open or acknowledged → resolved by an officer (a gate retired for good, a cause fixed elsewhere); the watch
    resolves a case on its own when the outage ends. `INVALID_TRANSITION` when it is resolved already."""
    roles.require(by, ACKNOWLEDGE, "resolve incidents")
    case = _case(incident_id)
    changed = (
        IncidentCase.objects.filter(pk=case.pk, status=case.status)
        .exclude(status=Status.RESOLVED)
        .update(
            status=Status.RESOLVED,
            resolved_by=by,
            resolved_at=timezone.now(),
            owner=case.owner or by,
            note=_noted(case.note, by, "resolved", note),
        )
    )
    if not changed:
        raise InvalidTransitionError(f"incident {incident_id} is {_case(incident_id).status}: not resolved by you")
    if case.status == Status.OPEN:  # nobody acknowledged its alert yet: resolving it stops the escalation too
        _acknowledge_alert(case, by, note)
    return _case(incident_id)


def _case(incident_id: str) -> IncidentCase:
    case = IncidentCase.objects.select_related("owner", "resolved_by").filter(incident_id=incident_id).first()
    if case is None:
        raise NotFoundError(f"no incident case {incident_id}")
    return case


def _noted(notes: str, by: Any, act: str, note: str) -> str:
    line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {act} by {by.get_username()}" + (f": {note}" if note else "")
    return f"{notes}\n{line}".strip()


def _acknowledge_alert(case: IncidentCase, by: Any, note: str) -> None:
    if case.alert_id:
        escalation.acknowledge(case.alert_id, by.get_username(), note or f"incident {case.incident_id}")


def perm() -> str:
    """What `acknowledge` and `resolve` check, as `user.has_perm` takes it (pages show their buttons by it)."""
    return roles.perm(ACKNOWLEDGE)
