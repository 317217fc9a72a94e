"""Alerts in admin: the list shows each channel's outcome and the repeats; an officer acknowledges, which stops
escalation; a viewer reads but cannot acknowledge."""

from datetime import UTC, datetime

import pytest

from alerting import escalation, selectors
from audit.records import DELIVERY, AlertEvent, AlertRecord
from audit.store import get_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stored_alert():
    now = datetime.now(UTC)
    store = get_store()
    store.insert_alert(AlertRecord("al-1", now, "critical", "gate:g1", "gate lost Redis", {"lost_s": 3}, None, now))
    store.insert_alert(AlertRecord("al-2", now, "critical", "gate:g1", "gate lost Redis", {}, None, now, "al-1"))
    store.add_alert_event(AlertEvent("e1", "al-1", now, DELIVERY, "email", 1, "delivered"))
    store.add_alert_event(AlertEvent("e2", "al-1", now, DELIVERY, "grafana", 2, "dead_letter", {"error": "HTTP 503"}))
    return "al-1"


def test_the_list_shows_outcomes_and_repeats(browser, stored_alert):
    page = browser("viewer").get("/admin/audit/alert/").content.decode()
    assert "gate lost Redis" in page and "<code>email</code> delivered" in page
    assert "<code>grafana</code> dead_letter" in page
    assert "<td>1</td>" in page  # one repeat, not delivered again
    assert page.count("gate lost Redis") == 1


def test_an_officer_acknowledges_and_a_viewer_cannot(browser, stored_alert):
    url = f"/admin/audit/alert/{stored_alert}/"
    viewer = browser("viewer")
    assert 'value="Acknowledge"' not in viewer.get(url).content.decode()
    assert viewer.post(url, {"note": "mine"}).status_code == 404
    officer = browser("officer2")
    assert 'value="Acknowledge"' in officer.get(url).content.decode()
    assert officer.post(url, {"note": "restarting Redis"}).status_code == 302
    page = officer.get(url).content.decode()
    assert "officer2" in page and "HTTP 503" in page and 'value="Acknowledge"' not in page
    [ack] = [e for e in get_store().alert_events([stored_alert]) if e.kind == "acknowledged"]
    assert ack.detail == {"by": "officer2", "note": "restarting Redis"}


def test_a_flood_of_repeats_does_not_push_the_original_off_the_list(browser, stored_alert):
    """Issue 17: the list used to read the newest 500 records and drop repeats afterwards."""
    now = datetime.now(UTC)
    store = get_store()
    for i in range(600):
        first = None if i == 0 else "flood-0"
        store.insert_alert(AlertRecord(f"flood-{i}", now, "critical", "gate:g1", "noise", {}, None, now, first))
    page = browser("viewer").get("/admin/audit/alert/").content.decode()
    assert "gate lost Redis" in page and "<td>1</td>" in page  # the original, still with its one repeat
    assert page.count("noise") == 1 and "<td>599</td>" in page  # the flood is one line with its count


def test_open_alerts_are_the_unacknowledged_warnings_and_criticals(stored_alert):
    now = datetime.now(UTC)
    store = get_store()
    store.insert_alert(AlertRecord("al-3", now, "info", "control-plane", "gate g1 is beating again", {}, None, now))
    store.insert_alert(AlertRecord("al-4", now, "warning", "control-plane", "gate g2 is silent", {}, None, now))
    assert [(a.alert_id, a.repeats) for a in selectors.open_alerts()] == [("al-4", 0), ("al-1", 1)]
    escalation.acknowledge("al-4", "officer1")
    [left] = selectors.open_alerts()
    assert left.alert_id == "al-1" and left.severity == "critical" and left.channels["grafana"] == "dead_letter"
