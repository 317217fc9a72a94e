"""The impact preview's replay (gate/replay.py): the gate's own `evaluate` over audited intents under two policies,
stateful controls rebuilt from nothing in arrival order, and what it cannot know counted, not hidden."""

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cio_kernel.policy.store import build_document
from gate.replay import TO_APPROVED, TO_REJECTED, AuditedIntent, replay
from tests.factories import NOW, audit_payload, make_spec

AT = datetime.fromtimestamp(NOW, UTC)


def audited(i: int, ts: float = NOW, **fields: Any) -> AuditedIntent:
    """An audit event as the gate writes it, read back as the control plane reads it."""
    return AuditedIntent.from_event(audit_payload(i, ts, **fields))


def documents(active: dict[str, Any], candidate: dict[str, Any]) -> tuple[Any, Any]:
    return build_document(make_spec(**active), 1, "tests", AT), build_document(make_spec(**candidate), 2, "tests", AT)


def test_a_tighter_max_notional_turns_approvals_into_rejections_with_its_reason():
    # 0.01 BTC at 50,000 is 500 USD; 0.1 is 5,000.
    records = [audited(i, NOW + i, quantity=0.01 if i % 2 else 0.1) for i in range(6)]
    impact = replay(records, *documents({"max_order_notional_usd": 10_000}, {"max_order_notional_usd": 1_000}))

    assert (impact.replayed, impact.approved_active, impact.approved_candidate) == (6, 6, 3)
    assert (impact.approved_to_rejected, impact.rejected_to_approved) == (3, 0)
    [cell] = impact.cells.values()
    assert (cell.direction, cell.strategy_key, cell.symbol, cell.reason_code, cell.count) == (
        TO_REJECTED,
        "momentum_1",
        "BTCUSDT",
        "ORDER_NOTIONAL_EXCEEDED",
        3,
    )
    assert [d for d, _ in cell.samples] == ["d-0000", "d-0002", "d-0004"]
    assert cell.samples[0][1] == f"{1:032x}"  # the trace id, for the trace link


def test_a_looser_policy_shows_the_reverse_under_the_active_policys_reason():
    records = [audited(i, NOW + i, confidence=0.5) for i in range(3)]
    impact = replay(records, *documents({"min_confidence": 0.6}, {}))
    assert (impact.approved_to_rejected, impact.rejected_to_approved) == (0, 3)
    assert [(c.direction, c.reason_code, c.count) for c in impact.cells.values()] == [
        (TO_APPROVED, "CONFIDENCE_TOO_LOW", 3)
    ]


def test_a_flood_limit_is_replayed_in_arrival_order_with_state_rebuilt_per_policy():
    """Five intents in one second, then one a second later: a limit of 2/s promotes the first two, refuses three,
    and the window has moved on for the sixth. The active policy (no limit) promoted all six: its own state."""
    times = [NOW, NOW + 0.1, NOW + 0.2, NOW + 0.3, NOW + 0.4, NOW + 1.5]
    records = [audited(i, ts, signal_id=f"s{i}") for i, ts in enumerate(times)]
    impact = replay(records, *documents({}, {"max_intents_per_second": 2}))

    assert (impact.approved_active, impact.approved_candidate) == (6, 3)
    [cell] = impact.cells.values()
    assert (cell.reason_code, cell.count) == ("RATE_LIMITED", 3)
    assert [d for d, _ in cell.samples] == ["d-0002", "d-0003", "d-0004"]


def test_a_candidate_dedupe_window_counts_only_its_own_promotions():
    # The same strategy, symbol and action every second: a 2 s window admits every other one.
    records = [audited(i, NOW + i) for i in range(4)]
    impact = replay(records, *documents({"dedupe_window_s": 0}, {"dedupe_window_s": 2}))
    assert impact.approved_candidate == 2
    assert [(c.reason_code, c.count) for c in impact.cells.values()] == [("DUPLICATE_WINDOW", 2)]


def test_what_cannot_be_replayed_is_counted_not_hidden():
    records = [
        audited(0, NOW, snapshot_ts=NOW - 1),  # judged against a snapshot: its contents are unknown
        audited(1, NOW + 1, decision="RETRY_SAFE", reasons=("POLICY_STALE",)),  # not decided
        audited(2, NOW + 2, snapshot_ts=NOW - 1, decision="REJECTED", reasons=("DRAWDOWN_REDUCING",)),  # latched
    ]
    exposure = {"max_symbol_exposure_usd": 100.0}  # 500 USD orders: over it, against the (flat) neutral book
    impact = replay(records, *documents({}, exposure))

    assert impact.replayed == 2 and impact.skipped == {"not_decided": 1}
    assert impact.approximated == {"portfolio": 2, "position": 2, "latch": 1}
    assert impact.approximated_intents == 2 and impact.approximated_changes == 2
    assert {c.reason_code for c in impact.cells.values()} == {"SYMBOL_EXPOSURE_EXCEEDED"}


def test_the_recorded_snapshot_age_is_replayed():
    """A snapshot 40 s old at decision time is stale under a 30 s limit, whatever the book held; a gate that held
    none (just started) refused for that, whatever another gate held before."""
    records = [audited(0, NOW, snapshot_ts=NOW - 40), audited(1, NOW + 1), audited(2, NOW + 2, snapshot_ts=NOW + 1)]
    impact = replay(records, *documents({}, {"max_total_exposure_usd": 1e9, "max_snapshot_age_s": 30}))
    assert sorted((c.reason_code, c.count) for c in impact.cells.values()) == [
        ("SNAPSHOT_MISSING", 1),
        ("SNAPSHOT_STALE", 1),
    ]
    assert impact.approved_candidate == 1


_intents = st.lists(
    st.fixed_dictionaries(
        {
            "dt": st.floats(min_value=0.0, max_value=3.0),
            "strategy_id": st.sampled_from(["momentum-1", "Mean Revert", "ta_bot"]),
            "symbol": st.sampled_from(["BTCUSDT", "ETHUSDT"]),
            "action": st.sampled_from(["buy", "sell", "close", "hold"]),
            "quantity": st.sampled_from([0.0, 0.001, 0.01, 0.5]),
            "confidence": st.floats(min_value=0.0, max_value=1.0),
            "signal_id": st.sampled_from(["a", "b", "c", "d"]),
            "snapshot": st.booleans(),
        }
    ),
    max_size=25,
)
_ACTIVE = {
    "min_confidence": 0.3,
    "max_order_notional_usd": 2_000,
    "engine_sized_notional_usd": 500,
    "max_intents_per_second": 3,
    "dedupe_window_s": 1,
    "max_symbol_exposure_usd": 3_000,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_intents)
def test_policies_that_decide_alike_give_an_empty_diff(drawn):
    """The candidate differs only by a symbol scope no intent trades (another checksum, the same decisions): two
    independent replays must agree on every intent, stateful controls included."""
    ts, records = NOW, []
    for i, d in enumerate(drawn):
        ts += d["dt"]
        snapshot = ts - 1 if d["snapshot"] else None
        fields = {k: v for k, v in d.items() if k not in ("dt", "snapshot")}
        records.append(audited(i, ts, snapshot_ts=snapshot, **fields))
    unused = {**_ACTIVE, "symbols": {"DOGEUSDT": {"max_order_quantity": 1}}}
    impact = replay(records, *documents(_ACTIVE, unused))
    assert impact.cells == {} and impact.approved_active == impact.approved_candidate
    assert impact.replayed == len(records)
