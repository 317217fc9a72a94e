"""The impact preview over REST (docs/impact-preview.md): who may start one, the window's validation, the result
in the envelope, and polling it."""

import time

from audit.store import decision_log
from policies.models import Status
from tests.control_plane.helpers import body
from tests.factories import audit_record, policy_row


def test_an_impact_preview_over_rest(api, users):
    assert api["officer1"].post("/api/policy/version/2/impact", {}, format="json").status_code == 404
    policy_row(1, Status.ACTIVE, min_confidence=0.5)
    candidate = policy_row(2, Status.PROPOSED, min_confidence=0.9)
    decision_log().insert_decisions([audit_record(0, time.time() - 10, confidence=0.8)])
    url = f"/api/policy/version/{candidate.version}/impact"

    none_yet = api["viewer"].get(url)
    assert none_yet.status_code == 404 and body(none_yet)["error"]["code"] == "NOT_FOUND"
    denied = api["viewer"].post(url, {}, format="json")
    assert denied.status_code == 403 and body(denied)["error"]["code"] == "PERMISSION_DENIED"
    both = api["agent"].post(url, {"window_hours": 1, "since": "2026-01-01T00:00:00Z"}, format="json")
    assert both.status_code == 400 and body(both)["error"]["code"] == "VAL_ERR"
    zero = api["agent"].post(url, {"window_hours": 0}, format="json")
    assert zero.status_code == 400 and "window_hours" in body(zero)["data"]["field_errors"]

    started = api["agent"].post(url, {"window_hours": 1}, format="json")
    assert started.status_code == 201, started.content
    preview = body(started)["data"]
    assert (preview["state"], preview["candidate_version"], preview["active_version"]) == ("done", 2, 1)
    result = preview["result"]
    assert (result["replayed"], result["approved_to_rejected"]) == (1, 1)
    assert [(c["reason_code"], c["samples"][0]["decision_id"]) for c in result["cells"]] == [
        ("CONFIDENCE_TOO_LOW", "d-0000")
    ]
    polled = body(api["viewer"].get(url))["data"]
    assert polled["id"] == preview["id"] and polled["result"] == result


def test_the_version_page_starts_a_preview_and_shows_the_difference(browser, users):
    policy_row(1, Status.ACTIVE, max_order_notional_usd=10_000)
    candidate = policy_row(2, Status.PROPOSED, max_order_notional_usd=100)
    decision_log().insert_decisions([audit_record(0, time.time() - 10)])  # 500 USD
    officer = browser("officer1")
    page = f"/admin/policies/policyversion/{candidate.pk}/change/"
    before = officer.get(page).content.decode()
    assert 'id="impact-start"' in before and "Approvals that become rejections" not in before

    started = officer.post(f"/admin/policies/policyversion/{candidate.version}/impact/", {"window_hours": "2"})
    assert started.status_code == 200 and started.json()["state"] == "done"
    assert browser("viewer").post(f"/admin/policies/policyversion/{candidate.version}/impact/").status_code == 403
    after = officer.get(page).content.decode()
    assert "Approvals that become rejections" in after and "ORDER_NOTIONAL_EXCEEDED" in after
    assert 'href="/admin/audit/decision/d-0000/"' in after


def test_a_large_window_is_queued_for_the_worker_which_keeps_progress_and_result(api, users, broker, settings):
    """Over `CIO_IMPACT_INLINE_MAX` decisions the request only queues the task (on the real broker); the task, run
    as the worker runs it from the queued message, replays the window and leaves the result for polling."""
    import base64

    import orjson
    import redis

    from policies.tasks import IMPACT_PREVIEW, impact_preview

    settings.CIO_IMPACT_INLINE_MAX = 1
    policy_row(1, Status.ACTIVE)
    candidate = policy_row(2, Status.PROPOSED, min_confidence=0.9)
    now = time.time()
    decision_log().insert_decisions([audit_record(i, now - 20 + i) for i in (0, 1)])
    url = f"/api/policy/version/{candidate.version}/impact"
    queued = api["officer1"].post(url, {}, format="json")
    assert queued.status_code == 202 and body(queued)["data"]["state"] == "queued"

    client = redis.Redis.from_url(broker)
    [message] = [orjson.loads(raw) for raw in client.lrange("celery", 0, -1)]
    client.close()
    assert message["headers"]["task"] == IMPACT_PREVIEW
    args, _, _ = orjson.loads(base64.b64decode(message["body"]))
    assert impact_preview(*args) == "done"

    polled = body(api["viewer"].get(url))["data"]
    assert (polled["state"], polled["progress"], polled["result"]["approved_to_rejected"]) == ("done", 100, 2)
