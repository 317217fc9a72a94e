"""Latches against an independent oracle: over any sequence of snapshots and human releases, an opening
intent is refused exactly while a latch holds, and no snapshot on its own ever lifts one."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cio_kernel.contracts.latch import latch_id
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import evaluate
from gate.decision.latches import trading_day, trip_latches
from gate.decision.state import GateState
from tests.factories import NOW, TEST_SIGNER, compile_spec, make_intent, make_snapshot, make_spec

DRAWDOWN_LIMIT, LOSS_LIMIT = 0.10, 1_000.0
SPEC = make_spec(max_drawdown_pct=DRAWDOWN_LIMIT, max_daily_loss_usd=LOSS_LIMIT)
LATCHES = {
    C.DRAWDOWN_REDUCING: latch_id("drawdown", "global"),
    C.DAILY_LOSS_REDUCING: latch_id("daily_loss", "global", "*", trading_day(NOW, "00:00")),
}

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("snapshot"), st.sampled_from([0.0, 0.05, 0.0999, 0.1, 0.3]), st.sampled_from([0, -999, -1e3])
        ),
        st.tuples(st.just("release"), st.sampled_from(sorted(LATCHES)), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(events=events)
def test_an_opening_intent_is_refused_exactly_while_a_latch_holds(events):
    state, compiled = GateState(), compile_spec(SPEC)
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0, ts=NOW))
    latched = dict.fromkeys(LATCHES, False)
    released_at = dict.fromkeys(LATCHES, -1.0)
    now = NOW
    for kind, value, pnl in events:
        now += 1.0
        if kind == "snapshot":
            snapshot = make_snapshot({}, drawdown=value, daily_pnl=float(pnl), ts=now)
            state.apply_snapshot(snapshot)
            trip_latches(state.latches, snapshot, SPEC, now, "gate-a")
            for code, breached in (
                (C.DRAWDOWN_REDUCING, value >= DRAWDOWN_LIMIT),
                (C.DAILY_LOSS_REDUCING, -pnl >= LOSS_LIMIT),
            ):
                if breached and now > released_at[code]:
                    latched[code] = True
        else:
            record = state.latches.get(LATCHES[value])
            if record is not None and record.active:
                state.latches.put(record.released(now, "officer", "reviewed", TEST_SIGNER))
            if latched[value]:
                latched[value], released_at[value] = False, now
        intent = make_intent(timestamp=datetime.fromtimestamp(now, UTC).isoformat())
        verdict = evaluate(intent, compiled, state, now)
        assert {r.code for r in verdict.reasons} == {code for code, held in latched.items() if held}
