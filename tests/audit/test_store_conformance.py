"""One conformance suite for both audit-store backends: what goes in once comes out the same, every filter and
the cursor agree, and similarity search returns the same order."""

from datetime import timedelta

import pytest

from audit.embedding import cosine, embed, features
from audit.records import Incident, QuarantinedEvent, Thought
from audit.store.base import DecisionQuery, InvalidCursorError
from cio_kernel.contracts.identity import strategy_key
from tests.audit.records import T0, chain_of, signed, stored


def test_each_decision_is_stored_once_however_often_it_arrives(audit_store):
    records = chain_of(30)
    assert audit_store.insert_decisions(records[:20]) == 20
    assert audit_store.insert_decisions(records[10:]) == 10  # redelivered 10..19 plus 10 new
    assert audit_store.insert_decisions(records[25:] + records[25:]) == 0  # a batch that repeats itself
    assert audit_store.count_decisions() == 30
    assert audit_store.insert_decisions([]) == 0


def test_a_stored_record_reads_back_as_it_was_written(audit_store):
    records = chain_of(4)
    audit_store.insert_decisions(records)
    for original in records:
        stored = audit_store.get_decision(original.decision_id)
        assert stored is not None
        assert stored.at_millisecond_precision() == original.at_millisecond_precision()
        assert stored.payload == original.payload and stored.derived_fields_match()
    assert audit_store.get_decision("no-such-decision") is None
    # The live feed reads announced ids back in bulk: in the order asked, unknown ones left out, once each.
    asked = [records[2].decision_id, "no-such-decision", records[0].decision_id, records[2].decision_id]
    found = audit_store.get_decisions(asked)
    assert [r.decision_id for r in found] == [records[2].decision_id, records[0].decision_id]
    assert found[0].payload == records[2].payload and audit_store.get_decisions([]) == []


@pytest.mark.parametrize(
    ("filters", "predicate"),
    [
        # every spelling of the strategy: "TA Bot Mean Reversion" and "ta_bot_mean_reversion"
        ({"strategy_key": "ta_bot_mean_reversion"}, lambda r: strategy_key(r.strategy_id) == "ta_bot_mean_reversion"),
        ({"symbol": "ETHUSDT"}, lambda r: r.symbol == "ETHUSDT"),
        ({"decision": "REJECTED"}, lambda r: r.decision == "REJECTED"),
        ({"reason_code": "ORDER_NOTIONAL_EXCEEDED"}, lambda r: "ORDER_NOTIONAL_EXCEEDED" in r.reason_codes),
        ({"policy_version": 3}, lambda r: r.policy_version == 3),
        ({"gate_id": "gate-b"}, lambda r: r.gate_id == "gate-b"),
        ({"trace_id": f"{8:032x}"}, lambda r: r.trace_id == f"{8:032x}"),
        ({"signal_id": "sig-12"}, lambda r: r.signal_id == "sig-12"),
        ({"decision_id": "gate-a-00003"}, lambda r: r.decision_id == "gate-a-00003"),
        (
            {"since": T0 + timedelta(seconds=2), "until": T0 + timedelta(seconds=5)},
            lambda r: T0 + timedelta(seconds=2) <= r.ts < T0 + timedelta(seconds=5),
        ),
        (
            {"decision": "REJECTED", "symbol": "BTCUSDT", "reason_code": "CONFIDENCE_TOO_LOW"},
            lambda r: r.decision == "REJECTED" and r.symbol == "BTCUSDT" and "CONFIDENCE_TOO_LOW" in r.reason_codes,
        ),
    ],
)
def test_filters_and_the_cursor_walk_exactly_the_matching_records_newest_first(audit_store, filters, predicate):
    records = chain_of(30) + chain_of(10, gate_id="gate-b", start=30)
    audit_store.insert_decisions(records)
    expected = sorted((r for r in records if predicate(r)), key=lambda r: (r.ts, r.decision_id), reverse=True)
    assert expected, "the fixture must exercise the filter"
    seen, cursor = [], None
    for _ in range(len(records)):
        page = audit_store.find_decisions(DecisionQuery(**filters, cursor=cursor, limit=4))
        seen += [r.decision_id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [r.decision_id for r in expected]


def test_a_forged_cursor_is_refused(audit_store):
    with pytest.raises(InvalidCursorError):
        audit_store.find_decisions(DecisionQuery(cursor="not-a-cursor"))


def test_chains_come_back_in_sequence_order(audit_store):
    a, b = chain_of(12), chain_of(5, gate_id="gate-b", start=12)
    audit_store.insert_decisions(list(reversed(a)) + b)  # arrival order is not chain order
    assert audit_store.chains() == ["gate-a.1", "gate-b.1"]
    assert [r.seq for r in audit_store.chain_records("gate-a.1")] == list(range(1, 13))
    assert [r.decision_id for r in audit_store.chain_records("gate-b.1")] == [r.decision_id for r in b]
    assert audit_store.unchained_decisions() == []


def test_a_chain_reads_on_from_a_sequence_number(audit_store):
    audit_store.insert_decisions(chain_of(8))
    assert [r.seq for r in audit_store.chain_records("gate-a.1", after_seq=5)] == [6, 7, 8]


def test_checkpoints_are_kept_once_per_position_exactly_as_published(audit_store):
    a, b = chain_of(6), chain_of(3, gate_id="gate-b", start=6)
    first = [stored(signed(a[4])), stored(signed(a[1])), stored(signed(b[2]))]
    assert audit_store.insert_checkpoints(first) == 3
    later_signature = stored(signed(a[4], ts=T0 + timedelta(days=1)))  # the same position signed again
    assert audit_store.insert_checkpoints([later_signature, stored(signed(a[5]))]) == 1
    assert audit_store.insert_checkpoints([]) == 0
    kept = audit_store.checkpoints("gate-a.1")
    assert [c.seq for c in kept] == [2, 5, 6]
    assert kept[1].payload == first[0].payload  # the first one stored, byte for byte (its signature still holds)
    assert kept[1].checkpoint() == signed(a[4])
    assert audit_store.checkpoint_chains() == ["gate-a.1", "gate-b.1"]


def test_retention_removes_a_chains_start_up_to_a_checkpoint_and_nothing_else(audit_store):
    a, b = chain_of(10), chain_of(4, gate_id="gate-b", start=10)
    audit_store.insert_decisions(a + b)
    audit_store.insert_checkpoints([stored(signed(a[i])) for i in (1, 3, 7)] + [stored(signed(b[1]))])
    assert audit_store.prune_chain("gate-a.1", 4) == 4
    assert [r.seq for r in audit_store.chain_records("gate-a.1")] == list(range(5, 11))
    assert [c.seq for c in audit_store.checkpoints("gate-a.1")] == [4, 8]  # the one it ends at stays
    assert [r.seq for r in audit_store.chain_records("gate-b.1")] == [1, 2, 3, 4]
    assert [c.seq for c in audit_store.checkpoints("gate-b.1")] == [2]
    assert audit_store.count_decisions() == 10
    assert audit_store.get_decision(a[0].decision_id) is None
    rejected = DecisionQuery(reason_code="CONFIDENCE_TOO_LOW", limit=50)
    expected = [r.decision_id for r in a[4:] + b if "CONFIDENCE_TOO_LOW" in r.reason_codes]
    assert sorted(r.decision_id for r in audit_store.find_decisions(rejected).records) == sorted(expected)
    if audit_store.name == "django":  # the reason rows of removed decisions went with them
        from audit.models import DecisionReason

        assert not DecisionReason.objects.filter(decision_id__in=[r.decision_id for r in a[:4]]).exists()


def test_unreadable_events_are_kept_in_quarantine(audit_store):
    event = QuarantinedEvent(7, "cio.audit.decision.approved", b"\x00not json", {"Nats-Msg-Id": "x"}, "bad", T0)
    audit_store.quarantine([event])
    audit_store.quarantine([event])  # redelivered: still one
    [kept] = audit_store.quarantined()
    assert (kept.stream_seq, kept.payload, kept.headers, kept.problem) == (
        7,
        b"\x00not json",
        {"Nats-Msg-Id": "x"},
        "bad",
    )


def test_thoughts_are_stored_once(audit_store):
    thought = Thought("th-1", T0, "fake-llm-1", {"regime": "risk-off"}, {"max_order_notional_usd": 2e4}, "calmer", 4)
    assert audit_store.put_thought(thought)
    assert not audit_store.put_thought(thought)
    stored = audit_store.get_thought("th-1")
    assert stored is not None and stored.inputs_summary == {"regime": "risk-off"} and stored.proposed_version == 4
    assert audit_store.get_thought("th-2") is None


def test_a_strategist_thought_keeps_every_field(audit_store):
    thought = Thought(
        "th-9",
        T0,
        "gpt-test",
        {"trigger": "regime_shift", "regime": {"BTCUSDT": {"volatility": 0.07}}},
        {"changes": [{"scope": "global", "field": "min_confidence", "value": 0.6}], "raw": "{}", "attempts": 2},
        "tighter",
        7,
        trigger="regime_shift",
        brain="llm",
        trace_id="ab" * 16,
        prompt_hash="cd" * 32,
        prompt_tokens=1234,
        completion_tokens=56,
        validation={"schema": "ok", "only_tightens": True, "envelope": "inside", "outcome": "proposed"},
        fallback_reason=None,
        duration_ms=812,
    )
    assert audit_store.put_thought(thought)
    stored = audit_store.get_thought("th-9")
    assert stored is not None
    assert (stored.trigger, stored.brain, stored.trace_id, stored.prompt_hash) == (
        "regime_shift",
        "llm",
        "ab" * 16,
        "cd" * 32,
    )
    assert (stored.prompt_tokens, stored.completion_tokens, stored.duration_ms) == (1234, 56, 812)
    assert stored.validation == thought.validation and stored.output == thought.output
    assert stored.ts.replace(tzinfo=None) == T0.replace(tzinfo=None)


def test_decision_statistics_count_by_decision_reason_strategy_and_symbol(audit_store):
    records = chain_of(40)
    audit_store.insert_decisions(records)
    since = records[8].ts
    recent = [r for r in records if r.ts >= since]
    stats = audit_store.decision_stats(since, top=10)
    assert stats.total == len(recent) == 32
    expected_decisions: dict[str, int] = {}
    for r in recent:
        expected_decisions[r.decision] = expected_decisions.get(r.decision, 0) + 1
    assert stats.by_decision == expected_decisions
    expected_reasons: dict[str, int] = {}
    for r in recent:
        for code in r.reason_codes:
            expected_reasons[code] = expected_reasons.get(code, 0) + 1
    assert stats.by_reason == dict(sorted(expected_reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    for name, counts in stats.by_strategy.items():
        assert counts == {
            d: sum(1 for r in recent if strategy_key(r.strategy_id) == name and r.decision == d)
            for d in {r.decision for r in recent if strategy_key(r.strategy_id) == name}
        }
    assert sum(sum(c.values()) for c in stats.by_symbol.values()) == 32
    busiest = sorted(stats.by_strategy, key=lambda n: (-sum(stats.by_strategy[n].values()), n))[0]
    assert list(audit_store.decision_stats(since, top=1).by_strategy) == [busiest]
    assert audit_store.decision_stats(records[-1].ts + timedelta(seconds=1)).total == 0


def _incidents() -> list[Incident]:
    rows = [
        (
            "rejection_burst",
            "40 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            40,
        ),
        (
            "rejection_burst",
            "55 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            55,
        ),
        ("rejection_burst", "12 rejections for llm-swing", "llm-swing", "ETHUSDT", ["ORDER_NOTIONAL_EXCEEDED"], 12),
        ("kill_switch", "global halted: drill", None, None, [], 1),
        ("limit_breach", "drawdown latched", None, None, ["DRAWDOWN_REDUCING"], 1),
        ("rollback", "rolled back to v3", None, None, [], 1),
    ]
    out = []
    for n, (kind, title, strategy, symbol, codes, count) in enumerate(rows):
        vector = embed(features(kind, title, strategy, symbol, codes, {"count": count}))
        out.append(
            Incident(
                f"inc-{n}", T0 + timedelta(minutes=n), kind, title, {"count": count}, strategy, symbol, None, vector
            )
        )
    return out


def test_similar_incidents_are_the_nearest_by_cosine(audit_store):
    incidents = _incidents()
    for incident in incidents:
        assert audit_store.insert_incident(incident)
    assert not audit_store.insert_incident(incidents[0])
    query = embed(
        features(
            "rejection_burst",
            "48 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            {"count": 48},
        )
    )
    found = audit_store.similar_incidents(query, limit=3)
    brute = sorted(incidents, key=lambda i: (-cosine(query, i.embedding), i.incident_id))[:3]
    assert [i.incident_id for i, _ in found] == [i.incident_id for i in brute]
    assert found[0][0].incident_id in ("inc-0", "inc-1") and found[0][1] > 0.9
    assert [round(s, 9) for _, s in found] == [round(cosine(query, i.embedding), 9) for i in brute]
    only_kills = audit_store.similar_incidents(query, limit=3, kind="kill_switch")
    assert [i.incident_id for i, _ in only_kills] == ["inc-3"]
    assert [i.incident_id for i in audit_store.recent_incidents(2)] == ["inc-5", "inc-4"]


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


def test_tool_calls_are_kept_once_newest_first(audit_store):
    from audit.records import ToolCall

    calls = [
        ToolCall(
            f"c-{i}",
            T0 + timedelta(seconds=i),
            user,
            "propose_policy_change",
            {"rationale": "x", "n": i},
            outcome,
            code,
            message,
            f"{i:032x}",
            12,
        )
        for i, (user, outcome, code, message) in enumerate(
            [
                ("agent", "ok", None, "v4 proposed"),
                ("agent", "error", "PERMISSION_DENIED", "agent may not activate"),
                ("officer2", "ok", None, "v4 activated"),
            ]
        )
    ]
    assert all(audit_store.insert_tool_call(c) for c in calls)
    assert not audit_store.insert_tool_call(calls[0])
    assert [c.call_id for c in audit_store.recent_tool_calls()] == ["c-2", "c-1", "c-0"]
    [denied, first] = audit_store.recent_tool_calls(user="agent")
    assert (denied.outcome, denied.error_code, denied.arguments) == (
        "error",
        "PERMISSION_DENIED",
        {"rationale": "x", "n": 1},
    )
    assert first.message == "v4 proposed" and first.duration_ms == 12
