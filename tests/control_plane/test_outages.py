"""The control plane's watch over the gates (outages/watch.py), against real NATS, Valkey and the database: a
gate's signed heartbeat is written to Redis as the gate writes it, and taken away as its key expires when the gate
stops. Each pass is given its `now`, so an outage of minutes takes no time to test: the reader judges every
heartbeat's freshness against that same `now`."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis as sync_redis
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.records import ACKNOWLEDGED
from audit.store import alert_log, get_store
from deploy import access
from outages import selectors, watch
from outages.models import GateWatch, IncidentCase
from policies.live import LiveUnavailableError
from tests.control_plane.helpers import AlertListener, _wait
from tests.factories import TEST_AUDIT_PUBLIC_KEY, signed_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alerts(stack: Any) -> Iterator[AlertListener]:
    listener = AlertListener(stack.NATS_URL)
    yield listener
    listener.close()


def beat(redis_client: Any, gate_id: str, at: datetime, version: int | None = 1) -> None:
    """`gate_id` beats at `at` (its key lives 5 s past the real clock, as a gate's does)."""
    redis_client.set(
        f"gate:heartbeat:{gate_id}", signed_heartbeat(gate_id, ttl_s=5, ts=at.isoformat(), policy_version=version), ex=5
    )


def stops(redis_client: Any, gate_id: str) -> None:
    """The gate is killed, stuck or cut off: it writes no more, and its key expires."""
    redis_client.delete(f"gate:heartbeat:{gate_id}")


def heard(listener: AlertListener, count: int) -> list[Any]:
    _wait(lambda: len(listener.alerts) >= count, 10)
    return list(listener.alerts)


def test_a_silent_gate_opens_one_incident_and_its_next_beat_closes_it(stack, redis_client, alerts, settings):
    settings.CIO_GATE_SILENT_AFTER_S = 10
    t0 = timezone.now()
    beat(redis_client, "g1", t0)
    beat(redis_client, "g2", t0)
    assert watch.run_pass(t0) == []
    assert set(GateWatch.objects.values_list("gate_id", flat=True)) == {"g1", "g2"}

    stops(redis_client, "g1")
    beat(redis_client, "g2", t0 + timedelta(seconds=9))
    assert watch.run_pass(t0 + timedelta(seconds=9)) == []  # not yet past the threshold
    beat(redis_client, "g2", t0 + timedelta(seconds=11))
    [line] = watch.run_pass(t0 + timedelta(seconds=11))
    assert "gate g1 is silent" in line and "alert sent" in line
    # The next pass (this reconciler's, another's, a restarted one's: a pass remembers nothing but the database)
    # opens nothing more.
    beat(redis_client, "g2", t0 + timedelta(seconds=12))
    assert watch.run_pass(t0 + timedelta(seconds=12)) == []

    case = IncidentCase.objects.get()
    assert (case.kind, case.gate_id, case.status) == ("gate_silent", "g1", "open")
    assert case.since == t0 and case.detected_at == t0 + timedelta(seconds=11) and case.recovered_at is None
    assert case.severity == "warning"  # g2 still decides intents
    record = get_store().get_incident(case.incident_id)
    assert record is not None and record.kind == "gate_silent" and record.detail["gate_id"] == "g1"
    [alert] = heard(alerts, 1)
    assert alert.source == "control-plane" and alert.severity == "warning" and alert.title == "gate g1 is silent"
    assert alert.detail["incident_id"] == case.incident_id and alert.detail["since"] == t0.isoformat()
    assert alert.alert_id == case.alert_id and case.alert_outcome == "sent"
    assert [i.incident_id for i in selectors.open_incidents()] == [case.incident_id]

    back = t0 + timedelta(seconds=40)
    beat(redis_client, "g1", back)
    beat(redis_client, "g2", back)
    [line] = watch.run_pass(back + timedelta(seconds=1))
    assert "gate g1 is beating again after 40 s" in line
    case.refresh_from_db()
    assert case.status == "resolved" and case.resolved_by is None and case.recovered_at == back
    assert case.duration_s == 40.0 and case.resolved_at == back + timedelta(seconds=1)
    assert selectors.open_incidents() == []
    recovered = heard(alerts, 2)[1]
    assert recovered.severity == "info" and recovered.detail["duration_s"] == 40.0
    # Its alert needs nobody any more: acknowledged, so escalation stops.
    [ack] = [e for e in alert_log().alert_events([case.alert_id]) if e.kind == ACKNOWLEDGED]
    assert ack.detail["by"] == watch.RECOVERED_BY
    assert watch.run_pass(back + timedelta(seconds=2)) == []

    # The next outage of the same gate is a new incident.
    stops(redis_client, "g1")
    stops(redis_client, "g2")
    [first, second] = sorted(watch.run_pass(back + timedelta(seconds=20)))
    assert "gate g1 is silent" in first and "gate g2 is silent" in second
    assert IncidentCase.objects.filter(status="open").count() == 2
    assert {a.severity for a in heard(alerts, 4)[2:]} == {"critical"}  # no gate left: critical


def test_a_gate_not_running_the_active_policy_opens_an_incident(stack, active_v1, redis_client, alerts, settings):
    settings.CIO_GATE_UNCONFIRMED_AFTER_S = 5
    t0 = timezone.now()
    beat(redis_client, "runs-none", t0, version=None)  # lost its policy: refuses everything
    beat(redis_client, "runs-v2", t0, version=2)  # a version that is not the active one
    beat(redis_client, "runs-v1", t0, version=1)
    assert watch.run_pass(t0) == []  # a gate may take a moment to confirm a new version
    later = t0 + timedelta(seconds=6)
    for gate, version in (("runs-none", None), ("runs-v2", 2), ("runs-v1", 1)):
        beat(redis_client, gate, later, version=version)
    assert len(watch.run_pass(later)) == 2
    cases = {c.gate_id: c for c in IncidentCase.objects.all()}
    assert set(cases) == {"runs-none", "runs-v2"}
    assert cases["runs-v2"].severity == "critical" and cases["runs-none"].severity == "warning"
    assert {c.kind for c in cases.values()} == {"policy_unconfirmed"} and cases["runs-v2"].since == t0
    by_gate = {a.detail["gate_id"]: a for a in heard(alerts, 2)}
    assert by_gate["runs-v2"].detail["runs_version"] == 2 and by_gate["runs-v2"].detail["active_version"] == 1
    assert by_gate["runs-none"].title == "gate runs-none does not confirm the active policy v1"

    fixed = t0 + timedelta(seconds=8)
    beat(redis_client, "runs-v2", fixed, version=1)
    beat(redis_client, "runs-none", fixed, version=None)
    [line] = watch.run_pass(fixed)
    assert "gate runs-v2 confirms the active policy again after 8 s" in line
    cases["runs-v2"].refresh_from_db()
    assert cases["runs-v2"].status == "resolved" and cases["runs-v2"].duration_s == 8.0
    assert [i.gate_id for i in selectors.open_incidents()] == ["runs-none"]


def test_an_alert_nats_did_not_take_is_sent_again_while_the_outage_lasts(stack, redis_client, alerts, settings):
    t0 = timezone.now()
    beat(redis_client, "g1", t0)
    watch.run_pass(t0)
    stops(redis_client, "g1")
    nats_url, settings.NATS_URL = settings.NATS_URL, "nats://127.0.0.1:1"  # NATS away when the outage is found
    [line] = watch.run_pass(t0 + timedelta(seconds=11))
    assert "alert failed" in line
    case = IncidentCase.objects.get()
    assert case.status == "open" and case.alert_outcome.startswith("failed")

    settings.NATS_URL = nats_url
    [line] = watch.run_pass(t0 + timedelta(seconds=16))
    assert line == "gate g1 is silent: alert sent again, sent"
    [alert] = heard(alerts, 1)
    case.refresh_from_db()
    assert case.alert_outcome == "sent" and case.alert_id == alert.alert_id
    assert alert.detail["incident_id"] == case.incident_id
    assert watch.run_pass(t0 + timedelta(seconds=17)) == []  # sent: not again


def test_redis_away_judges_no_gate(stack, settings):
    GateWatch.objects.create(gate_id="g1", last_beat_at=timezone.now() - timedelta(hours=1))
    redis_url, settings.REDIS_URL = settings.REDIS_URL, "redis://127.0.0.1:1/0"  # nothing listens there
    reconciler = watch.GateWatchPass()
    [line] = reconciler.run()
    assert line.startswith("not run: the gates' heartbeats cannot be read")
    assert reconciler.run() == []  # said once, not on every retry
    assert not IncidentCase.objects.exists()  # a control plane that cannot see is no evidence of an outage
    settings.REDIS_URL = redis_url
    back, opened = reconciler.run()  # it sees again: the gate it has not heard from for an hour is silent
    assert back == "the gates' heartbeats can be read again" and "gate g1 is silent" in opened


@pytest.fixture
def open_case(users: Any) -> IncidentCase:
    now = timezone.now()
    return IncidentCase.objects.create(
        incident_id="gate_silent-abc",
        kind="gate_silent",
        gate_id="g1",
        severity="critical",
        title="gate g1 is silent",
        since=now - timedelta(seconds=30),
        detected_at=now,
        alert_id="al-outage",
        alert_outcome="sent",
    )


def test_an_officer_acknowledges_and_resolves_from_admin_and_a_viewer_cannot(browser, open_case):
    url = f"/admin/audit/incident/{open_case.incident_id}/"
    viewer = browser("viewer")
    page = viewer.get(url).content.decode()
    assert "gate g1 is silent" in page and 'value="acknowledge"' not in page
    assert viewer.post(url, {"act": "acknowledge"}).status_code == 404
    assert browser("agent").post(url, {"act": "resolve"}).status_code == 404
    open_case.refresh_from_db()
    assert open_case.status == "open" and open_case.owner is None

    officer = browser("officer2")
    assert 'value="acknowledge"' in officer.get(url).content.decode()
    assert officer.post(url, {"act": "acknowledge", "note": "restarting it"}).status_code == 302
    open_case.refresh_from_db()
    assert open_case.status == "acknowledged" and open_case.owner.username == "officer2"
    assert open_case.acknowledged_at is not None and "acknowledged by officer2: restarting it" in open_case.note
    [ack] = [e for e in alert_log().alert_events(["al-outage"]) if e.kind == ACKNOWLEDGED]
    assert ack.detail == {"by": "officer2", "note": "restarting it"}  # its escalation stops
    assert [i.owner for i in selectors.open_incidents()] == ["officer2"]

    assert browser("officer1").post(url, {"act": "resolve", "note": "gate retired"}).status_code == 302
    open_case.refresh_from_db()
    assert open_case.status == "resolved" and open_case.resolved_by.username == "officer1"
    assert open_case.owner.username == "officer2" and selectors.open_incidents() == []
    page = officer.get(url).content.decode()
    assert "resolved" in page and 'value="resolve"' not in page


def test_the_index_links_alerts_and_incidents_and_the_list_shows_each_case(browser, open_case):
    officer = browser("officer1")
    index = officer.get("/admin/").content.decode()
    assert '<a href="/admin/audit/alert/">Alerts</a>' in index
    assert '<a href="/admin/audit/incident/">Incidents</a>' in index
    get_store().insert_incident(
        watch.incidents.make(open_case.incident_id, "gate_silent", open_case.title, open_case.since, {})
    )
    page = officer.get("/admin/audit/incident/").content.decode()
    assert f'href="/admin/audit/incident/{open_case.incident_id}/"' in page and "<td>open</td>" in page
    assert "gate g1 is silent" in officer.get("/admin/audit/incident/open/").content.decode()


def test_one_case_per_outage_is_the_database_s_rule(open_case):
    """What makes two passes at once (two reconcilers, one restarted mid-pass) open one case: whichever inserts
    second is refused by the database, not by anything a pass remembers."""
    twin = {f: getattr(open_case, f) for f in ("kind", "gate_id", "severity", "title", "since", "detected_at")}
    with pytest.raises(IntegrityError), transaction.atomic():
        IncidentCase.objects.create(incident_id="another-id", **twin)


def test_under_the_shipped_permissions_only_the_control_identity_can_watch(secured, settings, users):
    """Why the watch is a reconcile pass, not a Celery task: `control` (the reconciler) reads the heartbeats and
    may raise the alert; `strategist` (what the Celery worker runs as) cannot even read the heartbeats."""
    settings.CIO_AUDIT_PUBLIC_KEY = TEST_AUDIT_PUBLIC_KEY
    settings.NATS_URL = secured.nats_url("control")
    settings.CIO_NATS_INBOX_PREFIX = access.NATS_ROLES["control"].inbox_prefix
    listener = AlertListener(secured.nats_url("alerting"), access.NATS_ROLES["alerting"].inbox_prefix)
    gate = sync_redis.Redis.from_url(secured.redis_url("gate"))
    try:
        t0 = timezone.now()
        beat(gate, "g1", t0)  # as the gate writes it, with the gate's own password

        settings.REDIS_URL = secured.redis_url("strategist")
        with pytest.raises(LiveUnavailableError, match="heartbeats cannot be read"):
            watch.run_pass(t0)

        settings.REDIS_URL = secured.redis_url("control")
        assert watch.run_pass(t0) == []
        # 11 s on, its key (which the gate's password cannot delete) still holds that beat: too old to be a live
        # gate's, so g1 is silent, and the alert says why its key did not count.
        [line] = watch.run_pass(t0 + timedelta(seconds=11))
        assert "gate g1 is silent" in line and "critical alert sent" in line
        [alert] = heard(listener, 1)
        assert alert.title == "gate g1 is silent" and alert.source == "control-plane"
        assert alert.detail["unverified_heartbeat"].startswith("stale")
    finally:
        gate.close()
        listener.close()
