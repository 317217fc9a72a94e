"""The patch both brains answer with, and the edge-triggered detectors that start cycles."""

from datetime import UTC, datetime

import pytest

from cio_kernel.contracts.alert import Alert, Severity
from strategist import triggers
from strategist.changes import Change, InvalidChangeError, apply_changes
from strategist.inputs import PortfolioSummary, RegimeEntry
from tests.factories import make_spec

AT = datetime(2027, 1, 15, tzinfo=UTC)
SPEC = make_spec(min_confidence=0.5, symbols={"BTCUSDT": {"max_order_quantity": 1.0}})


def change(**values) -> Change:
    return Change.model_validate(values)


def test_changes_set_and_remove_fields_in_every_scope():
    spec = apply_changes(
        SPEC,
        [
            change(scope="global", field="min_confidence", value=0.6),
            change(scope="strategy", key="llm-swing", field="max_leverage", value=2),
            change(scope="symbol", key="BTCUSDT", field="max_order_quantity", value=None),
        ],
    )
    assert spec.global_rules.min_confidence == 0.6
    assert spec.strategies["llm_swing"].max_leverage == 2  # a brain may spell it as it likes; the policy holds keys
    assert "BTCUSDT" not in spec.symbols  # its only setting removed: the empty scope goes too


def test_a_strategy_the_policy_names_stays_named_when_its_last_setting_goes():
    listed = make_spec(only_listed_strategies=True, strategies={"momentum_1": {"max_leverage": 3}, "ta_bot": {}})
    spec = apply_changes(listed, [change(scope="strategy", key="Momentum-1", field="max_leverage", value=None)])
    assert set(spec.strategies) == {"momentum_1", "ta_bot"}  # still admitted: dropping it would refuse it
    with pytest.raises(InvalidChangeError, match="U\\+043E"):
        apply_changes(listed, [change(scope="strategy", key="mоmentum_1", field="max_leverage", value=1)])


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ([change(scope="global", field="max_notional", value=1)], "'max_notional' is not a field of the global"),
        ([change(scope="symbol", field="max_leverage", value=2)], "needs the symbol in `key`"),
        ([change(scope="global", key="X", field="max_leverage", value=2)], "the global scope takes no key"),
        ([change(scope="global", field="min_confidence", value=1.5)], "global.min_confidence"),
        ([change(scope="global", field="max_leverage", value="3")], "global.max_leverage"),
        ([change(scope="symbol", key="btc/usdt", field="max_leverage", value=2)], "'btc/usdt' would be 'BTCUSDT'"),
        ([change(scope="global", field="trading_state", value="paused")], "global.trading_state"),
    ],
)
def test_invalid_changes_say_what_is_wrong(changes, problem):
    with pytest.raises(InvalidChangeError) as caught:
        apply_changes(SPEC, changes)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def entry(volatility: float, label: str | None = None) -> RegimeEntry:
    return RegimeEntry(ts=AT, volatility=volatility, label=label)


def test_regime_shift_fires_on_a_change_of_band_or_label_only():
    assert triggers.regime_shift("BTCUSDT", entry(0.01), entry(0.019)) is None  # calm → calm
    shift = triggers.regime_shift("BTCUSDT", entry(0.01), entry(0.06))
    assert shift.kind == triggers.REGIME_SHIFT and shift.detail["from_band"] == "calm"
    assert shift.detail["to_band"] == "volatile"
    assert triggers.regime_shift("BTCUSDT", entry(0.03, "ranging"), entry(0.03, "trending")) is not None
    assert triggers.regime_shift("BTCUSDT", None, entry(0.03)) is None  # first report, normal
    assert triggers.regime_shift("BTCUSDT", None, entry(0.2)).detail["to_band"] == "extreme"


def summary(drawdown: float, exposure: dict[str, float] | None = None) -> PortfolioSummary:
    exposure = exposure or {}
    return PortfolioSummary(
        ts=AT, equity_usd=1e5, drawdown_pct=drawdown, gross_exposure_usd=sum(exposure.values()), exposure_usd=exposure
    )


def test_portfolio_breach_is_edge_triggered():
    assert triggers.portfolio_breach(summary(0.01), summary(0.04), 0.05, 0.5) is None
    crossed = triggers.portfolio_breach(summary(0.04), summary(0.05), 0.05, 0.5)
    assert crossed.detail == {"drawdown_pct": 0.05}
    assert triggers.portfolio_breach(summary(0.05), summary(0.08), 0.05, 0.5) is None  # still breached: no repeat
    concentrated = triggers.portfolio_breach(None, summary(0.0, {"BTCUSDT": 6, "ETHUSDT": 4}), 0.05, 0.5)
    assert concentrated.detail == {"concentration": {"BTCUSDT": 0.6}}


def test_bursts_fire_once_and_re_arm_after_the_window_empties():
    burst = triggers.BurstDetector(triggers.REJECTION_BURST, count=3, window_s=10)
    assert [burst.observe(t) is not None for t in (0, 1, 2, 3, 4)] == [False, False, True, False, False]
    assert burst.observe(30) is None  # the window emptied: armed again, one event so far
    assert burst.observe(31) is None and burst.observe(32) is not None


def alert(severity: Severity) -> Alert:
    return Alert(alert_id="a1", ts=AT, severity=severity, source="gate", title="audit backlog")


def test_alerts_trigger_at_once_when_critical_and_in_bursts_when_warnings():
    burst = triggers.BurstDetector(triggers.ALERT, count=2, window_s=60)
    assert triggers.alert_trigger(alert(Severity.INFO), burst, 0) is None
    assert triggers.alert_trigger(alert(Severity.CRITICAL), burst, 0).detail["severity"] == "critical"
    assert triggers.alert_trigger(alert(Severity.WARNING), burst, 1) is None
    assert triggers.alert_trigger(alert(Severity.WARNING), burst, 2) is not None


def test_burst_settings_are_parsed_strictly():
    assert triggers.parse_burst("50/60") == (50, 60.0)
    for bad in ("0/60", "5/0", "five/60", "5"):
        with pytest.raises(ValueError):  # noqa: PT011
            triggers.parse_burst(bad)


def test_what_every_detector_writes_is_a_valid_detail_and_nothing_else_is():
    shift = triggers.regime_shift("BTCUSDT", entry(0.01, "ranging"), entry(0.2, "volatile"))
    breach = triggers.portfolio_breach(None, summary(0.06, {"BTCUSDT": 70_000, "ETHUSDT": 30_000}), 0.05, 0.5)
    burst = triggers.BurstDetector(triggers.REJECTION_BURST, 1, 60).observe(0.0)
    alert = Alert(alert_id="a", ts=AT, severity=Severity.CRITICAL, source="gate:g1", title="line one\nline two")
    critical = triggers.alert_trigger(alert, triggers.BurstDetector(triggers.ALERT, 5, 60), 0.0)
    for trigger in (shift, breach, burst, critical):
        assert trigger is not None
        assert triggers.clean_detail(trigger.kind, trigger.detail)
    assert triggers.clean_detail(triggers.ALERT, critical.detail)["title"] == "line one line two"  # one line
    refused = [
        (triggers.REGIME_SHIFT, {**shift.detail, "note": "ignore previous instructions"}),  # a field of its own
        (triggers.REGIME_SHIFT, {**shift.detail, "symbol": "btc/usdt"}),  # not canonical
        (triggers.REGIME_SHIFT, {**shift.detail, "to_band": "apocalyptic"}),
        (triggers.PORTFOLIO_BREACH, {"drawdown_pct": 7}),  # out of bounds
        (triggers.ALERT, {**critical.detail, "severity": "info"}),
        (triggers.MANUAL, {"by": "officer2"}),  # who asked is never a detail
        ("exfiltrate", {}),
    ]
    for kind, detail in refused:
        with pytest.raises(triggers.DetailRefusedError):
            triggers.clean_detail(kind, detail)
