"""Who asked for a cycle, proven (docs/strategist.md, "Who asked"). A Celery message is whatever the broker's
identity wrote, so the cycle task believes nothing in it but a kind and a row id:

- *Run a cycle now* and the listener record a `CycleRequest` before queueing the task: the officer from the web
  request's own session, or the trigger's kind and detail as the listener derived them from its inputs. The
  worker takes kind, detail and person from the row, and runs each row once, while it is fresh.
- a scheduled cycle carries nothing; it is accepted when the database's own schedule (the enabled beat rows)
  says one is due: no scheduled cycle started within half the shortest interval.

Everything else — an unknown kind, a detail in the message, a row that does not exist, is spent or stale, or
disagrees with the message — is refused and counted (`anomalies.TRIGGER_REFUSED`), and no cycle runs."""

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from strategist import anomalies, triggers
from strategist.models import Cycle, CycleRequest

RUN_CYCLE = "strategist.run_cycle"
ADMIN, LISTENER = "admin", "listener"
_SECONDS = {"days": 86_400.0, "hours": 3_600.0, "minutes": 60.0, "seconds": 1.0, "microseconds": 1e-6}
_OTHER_SCHEDULE_S = 60.0  # a crontab or solar row: assume it may fire every minute


class TriggerRefusedError(Exception):
    """The task proves nothing: no cycle runs. `reason` is ours, never the message's text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def record(kind: str, detail: dict[str, Any], *, via: str, by: AbstractBaseUser | None = None) -> str:
    """Record a request (as the asker, before queueing the task); its id is all the task carries."""
    if kind not in triggers.TRIGGER_KINDS or kind == triggers.SCHEDULE:
        raise ValueError(f"{kind!r} is not a kind of cycle one can ask for")
    row = CycleRequest.objects.create(
        id=secrets.token_hex(16), kind=kind, detail=triggers.clean_detail(kind, detail), requested_by=by, via=via
    )
    return row.id


def refuse(reason: str, kind: object) -> TriggerRefusedError:
    """Count it (with the kind only when it is one of ours) and hand back the error to raise."""
    known = kind if isinstance(kind, str) and kind in triggers.TRIGGER_KINDS else "unknown"
    anomalies.record(anomalies.TRIGGER_REFUSED, {"reason": reason, "kind": known})
    return TriggerRefusedError(reason)


def screen(kind: object, detail: object, request: object) -> None:
    """What can be refused before the lock: the message's shape."""
    if not isinstance(kind, str) or kind not in triggers.TRIGGER_KINDS:
        raise refuse("not a documented trigger kind", kind)
    if detail:
        raise refuse("a detail in the message (details are taken from the request row)", kind)
    if kind == triggers.SCHEDULE and request is not None:
        raise refuse("a scheduled cycle names no request", kind)
    if kind != triggers.SCHEDULE and not (isinstance(request, str) and 0 < len(request) <= 32):
        raise refuse("no request row named", kind)


def _row(kind: str, request_id: str) -> CycleRequest:
    row = CycleRequest.objects.select_related("requested_by").filter(id=request_id).first()
    if row is None:
        raise refuse("no such request", kind)
    if row.kind != kind:
        raise refuse("the message's kind is not the request's", kind)
    return row


def precheck(kind: str, request_id: str | None) -> None:
    """Before the lock: refuse a task whose row is missing, of another kind or spent, without waiting for a cycle
    to finish (the claim under the lock decides again)."""
    if kind == triggers.SCHEDULE:
        return
    if _row(kind, request_id or "").consumed_at is not None:
        raise refuse("the request was run already (a replay)", kind)


def claim_request(kind: str, request_id: str) -> triggers.Trigger:
    """Take the row (once: a conditional update under the cycle lock) and build the trigger from it alone."""
    row = _row(kind, request_id)
    now = timezone.now()
    if not CycleRequest.objects.filter(id=request_id, consumed_at__isnull=True).update(consumed_at=now):
        raise refuse("the request was run already (a replay)", kind)
    if now - row.requested_at > timedelta(seconds=float(settings.CIO_STRATEGIST_REQUEST_MAX_AGE_S)):
        raise refuse("the request is stale", kind)
    try:
        detail = triggers.clean_detail(kind, row.detail)
    except triggers.DetailRefusedError as exc:
        raise refuse(str(exc), kind) from exc
    if kind == triggers.MANUAL:
        who = row.requested_by.get_username() if row.requested_by is not None else None
        detail = {"via": row.via, **({"by": who} if who else {})}
    return triggers.Trigger(kind, detail, verified=True, request_id=row.id, requested_by=row.requested_by)


def schedule_spacing_s() -> float | None:
    """The shortest interval of the enabled beat rows that start cycles; None when no row does."""
    from django_celery_beat.models import PeriodicTask

    spacings = []
    for row in PeriodicTask.objects.filter(task=RUN_CYCLE, enabled=True).select_related("interval"):
        if row.interval is not None:
            spacings.append(row.interval.every * _SECONDS.get(row.interval.period, 1.0))
        else:
            spacings.append(_OTHER_SCHEDULE_S)
    return min(spacings) if spacings else None


def claim_schedule() -> triggers.Trigger:
    """A scheduled cycle is due when the schedule has one and none started within half its interval (the broker's
    identity can then start no more cycles than the schedule would, whatever it sends)."""
    spacing = schedule_spacing_s()
    if spacing is None:
        raise refuse("no enabled schedule starts cycles", triggers.SCHEDULE)
    since = timezone.now() - timedelta(seconds=spacing / 2)
    if Cycle.objects.filter(trigger=triggers.SCHEDULE, started_at__gt=since).exists():
        # Not counted: ticks queued while the worker was away arrive together, and all but one are simply early.
        raise TriggerRefusedError("a scheduled cycle is not due yet")
    return triggers.Trigger(triggers.SCHEDULE, {}, verified=True)


def claim(kind: str, request_id: str | None) -> triggers.Trigger:
    return claim_schedule() if kind == triggers.SCHEDULE else claim_request(kind, request_id or "")
