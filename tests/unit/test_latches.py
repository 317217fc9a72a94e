"""Latched limits: drawdown and daily loss hold a scope reducing-only until a human release (or, for daily
loss, the next trading day); a release is never undone by the snapshot that was already on the table."""

from datetime import UTC, datetime

import pytest

from cio_kernel.contracts.latch import latch_id
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.reason_codes import ReasonCode as C
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.latches import trading_day, trading_day_start, trip_latches
from gate.decision.state import GateState
from tests.factories import NOW, TEST_SIGNER, compile_spec, make_intent, make_snapshot, make_spec

DAY = 86_400.0
MIDNIGHT = NOW // DAY * DAY
TODAY = trading_day(NOW, "00:00")


def observe(state: GateState, snapshot: PortfolioSnapshot, spec: PolicySpec, now: float = NOW) -> list[str]:
    """What the gate does when a snapshot arrives: adopt it, then trip what it breaches."""
    state.apply_snapshot(snapshot)
    return [record.id for record in trip_latches(state.latches, snapshot, spec, now, "gate-a")]


def decide(state: GateState, spec: PolicySpec, now: float = NOW, **intent: object) -> Verdict:
    intent.setdefault("timestamp", datetime.fromtimestamp(now, UTC).isoformat())
    return evaluate(make_intent(**intent), compile_spec(spec), state, now)


def codes(verdict: Verdict) -> set[str]:
    return {r.code for r in verdict.reasons}


def release(state: GateState, latch: str, at: float) -> None:
    record = state.latches.get(latch)
    assert record is not None and record.active
    state.latches.put(record.released(at, "officer2", "drawdown recovered, reviewed", TEST_SIGNER))


# -- trading day ----------
@pytest.mark.parametrize(
    ("now", "start", "expected_start"),
    [
        (MIDNIGHT + 10, "00:00", MIDNIGHT),
        (MIDNIGHT - 10, "00:00", MIDNIGHT - DAY),
        (MIDNIGHT + 22 * 3600 + 1, "22:00", MIDNIGHT + 22 * 3600),
        (MIDNIGHT + 21 * 3600, "22:00", MIDNIGHT - 2 * 3600),
    ],
)
def test_the_trading_day_starts_at_the_configured_utc_time(now, start, expected_start):
    assert trading_day_start(now, start) == expected_start
    assert trading_day(now, start) == datetime.fromtimestamp(expected_start, UTC).date().isoformat()


# -- drawdown latch ----------
DRAWDOWN = latch_id("drawdown", "global")


def test_a_drawdown_breach_latches_and_a_recovery_does_not_release_it():
    state, spec = GateState(), make_spec(max_drawdown_pct=0.10)
    assert observe(state, make_snapshot({}, drawdown=0.0999), spec) == []
    assert decide(state, spec).promote
    assert observe(state, make_snapshot({}, drawdown=0.10, ts=NOW + 1), spec, NOW + 1) == [DRAWDOWN]
    # The book recovers: drawdown back to 2 %, but the latch holds until a human releases it.
    assert observe(state, make_snapshot({}, drawdown=0.02, ts=NOW + 2), spec, NOW + 2) == []
    verdict = decide(state, spec, NOW + 2)
    assert codes(verdict) == {C.DRAWDOWN_REDUCING}
    assert DRAWDOWN in verdict.reasons[0].message and "latched" in verdict.reasons[0].message


def test_a_latched_drawdown_still_admits_reducing_intents():
    state, spec = GateState(), make_spec(max_drawdown_pct=0.10)
    observe(state, make_snapshot({"BTCUSDT": (1.0, 50_000.0)}, drawdown=0.2), spec)
    observe(state, make_snapshot({"BTCUSDT": (1.0, 50_000.0)}, drawdown=0.0, ts=NOW + 1), spec, NOW + 1)
    assert decide(state, spec, NOW + 1, action="sell", quantity=0.4).promote
    assert decide(state, spec, NOW + 1, action="close", stop_loss=None).promote
    flip = {"action": "sell", "quantity": 2.0, "stop_loss": 51_000.0}
    assert codes(decide(state, spec, NOW + 1, **flip)) == {C.DRAWDOWN_REDUCING}


def test_a_release_opens_the_gate_and_only_a_later_breach_latches_again():
    state, spec = GateState(), make_spec(max_drawdown_pct=0.10)
    observe(state, make_snapshot({}, drawdown=0.12), spec)
    release(state, DRAWDOWN, at=NOW + 5)
    # Still holding the breaching snapshot taken before the release: the release stands.
    assert decide(state, spec, NOW + 6).promote
    assert observe(state, make_snapshot({}, drawdown=0.12, ts=NOW + 5), spec, NOW + 6) == []  # not newer
    assert observe(state, make_snapshot({}, drawdown=0.03, ts=NOW + 7), spec, NOW + 7) == []
    assert decide(state, spec, NOW + 7).promote
    assert observe(state, make_snapshot({}, drawdown=0.11, ts=NOW + 8), spec, NOW + 8) == [DRAWDOWN]
    assert codes(decide(state, spec, NOW + 8)) == {C.DRAWDOWN_REDUCING}


def test_the_latch_outlives_a_policy_that_drops_the_limit():
    state = GateState()
    observe(state, make_snapshot({}, drawdown=0.3), make_spec(max_drawdown_pct=0.10))
    assert codes(decide(state, make_spec())) == {C.DRAWDOWN_REDUCING}


def test_a_live_breach_counts_before_the_latch_is_stored():
    state = GateState()
    state.apply_snapshot(make_snapshot({}, drawdown=0.15))  # no trip_latches yet
    verdict = decide(state, make_spec(max_drawdown_pct=0.10))
    assert codes(verdict) == {C.DRAWDOWN_REDUCING}
    assert "breached" in verdict.reasons[0].message


# -- daily loss ----------
GLOBAL_DAILY = latch_id("daily_loss", "global", "*", TODAY)


@pytest.mark.parametrize(("pnl", "latched"), [(-999.99, False), (-1_000.0, True), (-5_000.0, True), (250.0, False)])
def test_the_books_daily_loss_in_usd(pnl, latched):
    state, spec = GateState(), make_spec(max_daily_loss_usd=1_000.0)
    assert observe(state, make_snapshot({}, daily_pnl=pnl), spec) == ([GLOBAL_DAILY] if latched else [])
    verdict = decide(state, spec)
    assert codes(verdict) == ({C.DAILY_LOSS_REDUCING} if latched else set())


def test_the_books_daily_loss_as_a_share_of_the_days_starting_equity():
    state, spec = GateState(), make_spec(max_daily_loss_pct=0.02)
    assert observe(state, make_snapshot({}, daily_pnl=-1_999.0, day_start_equity=100_000.0), spec) == []
    snapshot = make_snapshot({}, daily_pnl=-2_000.0, day_start_equity=100_000.0, ts=NOW + 1)
    assert observe(state, snapshot, spec, NOW + 1) == [GLOBAL_DAILY]
    assert state.latches.get(GLOBAL_DAILY).observed == pytest.approx(0.02)


def test_a_strategys_daily_loss_closes_only_that_strategy():
    spec = make_spec(strategies={"momentum_1": {"max_daily_loss_usd": 300.0}, "carry": {"max_daily_loss_usd": 300.0}})
    state = GateState()
    tripped = observe(state, make_snapshot({}, strategy_pnl={"momentum-1": -300.0, "carry": -10.0}), spec)
    assert tripped == [latch_id("daily_loss", "strategy", "momentum_1", TODAY)]
    assert codes(decide(state, spec)) == {C.DAILY_LOSS_REDUCING}
    assert decide(state, spec, strategy_id="carry").promote


def test_daily_pnl_that_does_not_cover_today_fails_closed():
    spec = make_spec(max_daily_loss_usd=1_000.0, strategies={"momentum_1": {"max_daily_loss_usd": 100.0}})
    yesterday = make_snapshot({}, daily_pnl=0.0, pnl_since=MIDNIGHT - DAY, strategy_pnl={"momentum-1": 0.0})
    state = GateState()
    state.apply_snapshot(yesterday)
    assert codes(decide(state, spec)) == {C.DAILY_PNL_UNKNOWN}
    state.apply_snapshot(make_snapshot({}, ts=NOW + 1))  # no PnL at all
    assert codes(decide(state, spec, NOW + 1)) == {C.DAILY_PNL_UNKNOWN}
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0, ts=NOW + 2))  # the book, but not the strategy
    verdict = decide(state, spec, NOW + 2)
    assert codes(verdict) == {C.DAILY_PNL_UNKNOWN} and "momentum_1" in verdict.reasons[0].message
    assert decide(state, spec, NOW + 2, strategy_id="other").promote


def test_a_percentage_limit_needs_the_days_starting_equity():
    state = GateState()
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0))
    assert codes(decide(state, make_spec(max_daily_loss_pct=0.02))) == {C.DAILY_PNL_UNKNOWN}


def test_a_daily_loss_latch_lapses_when_the_next_trading_day_starts():
    state, spec = GateState(), make_spec(max_daily_loss_usd=1_000.0)
    observe(state, make_snapshot({}, daily_pnl=-1_500.0), spec)
    tomorrow = MIDNIGHT + DAY + 60
    late = tomorrow - 120  # still today: the book has made some of it back, the latch holds
    observe(state, make_snapshot({}, daily_pnl=-200.0, ts=late), spec, late)
    assert codes(decide(state, spec, late)) == {C.DAILY_LOSS_REDUCING}
    observe(state, make_snapshot({}, daily_pnl=0.0, ts=tomorrow), spec, tomorrow)
    assert decide(state, spec, tomorrow).promote


def test_the_trading_day_boundary_moves_with_the_policy():
    spec = make_spec(max_daily_loss_usd=1_000.0, trading_day_start_utc="22:00")
    day_start = MIDNIGHT - 2 * 3600 if NOW < MIDNIGHT + 22 * 3600 else MIDNIGHT + 22 * 3600
    state = GateState()
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0))  # counted from midnight: another window
    assert codes(decide(state, spec)) == {C.DAILY_PNL_UNKNOWN}
    state.apply_snapshot(make_snapshot({}, daily_pnl=0.0, pnl_since=day_start, ts=NOW + 1))
    assert decide(state, spec, NOW + 1).promote


def test_a_released_daily_loss_latch_stays_released_for_the_snapshot_it_was_released_on():
    state, spec = GateState(), make_spec(max_daily_loss_usd=1_000.0)
    observe(state, make_snapshot({}, daily_pnl=-1_200.0), spec)
    release(state, GLOBAL_DAILY, at=NOW + 1)
    assert decide(state, spec, NOW + 2).promote
    assert observe(state, make_snapshot({}, daily_pnl=-1_300.0, ts=NOW + 3), spec, NOW + 3) == [GLOBAL_DAILY]


def test_snapshot_pnl_fields_need_their_window():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="pnl_since"):
        PortfolioSnapshot.model_validate({"ts": NOW, "equity_usd": 1.0, "daily_pnl_usd": -5.0})
    old = PortfolioSnapshot.model_validate({"ts": NOW, "equity_usd": 1.0, "drawdown_pct": 0.1})
    assert old.daily_pnl_usd is None and old.strategies == {}  # producers without PnL stay valid
