"""The Strategist in admin: risk officers edit the envelope (with a reason, kept), others only read it; cycles
and their thoughts are browsable and linked to the versions they proposed; "run a cycle now" queues one."""

import orjson
import pytest

from strategist import cycle as cycles
from strategist.models import CycleRequest, SettingsChange, StrategistSettings
from strategist.triggers import SCHEDULE, Trigger
from tests.strategist.helpers import regime

pytestmark = pytest.mark.django_db(transaction=True)
SETTINGS_URL = "/admin/strategist/strategistsettings/1/change/"


def form(**values):
    data = {
        "enabled": "on",
        "reason": "desk review",
        "forbidden_states": ["halted"],
        "auto_approve_min_fraction": "0.5",
        "auto_approve_max_min_confidence": "0.9",
        "auto_approve_states": ["reducing"],
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not None}


def test_an_officer_edits_the_envelope_and_the_change_is_kept(browser, users):
    officer = browser("officer1")
    response = officer.post(
        SETTINGS_URL, form(max_order_notional_usd="30000", min_confidence_floor="0.5", auto_approve_tightening="on")
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    row = StrategistSettings.current()
    envelope = row.envelope()
    assert envelope.max_order_notional_usd == 30_000 and envelope.min_confidence_floor == 0.5
    assert envelope.forbidden_states == {"halted"}
    assert row.auto_approve_authorised_by == users["officer1"]  # approvals under this officer's authority
    [change] = SettingsChange.objects.all()
    assert change.by == users["officer1"] and change.reason == "desk review"
    assert change.before["auto_approve_tightening"] is False and change.after["max_order_notional_usd"] == 30_000

    officer2 = browser("officer2")
    assert officer2.post(SETTINGS_URL, form(max_order_notional_usd="30000")).status_code == 302
    assert StrategistSettings.current().auto_approve_authorised_by is None  # switched off: the authority ends


def test_an_invalid_envelope_or_a_missing_reason_is_refused(browser):
    officer = browser("officer1")
    page = officer.post(SETTINGS_URL, form(min_confidence_floor="1.5"))
    assert page.status_code == 200 and "not a valid envelope" in page.content.decode()
    page = officer.post(SETTINGS_URL, form(reason=None))
    assert page.status_code == 200 and "This field is required" in page.content.decode()
    assert not SettingsChange.objects.exists()


@pytest.mark.parametrize("name", ["viewer", "agent"])
def test_only_risk_officers_change_the_settings(browser, name):
    client = browser(name)
    before = StrategistSettings.current().as_dict()
    response = client.post(SETTINGS_URL, form(max_order_notional_usd="1"))
    assert response.status_code == 403 or StrategistSettings.current().as_dict() == before
    assert StrategistSettings.current().as_dict() == before


def test_cycles_and_thoughts_are_browsable_from_the_proposal(browser, active_policy, redis_client):
    regime(redis_client, "BTCUSDT", 0.07)
    cycle = cycles.run_cycle(Trigger(SCHEDULE, {}), client=redis_client, use_env_llm=False)
    viewer = browser("viewer")
    listing = viewer.get("/admin/strategist/cycle/").content.decode()
    assert f"v{cycle.proposal.version} (proposed)" in listing and "rules-v1" in listing
    assert "Run a cycle now" not in listing  # viewers cannot start one
    detail = viewer.get(f"/admin/strategist/cycle/{cycle.pk}/change/").content.decode()
    assert "BTCUSDT volatility 7.0% is volatile" in detail and "only_tightens" in detail
    version_page = viewer.get(f"/admin/policies/policyversion/{cycle.proposal.pk}/change/").content.decode()
    assert f"/admin/strategist/cycle/{cycle.pk}/change/" in version_page and "rules brain" in version_page


def test_run_now_queues_a_manual_cycle(browser, strategist_stack, broker, redis_client):
    response = browser("officer1").post("/admin/strategist/cycle/run/")
    assert response.status_code == 302
    [queued] = redis_client.lrange("celery", 0, -1)
    message = orjson.loads(queued)
    assert message["headers"]["task"] == "strategist.run_cycle"
    assert "'trigger': 'manual'" in message["headers"]["kwargsrepr"]
    # Who asked is recorded here, from the officer's own session; the message names only the row.
    [asked] = CycleRequest.objects.all()
    assert asked.requested_by.username == "officer1" and asked.via == "admin" and asked.consumed_at is None
    assert f"'request': '{asked.id}'" in message["headers"]["kwargsrepr"]
    assert "officer1" not in queued.decode()
    browser("viewer").post("/admin/strategist/cycle/run/")
    assert redis_client.llen("celery") == 1  # a viewer's request queued nothing
    assert CycleRequest.objects.count() == 1
    requests_page = browser("viewer").get("/admin/strategist/cyclerequest/").content.decode()
    assert "officer1" in requests_page and "admin" in requests_page
    assert browser("viewer").get("/admin/strategist/anomaly/").status_code == 200
    assert browser("officer1").get("/admin/strategist/cyclerequest/add/").status_code == 403


def test_officers_edit_the_schedule_and_viewers_read_it(browser):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=900, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name="strategist: reasoning cycle", defaults={"task": "strategist.run_cycle", "interval": every}
    )
    url = f"/admin/django_celery_beat/periodictask/{task.pk}/change/"
    assert browser("viewer").get(url).status_code == 200
    page = browser("viewer").get(url).content.decode()
    assert 'name="_save"' not in page  # read-only for viewers
    assert 'name="_save"' in browser("officer1").get(url).content.decode()
    assert browser("agent").get(url).status_code in (302, 403)
