"""The alert log on every backend: alerts and what happened to them are kept once and in order, and escalation
finds every original that needs it however many repeats follow."""

from datetime import timedelta

from audit.store.alerts import AlertLog
from tests.audit.records import T0


def test_every_backend_keeps_the_alert_log(audit_store):
    assert isinstance(audit_store, AlertLog)


def _alert(i: int, severity: str = "critical", duplicate_of: str | None = None):
    from audit.records import AlertRecord

    return AlertRecord(
        alert_id=f"al-{i}",
        ts=T0 + timedelta(seconds=i),
        severity=severity,
        source="gate:g1",
        title=f"audit backlog {i}",
        detail={"pending": i, "nested": {"ok": True}},
        trace_id=f"{i:032x}",
        received_at=T0 + timedelta(seconds=i, milliseconds=5),
        duplicate_of=duplicate_of,
    )


def test_alerts_and_what_happened_to_them_are_kept_once_and_in_order(audit_store):
    from audit.records import DELIVERY, AlertEvent

    alerts = [_alert(1), _alert(2, "warning"), _alert(3, duplicate_of="al-1")]
    assert [audit_store.insert_alert(a) for a in alerts] == [True, True, True]
    assert not audit_store.insert_alert(alerts[0])
    stored = audit_store.get_alert("al-3")
    assert (
        stored is not None and stored.duplicate_of == "al-1" and stored.detail == {"pending": 3, "nested": {"ok": True}}
    )
    assert stored.received_at.replace(tzinfo=None) == alerts[2].received_at.replace(tzinfo=None)
    assert audit_store.get_alert("al-9") is None
    assert [a.alert_id for a in audit_store.recent_alerts()] == ["al-3", "al-2", "al-1"]
    assert [a.alert_id for a in audit_store.recent_alerts(severity="warning")] == ["al-2"]
    assert [a.alert_id for a in audit_store.recent_alerts(since=alerts[1].received_at)] == ["al-3", "al-2"]
    assert [a.alert_id for a in audit_store.recent_alerts(limit=1)] == ["al-3"]

    events = [
        AlertEvent("ev-2", "al-1", T0 + timedelta(seconds=2), DELIVERY, "email", 2, "delivered", {"ms": 12}),
        AlertEvent("ev-1", "al-1", T0 + timedelta(seconds=1), DELIVERY, "email", 1, "retrying", {"error": "421"}),
        AlertEvent("ev-3", "al-2", T0 + timedelta(seconds=3), DELIVERY, "grafana", 1, "delivered"),
    ]
    assert all(audit_store.add_alert_event(e) for e in events)
    assert not audit_store.add_alert_event(events[0])
    kept = audit_store.alert_events(["al-1"])
    assert [(e.event_id, e.outcome, e.attempt) for e in kept] == [("ev-1", "retrying", 1), ("ev-2", "delivered", 2)]
    assert kept[0].detail == {"error": "421"}
    assert {e.event_id for e in audit_store.alert_events(["al-1", "al-2"])} == {"ev-1", "ev-2", "ev-3"}


def test_escalation_candidates_are_the_unacknowledged_critical_originals_however_many_repeats_follow(audit_store):
    """Issue 17: 500 critical repeats used to push an earlier real alert out of the sweep (newest 500, then
    filtered). The store now selects the originals with rounds left directly, oldest first."""
    from audit.records import ACKNOWLEDGED, ESCALATED, AlertEvent

    real, acked, done, warning = _alert(1), _alert(2), _alert(3), _alert(4, "warning")
    for alert in (real, acked, done, warning):
        audit_store.insert_alert(alert)
    for i in range(600):  # the flood: repeats of a newer critical alert
        audit_store.insert_alert(_alert(10 + i, duplicate_of="al-3"))
    audit_store.add_alert_event(AlertEvent("ack", "al-2", T0, ACKNOWLEDGED, detail={"by": "officer2"}))
    for r in (1, 2):
        audit_store.add_alert_event(AlertEvent(f"esc-{r}", "al-3", T0, ESCALATED, detail={"round": r}))
    audit_store.add_alert_event(AlertEvent("esc-1-of-1", "al-1", T0, ESCALATED, detail={"round": 1}))
    assert [a.alert_id for a in audit_store.escalation_candidates(T0, rounds=2)] == ["al-1"]
    assert [a.alert_id for a in audit_store.escalation_candidates(T0, rounds=3)] == ["al-1", "al-3"]
    assert audit_store.escalation_candidates(real.received_at + timedelta(seconds=1), rounds=3) == [
        audit_store.get_alert("al-3")
    ]
    # What people read is selected the same way: the originals, with their repeats counted.
    assert [a.alert_id for a in audit_store.recent_alerts(limit=3, originals_only=True)] == [
        "al-4",
        "al-3",
        "al-2",
    ]
    assert audit_store.repeat_counts(["al-1", "al-2", "al-3"]) == {"al-3": 600}


def test_delivery_attempts_are_counted_by_channel_and_outcome(audit_store):
    from audit.records import ACKNOWLEDGED, DELIVERY, AlertEvent

    events = [
        AlertEvent("d1", "al-1", T0, DELIVERY, channel="slack", attempt=1, outcome="retrying"),
        AlertEvent("d2", "al-1", T0, DELIVERY, channel="slack", attempt=2, outcome="delivered"),
        AlertEvent("d3", "al-2", T0, DELIVERY, channel="slack", attempt=1, outcome="delivered"),
        AlertEvent("d4", "al-2", T0, DELIVERY, channel="email", attempt=1, outcome="failed"),
        AlertEvent("k1", "al-2", T0, ACKNOWLEDGED),  # not a delivery
    ]
    for event in [*events, events[0]]:  # recorded once per id, however often it is added
        audit_store.add_alert_event(event)
    assert audit_store.delivery_counts() == {
        ("slack", "retrying"): 1,
        ("slack", "delivered"): 2,
        ("email", "failed"): 1,
    }
