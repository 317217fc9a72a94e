"""The impact preview through its service (policies/impact.py) on each audit store backend: the window's decisions
streamed from the store in the order they were decided (shadow gates' left out), replayed under a candidate version
and the active one, and the result kept on the preview."""

import time

from audit.records import DecisionRecord
from cio_kernel.shadow import SHADOW_AUDIT_PREFIX
from policies import impact
from policies.models import ImpactPreview, Status
from tests.factories import audit_record, policy_row


def test_a_preview_replays_the_stores_window_in_order_and_keeps_the_difference(configured_store, users):
    now = time.time()
    # Stored out of order: the store streams them by time. 0.01 BTC (500 USD) and 0.1 BTC (5,000 USD).
    records = [audit_record(i, now - 60 + i, quantity=0.1 if i % 2 else 0.01) for i in reversed(range(6))]
    old = audit_record(6, now - 2 * 86_400)
    shadow = audit_record(7, now - 30, audit_subject=f"{SHADOW_AUDIT_PREFIX}approved")
    configured_store.insert_decisions([*records, old, shadow])
    streamed = [p for p in configured_store.decision_payloads(records[-1].ts, None)]
    assert [DecisionRecord.from_message("s", p, None).decision_id for p in streamed] == [f"d-{i:04d}" for i in range(6)]

    policy_row(1, Status.ACTIVE, max_order_notional_usd=10_000, max_intent_age_s=30)
    candidate = policy_row(2, Status.PROPOSED, max_order_notional_usd=1_000, max_intent_age_s=30)
    preview = impact.start(by=users["officer1"], candidate=candidate)  # 24 h: a handful of decisions, replayed inline

    assert preview.state == ImpactPreview.State.DONE and preview.progress == 100
    result = preview.result
    assert (result["replayed"], result["approved_active"], result["approved_candidate"]) == (6, 6, 3)
    [cell] = result["cells"]
    assert (cell["direction"], cell["strategy_key"], cell["reason_code"], cell["count"]) == (
        "approved_to_rejected",
        "momentum_1",
        "ORDER_NOTIONAL_EXCEEDED",
        3,
    )
    assert [s["decision_id"] for s in cell["samples"]] == ["d-0001", "d-0003", "d-0005"]
    assert cell["samples"][0]["url"] == "/admin/audit/decision/d-0001/"
    assert impact.latest_for(candidate) == preview
