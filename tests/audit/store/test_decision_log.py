"""The decision log on every backend: what goes in once comes out the same, every filter and the cursor agree,
statistics count what was decided, chains read back in sequence order, and what cannot be read is quarantined."""

from datetime import timedelta

import pytest

from audit.records import QuarantinedEvent
from audit.store.decisions import DecisionLog, DecisionQuery, InvalidCursorError
from cio_kernel.contracts.identity import strategy_key
from tests.audit.records import T0, chain_of


def test_every_backend_keeps_the_decision_log(audit_store):
    assert isinstance(audit_store, DecisionLog)


def test_each_decision_is_stored_once_however_often_it_arrives(audit_store):
    records = chain_of(30)
    assert audit_store.insert_decisions(records[:20]) == 20
    assert audit_store.insert_decisions(records[10:]) == 10  # redelivered 10..19 plus 10 new
    assert audit_store.insert_decisions(records[25:] + records[25:]) == 0  # a batch that repeats itself
    assert audit_store.count_decisions() == 30
    assert {r.decision_id for r in audit_store.get_decisions([r.decision_id for r in records])} == {
        r.decision_id for r in records
    }
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
        ({"shadow": True}, lambda r: r.gate_id == "gate-s"),
        ({"shadow": False}, lambda r: r.gate_id != "gate-s"),
        # A reason with the serving/shadow filter: not the reasons index alone, which would cut pages short.
        (
            {"shadow": False, "reason_code": "CONFIDENCE_TOO_LOW"},
            lambda r: r.gate_id != "gate-s" and "CONFIDENCE_TOO_LOW" in r.reason_codes,
        ),
    ],
)
def test_filters_and_the_cursor_walk_exactly_the_matching_records_newest_first(audit_store, filters, predicate):
    shadowed = chain_of(8, gate_id="gate-s", start=12, shadow=True)  # a shadow gate's, among the serving ones
    records = chain_of(30) + chain_of(10, gate_id="gate-b", start=30) + shadowed
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


def test_decision_statistics_count_by_decision_reason_strategy_and_symbol(audit_store):
    records = chain_of(40)
    # A shadow gate's decisions in the same window are not the fleet's: no count below includes them.
    shadowed = chain_of(12, gate_id="gate-s", start=20, shadow=True)
    assert all(r.shadow for r in shadowed) and not any(r.shadow for r in records)
    audit_store.insert_decisions(records + shadowed)
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
