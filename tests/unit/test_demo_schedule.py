"""The demo fleet's ten-minute schedule (deploy/demo_schedule.py) and what each stand-in plays from it, checked
against the example policy `make up` seeds: each phase must trip the control it is there to show."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridges.engine_state.convert import parse_state, to_snapshot
from deploy import demo_schedule
from deploy.demo_market import volatility
from deploy.demo_schedule import PERIOD_S, PHASES, Clock, active
from deploy.demo_strategy import FLOOD_RATE, FLOOD_STRATEGY, SCENARIOS, flood_intent
from deploy.fake_tradeengine import DEMO_DRAWDOWN, FakeTradeEngine, apply_phases, demo_book
from strategist.bands import EXTREME, band

POLICY = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "policies" / "example.json").read_text())


def _middle(name: str) -> float:
    phase = next(p for p in PHASES if p.name == name)
    return (phase.start_s + phase.end_s) / 2


def test_every_phase_plays_within_ten_minutes_and_the_start_up_is_the_steady_mix_only():
    assert PERIOD_S <= 600
    for phase in PHASES:
        assert 0 < phase.start_s < phase.end_s <= PERIOD_S, phase
        assert active(_middle(phase.name)) == {phase.name}
    assert {p.name for p in PHASES} == {"flood", "volatility_spike", "engine_hiccup", "drawdown"}
    assert active(0) == active(60) == active(170) == frozenset()


def test_a_phase_starts_on_its_second_ends_before_its_last_and_comes_back_each_period():
    flood = next(p for p in PHASES if p.name == "flood")
    assert active(flood.start_s) == {"flood"}
    assert "flood" not in active(flood.end_s)
    assert active(flood.start_s + PERIOD_S) == {"flood"}
    assert active(_middle("drawdown") + 3 * PERIOD_S) == {"drawdown"}


def test_turned_off_or_before_the_start_nothing_plays():
    assert active(_middle("flood"), enabled=False) == frozenset()
    assert active(-PERIOD_S + _middle("flood")) == frozenset()


def test_the_clock_reads_the_stacks_start_and_the_off_switch(monkeypatch):
    monkeypatch.setenv(demo_schedule.T0_ENV, "1000")
    monkeypatch.delenv(demo_schedule.SCENARIOS_ENV, raising=False)
    clock = Clock.from_env()
    assert clock.enabled and clock.elapsed(now=1190.0) == 190.0
    assert clock.playing("flood", now=1000 + _middle("flood"))
    assert not clock.playing("drawdown", now=1000 + _middle("flood"))
    monkeypatch.setenv(demo_schedule.SCENARIOS_ENV, "0")
    assert not Clock.from_env().playing("flood", now=1000 + _middle("flood"))
    monkeypatch.setenv(demo_schedule.T0_ENV, "not a time")
    assert abs(Clock.from_env().elapsed()) < 60  # a bad start is now, not an error


def test_the_flood_reaches_its_strategys_rate_limit_within_the_phase_despite_the_dedupe_window():
    rules, window = POLICY["strategies"][FLOOD_STRATEGY], POLICY["global"]["dedupe_window_s"]
    phase = next(p for p in PHASES if p.name == "flood")
    intents = [flood_intent(n) for n in range(int(FLOOD_RATE * (phase.end_s - phase.start_s)))]
    # One promotion per (strategy, symbol, action) per dedupe window: the kinds of order bound the approvals.
    kinds = {(i["strategy_id"], i["symbol"], i["action"]) for i in intents[: int(FLOOD_RATE * window)]}
    most_approved = len(kinds) * (phase.end_s - phase.start_s) / window
    assert most_approved > rules["max_intents_per_minute"]  # so the throttle answers before the phase ends
    assert len(kinds) * 60 / window > rules["max_intents_per_minute"]
    for intent in intents:  # nothing else refuses them first: each is one the strategy may send
        assert intent["symbol"] in rules["allowed_symbols"]
        assert intent["quantity"] * intent["price"] <= rules["max_order_notional_usd"]
        assert intent["confidence"] >= rules["min_confidence"]
        assert intent["stop_loss"] is not None


def test_the_stale_producer_is_older_than_the_policy_admits():
    [build] = [build for expected, build in SCENARIOS if expected == "INTENT_STALE"]
    intent = build()
    age = (datetime.now(UTC) - datetime.fromisoformat(intent["timestamp"])).total_seconds()
    assert age > POLICY["global"]["max_intent_age_s"] + POLICY["global"]["max_clock_skew_s"]


def test_the_spike_puts_btc_in_the_extreme_band_and_only_during_the_spike():
    for t in (0.0, 150.0, 300.0, 450.0):
        assert band(volatility("BTCUSDT", t, spike=True)) == EXTREME
        assert band(volatility("BTCUSDT", t)) != EXTREME


def test_the_engine_stand_in_fails_its_state_api_then_carries_a_drawdown_past_the_limit():
    engine = FakeTradeEngine(book=demo_book())
    calm = engine.book.daily_pnl
    symbols = ("BTCUSDT", "ETHUSDT", "DOGEUSDT", "SOLUSDT")

    def drawdown() -> float:
        answers = {}
        for symbol in symbols:
            status, body = engine.state(f"symbol={symbol}")
            assert status == 200
            answers[symbol] = parse_state(json.dumps(body).encode())
        return to_snapshot(answers, datetime.now(UTC)).drawdown_pct

    assert drawdown() < POLICY["global"]["max_drawdown_pct"]
    apply_phases(engine, frozenset({"engine_hiccup"}), calm)
    assert engine.state("symbol=BTCUSDT")[0] == 500  # the bridge alerts: engine_http_error
    apply_phases(engine, frozenset({"drawdown"}), calm)
    assert drawdown() == pytest.approx(DEMO_DRAWDOWN)
    assert drawdown() > POLICY["global"]["max_drawdown_pct"]
    apply_phases(engine, frozenset(), calm)
    assert engine.book.daily_pnl == calm and drawdown() < POLICY["global"]["max_drawdown_pct"]
