"""Reading the trail: the REST list with filters and cursors, one decision and its trace from decision to policy
version, approvals and thought, the admin pages, and incidents with similarity search; on both backends."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.test import Client

from audit.records import DecisionRecord, Thought
from cio_kernel.audit_chain import GENESIS, ChainLink
from policies import services
from tests.audit.records import chain_of, event
from tests.factories import make_spec


def _walk(client, url: str) -> list[dict]:
    seen, cursor = [], None
    while True:
        response = client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.content
        body = response.json()["data"]
        seen += body["decisions"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_the_list_filters_and_pages_to_exactly_the_matching_decisions(configured_store, api):
    records = chain_of(40)
    configured_store.insert_decisions(records)
    # Any spelling of the strategy finds every decision of it, whichever spelling each intent used.
    seen = _walk(api["viewer"], "/api/audit?decision=rejected&strategy_id=MOMENTUM-Pulse&limit=3")
    expected = sorted(
        (r for r in records if r.decision == "REJECTED" and r.strategy_key == "momentum_pulse"),
        key=lambda r: (r.ts, r.decision_id),
        reverse=True,
    )
    assert [d["decision_id"] for d in seen] == [r.decision_id for r in expected] and len(expected) > 3
    assert {d["strategy_id"] for d in seen} == {"momentum_pulse", "Momentum Pulse"}
    refused = api["viewer"].get("/api/audit?strategy_id=m%D0%BEmentum_pulse")  # a look-alike is no strategy id
    assert refused.status_code == 400 and "strategy_id" in refused.json()["error"]["message"]
    by_reason = _walk(api["viewer"], "/api/audit?reason_code=ORDER_NOTIONAL_EXCEEDED&limit=500")
    assert {d["decision_id"] for d in by_reason} == {
        r.decision_id for r in records if "ORDER_NOTIONAL_EXCEEDED" in r.reason_codes
    }
    window = _walk(api["viewer"], "/api/audit?since=2026-11-02T09:30:02Z&until=2026-11-02T09:30:04Z&limit=500")
    assert {d["decision_id"] for d in window} == {
        r.decision_id
        for r in records
        if datetime(2026, 11, 2, 9, 30, 2, tzinfo=UTC) <= r.ts < datetime(2026, 11, 2, 9, 30, 4, tzinfo=UTC)
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("decision=MAYBE", "decision"),
        ("since=yesterday", "since"),
        ("since=2026-11-02T09:30:00", "since"),
        ("policy_version=v2", "policy_version"),
        ("limit=0", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
def test_a_filter_that_cannot_be_applied_is_a_clear_400(configured_store, api, query, field):
    response = api["viewer"].get(f"/api/audit?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] and field in str(body["error"]) + str(body.get("data"))


def test_reading_the_trail_needs_the_viewer_permission(configured_store, api):
    assert api["anonymous"].get("/api/audit").status_code in (401, 403)
    assert api["nobody"].get("/api/audit").status_code == 403
    assert api["agent"].get("/api/audit").status_code == 200


def _decided_under(version, thought_id: str | None = None) -> DecisionRecord:
    e = event(1, policy_version=version.version, policy_checksum=version.checksum)
    payload = e.model_dump_json().encode()
    subject = "cio.audit.decision.rejected"
    return DecisionRecord.of(e, subject, payload, ChainLink.first_after("gate-a.9", 0, GENESIS, subject, payload))


def test_a_trace_leads_from_the_decision_to_the_policy_its_approvals_and_its_thought(
    configured_store, api, stack, users
):
    thought = Thought(
        "th-42",
        datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "fake-llm-1",
        {"regime": "high volatility"},
        {"min_confidence": 0.6},
        "volatility doubled overnight: ask for more confidence",
        2,
    )
    assert configured_store.put_thought(thought)
    proposed = services.propose(
        spec=make_spec(min_confidence=0.6).model_dump(mode="json", by_alias=True),
        by=users["agent"],
        rationale="raise the confidence floor",
        thought_id="th-42",
    )
    services.approve(proposed, by=users["officer1"], reason="agreed: volatile")
    version = services.activate(proposed, by=users["officer2"])
    record = _decided_under(version)
    configured_store.insert_decisions([record])

    body = api["viewer"].get(f"/api/trace/{record.trace_id}").json()["data"]
    [decision] = body["decisions"]
    policy = decision["policy"]
    assert decision["decision_id"] == record.decision_id and decision["event"]["reasons"][0]["limit"] == 0.5
    assert (policy["version"], policy["checksum_matches_decision"]) == (version.version, True)
    assert (policy["proposer_kind"], policy["approved_by"], policy["activated_by"]) == ("agent", "officer1", "officer2")
    assert policy["thought"]["rationale"] == thought.rationale and policy["thought"]["model"] == "fake-llm-1"
    assert [e["kind"] for e in policy["events"]] == ["proposed", "approved", "activated"]
    assert api["viewer"].get(f"/api/audit/{record.decision_id}").json()["data"]["policy"]["thought_id"] == "th-42"
    assert api["viewer"].get("/api/trace/" + "f" * 32).status_code == 404
    assert api["viewer"].get("/api/audit/nope").status_code == 404

    admin = Client()
    admin.force_login(users["viewer"])
    page = admin.get(f"/admin/audit/decision/{record.decision_id}/").content.decode()
    assert thought.rationale in page and f"/admin/policies/policyversion/{version.pk}/change/" in page
    assert "CONFIDENCE_TOO_LOW" in page and record.trace_id in page


def test_a_version_proposed_by_a_person_shows_that_no_thought_stands_behind_it(configured_store, users, active_v1):
    record = _decided_under(active_v1)
    configured_store.insert_decisions([record])
    admin = Client()
    admin.force_login(users["viewer"])
    page = admin.get(f"/admin/audit/decision/{record.decision_id}/").content.decode()
    assert "No Strategist thought: this version was proposed by a person." in page
    assert "initial policy" in page  # the rationale the officer gave


def test_the_admin_list_filters_searches_and_pages(configured_store, users):
    records = chain_of(60)
    configured_store.insert_decisions(records)
    admin = Client()
    admin.force_login(users["viewer"])
    first = admin.get("/admin/audit/decision/?decision=APPROVED&limit=10")
    assert first.status_code == 200
    approved = sorted((r for r in records if r.decision == "APPROVED"), key=lambda r: r.ts, reverse=True)
    assert [r.decision_id for r in first.context["records"]] == [r.decision_id for r in approved[:10]]
    second = admin.get("/admin/audit/decision/?" + first.context["next_query"])
    assert [r.decision_id for r in second.context["records"]] == [r.decision_id for r in approved[10:15]]
    found = admin.get(f"/admin/audit/decision/?q={records[7].trace_id}")
    assert [r.decision_id for r in found.context["records"]] == [records[7].decision_id]
    by_signal = admin.get("/admin/audit/decision/?q=sig-8")
    assert [r.decision_id for r in by_signal.context["records"]] == [records[8].decision_id]
    assert "must be one of" in admin.get("/admin/audit/decision/?decision=MAYBE").content.decode()
    live = admin.get("/admin/audit/decision/live/").content.decode()
    assert "/ws/audit/decisions/" in live and "The live feed is down" in live
    outsider = Client()
    outsider.force_login(users["nobody"])
    assert outsider.get("/admin/audit/decision/").status_code in (302, 403, 404)


def test_kill_switch_and_rollback_become_incidents_found_again_by_similarity(configured_store, api, stack, users):
    from audit.incidents import RejectionBurstDetector

    v1 = services.propose(spec=make_spec().model_dump(mode="json", by_alias=True), by=users["officer1"])
    services.approve(v1, by=users["officer2"])
    v1 = services.activate(v1, by=users["officer2"])
    services.set_trading_state(
        scope="strategy", key="momentum_pulse", state="halted", by=users["officer1"], reason="runaway losses"
    )
    services.set_trading_state(
        scope="strategy", key="momentum_pulse", state="active", by=users["officer1"], reason="fixed"
    )
    services.rollback(v1, by=users["officer2"], reason="back to the reviewed v1")
    bursts = RejectionBurstDetector(threshold=5, window_s=60)
    rejected = [
        replace(r, strategy_id="Momentum Pulse", strategy_key="momentum_pulse")
        for r in chain_of(40)
        if r.decision == "REJECTED"
    ]
    found = bursts.observe(rejected) + bursts.observe(rejected)  # seen twice (a redelivery): one incident
    assert len(found) == 1
    for incident in found:
        configured_store.insert_incident(incident)
    kinds = sorted(i.kind for i in configured_store.recent_incidents())
    assert (kinds.count("trading_state"), kinds.count("rejection_burst"), kinds.count("rollback")) == (2, 1, 1)
    halt = next(i for i in configured_store.recent_incidents() if "halted" in i.title)
    body = api["viewer"].get(f"/api/incidents?similar_to={halt.incident_id}&limit=5").json()["data"]
    ranked = [i["incident_id"] for i in body["incidents"]]
    assert halt.incident_id not in ranked and len(ranked) == len(kinds) - 1
    assert body["incidents"][0]["kind"] == "trading_state"  # the other momentum_pulse state change is nearest
    scores = [i["similarity"] for i in body["incidents"]]
    assert scores == sorted(scores, reverse=True)
    text = api["viewer"].get("/api/incidents?text=rejection burst momentum_pulse CONFIDENCE_TOO_LOW").json()["data"]
    assert text["incidents"]
    assert api["viewer"].get("/api/incidents?similar_to=nope").status_code == 404
    admin = Client()
    admin.force_login(users["viewer"])
    assert "runaway losses" in admin.get("/admin/audit/incident/").content.decode()
