"""The control plane's watch over the gates: a gate that stops beating (killed, stuck, cut off) or that does not
run the active policy opens an incident and raises an alert through the alerting pipeline; the heartbeat that
ends it closes the incident with its timings (docs/alerting.md, "Outages and incidents").

A pass reads `gate:heartbeat:*` as every reader does (`cio_kernel.heartbeats`: only a heartbeat a gate signed,
expiring and fresh counts) and remembers each gate it heard (`GateWatch`), since a stopped gate's key simply
expires. It runs on every `reconcile_policies` pass (`make up` and the `reconcile` workload: every 5 s), under
the `control` identity, the only one that can both read the heartbeats and publish alerts: the Celery worker and
beat run as the Strategist and the broker, which can do neither, and the broker's identity could drop beat's
tasks (the same reasons as the Strategist's watch, strategist/watchdog.py).

Idempotent: an outage's case is keyed by gate, kind and when it began (`outage_case_once`, a database
constraint), a value every pass reads from the same row, so two reconcilers, or a restarted one, open it once;
closing is a conditional update, so one pass closes it and raises the recovery alert."""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerting import escalation
from audit import incidents
from cio_kernel.alerting import make_alert
from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.heartbeat import GateHeartbeat
from outages.models import GateWatch, IncidentCase
from policies import live, selectors

SILENT = incidents.GATE_SILENT
UNCONFIRMED = incidents.POLICY_UNCONFIRMED
RECOVERED = {SILENT: "gate {gate} is beating again", UNCONFIRMED: "gate {gate} confirms the active policy again"}
RECOVERED_BY = f"{live.CONTROL_PLANE} (recovered)"  # who acknowledges the alert of an outage that ended
Status = IncidentCase.Status


def case_id(kind: str, gate_id: str, since: datetime) -> str:
    """The incident's id, from what identifies the outage: the same outage is the same incident wherever seen."""
    key = f"{kind}|{gate_id}|{since.timestamp():.6f}"
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def run_pass(now: datetime | None = None) -> list[str]:
    """One look at the gates as of `now`; a line for each incident opened or closed. Raises when Redis cannot be
    read: then no gate is judged (a control plane that cannot see is no evidence that the gates stopped)."""
    now = now or timezone.now()
    try:
        beats = live.read_gate_heartbeats(now.timestamp())
    except Exception as exc:
        raise live.LiveUnavailableError(f"the gates' heartbeats cannot be read: {exc!r}") from exc
    active = selectors.active_version()
    heard = {beat.gate_id: beat for beat in beats.live}
    done = _resend_failed_alerts()  # first: an alert that failed in this pass waits for the next
    for beat in beats.live:
        done += _heard(beat, active.version if active else None, now)
    problems = {u.gate_id: u.problem for u in beats.unverified}
    quiet = timedelta(seconds=float(settings.CIO_GATE_SILENT_AFTER_S))
    for watch in GateWatch.objects.exclude(gate_id__in=list(heard)).filter(last_beat_at__lt=now - quiet):
        done += _silent(watch, now, len(heard), problems.get(watch.gate_id))
    return done


def _heard(beat: GateHeartbeat, active: int | None, now: datetime) -> list[str]:
    gate, ts = beat.gate_id, beat.ts
    watch, created = GateWatch.objects.get_or_create(
        gate_id=gate, defaults={"last_beat_at": ts, "policy_version": beat.policy_version}
    )
    if not created:
        GateWatch.objects.filter(pk=watch.pk, last_beat_at__lt=ts).update(
            last_beat_at=ts, policy_version=beat.policy_version
        )
    done = _recovered(gate, SILENT, ts, now)
    if active is None or beat.policy_version == active:  # with no active policy there is nothing to confirm
        GateWatch.objects.filter(pk=watch.pk).exclude(unconfirmed_since=None).update(unconfirmed_since=None)
        return done + _recovered(gate, UNCONFIRMED, ts, now)
    # The first pass to see it sets the start; every later pass (or a concurrent one) reads that same value.
    GateWatch.objects.filter(pk=watch.pk, unconfirmed_since=None).update(unconfirmed_since=now)
    since = GateWatch.objects.values_list("unconfirmed_since", flat=True).get(pk=watch.pk)
    if since is None or now - since < timedelta(seconds=float(settings.CIO_GATE_UNCONFIRMED_AFTER_S)):
        return done
    runs = beat.policy_version
    # Another version may apply rules the officers replaced (a kill switch not yet in force): critical. No policy
    # at all fails closed (every intent RETRY_SAFE, and the gate raises `policy_unusable` itself): a warning.
    severity = Severity.CRITICAL if runs is not None else Severity.WARNING
    title = f"gate {gate} does not confirm the active policy v{active}"
    detail = {"runs_version": runs, "active_version": active}
    return done + _open(UNCONFIRMED, gate, since, now, severity, title, detail)


def _silent(watch: GateWatch, now: datetime, gates_live: int, problem: str | None) -> list[str]:
    # One gate of several gone is a warning; the last one gone leaves nothing deciding intents: critical.
    severity = Severity.WARNING if gates_live else Severity.CRITICAL
    detail: dict[str, Any] = {
        "silent_s": round((now - watch.last_beat_at).total_seconds(), 1),
        "threshold_s": float(settings.CIO_GATE_SILENT_AFTER_S),
        "gates_live": gates_live,
        "last_policy_version": watch.policy_version,
    }
    if problem:  # its key holds a heartbeat that does not verify: say why (it is never taken as a beat)
        detail["unverified_heartbeat"] = problem
    return _open(SILENT, watch.gate_id, watch.last_beat_at, now, severity, f"gate {watch.gate_id} is silent", detail)


def _open(
    kind: str, gate_id: str, since: datetime, now: datetime, severity: Severity, title: str, extra: dict[str, Any]
) -> list[str]:
    if IncidentCase.objects.filter(gate_id=gate_id, kind=kind, since=since).exists():
        return []  # open already, or resolved by an officer while it lasts: either way not a new outage
    incident_id = case_id(kind, gate_id, since)
    detail = {"gate_id": gate_id, "since": since.isoformat(), "detected_at": now.isoformat(), **extra}
    alert = make_alert(severity, live.CONTROL_PLANE, title, {"key": kind, "incident_id": incident_id, **detail})
    try:
        with transaction.atomic():
            case = IncidentCase.objects.create(
                incident_id=incident_id,
                kind=kind,
                gate_id=gate_id,
                severity=severity.value,
                title=title,
                since=since,
                detected_at=now,
                alert_id=alert.alert_id,
            )
    except IntegrityError:
        return []  # another pass opened it first
    incidents.record(incidents.make(incident_id, kind, title, since, detail))
    outcome = live.publish_alert(alert)
    IncidentCase.objects.filter(pk=case.pk).update(alert_outcome=outcome[:300])
    return [f"{title} (since {since.isoformat()}): incident {incident_id} opened, {severity.value} alert {outcome}"]


def _recovered(gate_id: str, kind: str, heard_at: datetime, now: datetime) -> list[str]:
    done = []
    for case in IncidentCase.objects.filter(gate_id=gate_id, kind=kind, recovered_at=None, since__lt=heard_at):
        if not IncidentCase.objects.filter(pk=case.pk, recovered_at=None).update(recovered_at=heard_at):
            continue  # another pass closed it
        IncidentCase.objects.filter(pk=case.pk, resolved_at=None).update(status=Status.RESOLVED, resolved_at=now)
        lasted = round((heard_at - case.since).total_seconds(), 1)
        if case.alert_id and case.status != Status.RESOLVED:
            # Nothing left to page about: its escalation rounds stop (a repeat after this is news again).
            escalation.acknowledge(case.alert_id, RECOVERED_BY, f"ended after {lasted:g} s")
        title = RECOVERED[kind].format(gate=gate_id)
        detail = {
            "key": f"{kind}_recovered",
            "incident_id": case.incident_id,
            "gate_id": gate_id,
            "since": case.since.isoformat(),
            "recovered_at": heard_at.isoformat(),
            "duration_s": lasted,
        }
        outcome = live.publish_alert(make_alert(Severity.INFO, live.CONTROL_PLANE, title, detail))
        done.append(f"{title} after {lasted:g} s: incident {case.incident_id} resolved, info alert {outcome}")
    return done


def _resend_failed_alerts() -> list[str]:
    """An outage whose alert NATS did not take is alerted again on each pass while it lasts (the bridge makes
    repeats of one title one delivery)."""
    done = []
    for case in IncidentCase.objects.filter(recovered_at=None, alert_outcome__startswith="failed").exclude(
        status=Status.RESOLVED
    ):
        detail = {"key": case.kind, "incident_id": case.incident_id, "gate_id": case.gate_id}
        alert = make_alert(Severity(case.severity), live.CONTROL_PLANE, case.title, detail)
        outcome = live.publish_alert(alert)
        IncidentCase.objects.filter(pk=case.pk).update(alert_id=alert.alert_id, alert_outcome=outcome[:300])
        done.append(f"{case.title}: alert sent again, {outcome}")
    return done


class GateWatchPass:
    """The watch as a pass of `manage.py reconcile_policies` (installed by this app: `policies.extensions`)."""

    name = "gate watch"

    def __init__(self) -> None:
        self._blind = False  # whether the last pass could not read the heartbeats

    def run(self) -> list[str]:
        # Said once when it goes blind and once when it sees again: with Redis away the reconciler comes back every
        # half second, and one line each time would bury everything else it says.
        try:
            done = run_pass()
        except live.LiveUnavailableError as exc:
            said, self._blind = self._blind, True
            return [] if said else [f"not run: {exc}"]
        if self._blind:
            self._blind = False
            return ["the gates' heartbeats can be read again", *done]
        return done
