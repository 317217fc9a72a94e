"""Django admin for risk officers: propose, review the diff, approve/activate with confirmation, kill switch."""

import json
import re

import orjson

from policies.models import PolicyVersion, Status
from tests.control_plane.helpers import redis_policy
from tests.factories import signed_heartbeat

CHANGELIST = "/admin/policies/policyversion/"


def test_changelist_shows_active_version_and_live_gates(browser, active_v1, redis_client):
    redis_client.set("gate:heartbeat:gate-7", signed_heartbeat("gate-7", counters={"received": 42}), ex=10)
    page = browser("viewer").get(CHANGELIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Active:" in html and "v1</a>" in html
    assert "gate-7" in html and "42 /" in html
    assert "did not verify" not in html


def test_changelist_shows_an_unsigned_heartbeat_as_unverified_not_live(browser, active_v1, redis_client):
    beat = {"gate_id": "ghost", "ts": "2026-11-24T10:00:00Z", "policy_version": 1, "trading_state": "active"}
    redis_client.set("gate:heartbeat:ghost", orjson.dumps({**beat, "uptime_s": 3.0, "counters": {}}))
    html = browser("viewer").get(CHANGELIST).content.decode()
    assert "No gate has sent a heartbeat" in html  # not counted as a live gate
    assert "1 heartbeat(s) in Redis did not verify" in html and "ghost" in html and "without expiry" in html


def test_changelist_warns_when_no_gate_is_alive(browser, active_v1):
    html = browser("viewer").get(CHANGELIST).content.decode()
    assert "No gate has sent a heartbeat" in html


def test_propose_in_admin_then_second_officer_approves_and_activates(browser, active_v1, redis_client):
    officer1 = browser("officer1")
    form = officer1.get(f"{CHANGELIST}add/?view=json")
    prefilled = json.loads(form.context["form"].initial["spec"])
    assert prefilled["global"]["min_confidence"] == 0.5  # starts from the active policy
    prefilled["global"]["min_confidence"] = 0.65
    response = officer1.post(
        f"{CHANGELIST}add/", {"view": "json", "spec": json.dumps(prefilled), "rationale": "tighten"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    proposed = PolicyVersion.objects.get(version=2)
    assert proposed.status == Status.PROPOSED and proposed.proposed_by.username == "officer1"

    detail = browser("officer2").get(f"{CHANGELIST}{proposed.pk}/change/").content.decode()
    assert "global.min_confidence: 0.5 → 0.65 (tightens)" in detail and "from active v1: <b>1 tightens</b>" in detail

    # Approve: the first POST shows the confirmation page with the diff, the second confirms.
    officer1_try = officer1.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [proposed.pk], "confirm": "yes"}, follow=True
    )
    assert "FOUR_EYES_VIOLATION" in officer1_try.content.decode()
    officer2 = browser("officer2")
    confirm = officer2.post(CHANGELIST, {"action": "approve_selected", "_selected_action": [proposed.pk]})
    assert confirm.status_code == 200 and "global.min_confidence: 0.5 → 0.65 (tightens)" in confirm.content.decode()
    assert '<b class="risk-summary">1 tightens</b>' in confirm.content.decode()
    proposed.refresh_from_db()
    assert proposed.status == Status.PROPOSED  # nothing happens before confirmation
    officer2.post(CHANGELIST, {"action": "approve_selected", "_selected_action": [proposed.pk], "confirm": "yes"})
    officer2.post(CHANGELIST, {"action": "activate_selected", "_selected_action": [proposed.pk], "confirm": "yes"})
    proposed.refresh_from_db()
    assert proposed.status == Status.ACTIVE and proposed.activated_by.username == "officer2"
    assert redis_policy(redis_client).version == 2


def test_invalid_spec_in_admin_shows_the_problems(browser, active_v1):
    response = browser("officer1").post(
        f"{CHANGELIST}add/", {"view": "json", "spec": '{"global": {"min_confidence": 7}}', "rationale": "oops"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "spec": ["global.min_confidence: Input should be less than or equal to 1"]
    }
    assert PolicyVersion.objects.count() == 1


def test_reject_needs_a_reason(browser, active_v1, users):
    from policies import services
    from tests.factories import make_spec

    proposed = services.propose(spec=make_spec().model_dump(mode="json", by_alias=True), by=users["officer1"])
    officer2 = browser("officer2")
    officer2.post(
        CHANGELIST, {"action": "reject_selected", "_selected_action": [proposed.pk], "confirm": "yes", "reason": ""}
    )
    proposed.refresh_from_db()
    assert proposed.status == Status.PROPOSED
    officer2.post(
        CHANGELIST,
        {"action": "reject_selected", "_selected_action": [proposed.pk], "confirm": "yes", "reason": "too loose"},
    )
    proposed.refresh_from_db()
    assert proposed.status == Status.REJECTED


def test_kill_switch_page(browser, active_v1, redis_client):
    url = "/admin/policies/policyversion/trading-state/"
    officer = browser("officer1")
    assert "Trading state (kill switch)" in officer.get(url).content.decode()
    response = officer.post(url, {"scope": "global", "state": "halted", "reason": "exchange outage"})
    assert response.status_code == 302
    assert redis_policy(redis_client).spec.global_rules.trading_state == "halted"
    viewer_try = browser("viewer").post(url, {"scope": "global", "state": "active", "reason": "x"}, follow=True)
    assert "PERMISSION_DENIED" in viewer_try.content.decode()
    assert redis_policy(redis_client).spec.global_rules.trading_state == "halted"


def test_rollback_is_one_action(browser, active_v1, users, redis_client):
    from policies import services

    officer = browser("officer1")
    services.set_trading_state(scope="symbol", key="BTCUSDT", state="halted", by=users["officer1"], reason="test")
    officer.post(
        CHANGELIST,
        {"action": "rollback_to_selected", "_selected_action": [active_v1.pk], "confirm": "yes", "reason": "undo"},
    )
    restored = PolicyVersion.objects.get(status=Status.ACTIVE)
    assert restored.version == 3 and restored.checksum == active_v1.checksum
    assert redis_policy(redis_client).version == 3


def test_versions_cannot_be_edited_or_deleted(browser, active_v1):
    officer = browser("officer1")
    response = officer.post(f"{CHANGELIST}{active_v1.pk}/change/", {"spec": "{}", "rationale": "sneaky"})
    assert response.status_code == 403
    assert officer.post(f"{CHANGELIST}{active_v1.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PolicyVersion.objects.get().rationale == "initial policy"


def test_a_nul_character_in_an_admin_address_is_refused_with_a_message_never_a_500(browser, active_v1):
    """PostgreSQL refuses text holding NUL: the search boxes (`?q=`), filters and record addresses answered 500
    there. Every admin page is reached through the admin site, which refuses such an address with one message."""
    from django.contrib import admin
    from django.urls import reverse

    officer = browser("officer1")
    changelists = [  # every search box
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model, model_admin in admin.site._registry.items()
        if model_admin.search_fields
    ]
    addresses = [f"{url}?q=a%00b" for url in changelists] + [
        "/admin/audit/decision/?symbol=A%00B",
        "/admin/audit/decision/a%00b/",
        "/admin/audit/incident/?similar_to=a%00b",
        "/admin/audit/incident/?text=a%00b",
        "/admin/alerting/alert/?severity=a%00b",
        "/admin/alerting/alert/a%00b/",
        "/admin/audit/decision/?q=a%00b",
        f"{CHANGELIST}?status=a%00b",
        f"{CHANGELIST}?unknown%00=1",
    ]
    for address in addresses:
        page = officer.get(address)
        assert page.status_code == 400, address
        assert "Null characters are not allowed" in page.content.decode(), address
    # A form a view reads itself (an alert's acknowledgement note), and the page still works without the NUL.
    assert officer.post("/admin/alerting/alert/a1/", {"note": "seen\x00"}).status_code == 400
    assert officer.get(f"{CHANGELIST}?q=tighten").status_code == 200


def test_the_list_shows_each_rationale_in_full(browser, active_v1, users):
    from policies import services

    long = "Volatility on BTCUSDT doubled overnight.\n" + " ".join(f"reason-{i}" for i in range(120)) + " END"
    services.propose(spec=active_v1.spec | {"global": {"min_confidence": 0.6}}, by=users["officer1"], rationale=long)
    html = browser("viewer").get(CHANGELIST).content.decode()
    assert long in html and "reason-119 END" in html  # not cut
    assert "white-space: pre-line" in html  # its own line breaks kept, long lines wrapped


def test_the_floor_plan_puts_the_risk_sections_before_the_plumbing(browser, users):
    """Django's alphabetical order put the scheduler's "Periodic tasks" above "Risk policies" on the index and in
    the sidebar; an officer now meets the risk sections first and the plumbing last."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="officer1")
    user.is_superuser = True  # sees every app, the scheduler's tables and accounts included
    user.save()

    def sections(url: str) -> list[str]:
        page = browser("officer1").get(url).content.decode()
        return re.findall(r'<a href="/admin/(\w+)/" class="section"', page)

    expected = ["policies", "audit", "strategist", "tradeconfig", "authtoken", "auth", "django_celery_beat"]
    index = sections("/admin/")
    assert [label for label in index if label in expected] == [label for label in expected if label in index]
    assert index[0] == "policies" and index[-1] == "django_celery_beat", index
    assert sections("/admin/audit/alert/") == index  # the sidebar on every admin page: the same plan


def test_each_audit_page_says_its_title_once(browser, users):
    """The admin's base template already heads a page with its title; the audit, alert and incident pages added a
    second `<h1>` of their own (seen on a decision's page)."""
    officer = browser("officer1")
    for url in ("/admin/audit/alert/", "/admin/audit/decision/", "/admin/audit/incident/"):
        page = officer.get(url)
        assert page.status_code == 200, url
        assert page.content.decode().count("<h1>") == 1, url
