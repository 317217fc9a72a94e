"""Incident detection as pure logic: where a burst starts, that it is one incident however often it is seen,
and what a latch trip records."""

from dataclasses import replace
from datetime import timedelta

from audit.incidents import LIMIT_BREACH, RejectionBurstDetector, from_latch_notice
from cio_kernel.contracts.identity import strategy_key
from cio_kernel.contracts.latch import LatchNotice
from tests.audit.records import T0, chain_of


def _rejections(count: int, strategy: str = "momentum_pulse", start_s: float = 0.0):
    base = chain_of(1)[0]
    return [
        replace(
            base,
            decision_id=f"{strategy}-{start_s}-{i}",
            strategy_id=strategy,
            strategy_key=strategy_key(strategy),
            decision="REJECTED",
            reason_codes=("CONFIDENCE_TOO_LOW",),
            ts=T0 + timedelta(seconds=start_s + i * 0.1),
        )
        for i in range(count)
    ]


def test_a_burst_is_one_incident_at_the_threshold_and_not_before():
    detector = RejectionBurstDetector(threshold=20, window_s=60)
    assert detector.observe(_rejections(19)) == []
    [burst] = detector.observe(_rejections(1, start_s=10))
    assert burst.kind == "rejection_burst" and burst.strategy_id == "momentum_pulse"
    assert "20 rejections" in burst.title and "CONFIDENCE_TOO_LOW" in burst.title
    assert detector.observe(_rejections(40, start_s=20)) == []  # the same bucket: already reported


def test_bursts_are_per_strategy_and_per_window_with_ids_any_detector_would_give():
    one, other = RejectionBurstDetector(5, 60), RejectionBurstDetector(5, 60)
    a = one.observe(_rejections(5) + _rejections(5, "llm-swing") + _rejections(5, start_s=120))
    assert sorted(i.strategy_id for i in a) == ["llm_swing", "momentum_pulse", "momentum_pulse"]  # by key
    assert len({i.incident_id for i in a}) == 3
    assert {i.incident_id for i in other.observe(_rejections(5, "llm-swing"))} <= {i.incident_id for i in a}


def test_respelling_an_id_does_not_split_a_burst():
    detector = RejectionBurstDetector(threshold=6, window_s=60)
    [burst] = detector.observe(_rejections(3, "LLM Swing") + _rejections(3, "llm-swing", start_s=1))
    assert burst.strategy_id == "llm_swing" and "6 rejections of llm_swing" in burst.title


def test_approvals_never_make_a_burst():
    detector = RejectionBurstDetector(3, 60)
    assert detector.observe([replace(r, decision="APPROVED") for r in _rejections(10)]) == []


def test_a_latch_trip_is_a_limit_breach_and_a_release_notice_is_not():
    notice = LatchNotice(latch_id="daily_loss:strategy:momentum_pulse:2026-11-02", event="tripped", at=1.8e9, by="g1")
    incident = from_latch_notice(notice)
    assert incident is not None and incident.kind == LIMIT_BREACH and incident.strategy_id == "momentum_pulse"
    assert "daily loss limit breached" in incident.title and incident.detail["latch_id"] == notice.latch_id
    assert from_latch_notice(notice.model_copy(update={"event": "released"})) is None
    assert from_latch_notice(notice) == incident  # the same trip seen twice: the same incident id
