"""The cockpit's pieces without a browser (tests/browser drives the whole page): what each panel computes, how a lost
layer message is noticed, who may read and act, and where a login lands."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from cockpit.feed import MAX_ORIGINS, GapDetector
from cockpit.panels import book, per_second, percentile, trading_states
from deploy.servers import free_port
from strategist.inputs import PortfolioSummary
from tests.factories import make_snapshot, make_spec

NOW = datetime(2027, 1, 15, 12, 0, 0, tzinfo=UTC)


# -- numbering -------------------------------------------------------------------------------------------------------
def test_a_skipped_number_from_one_origin_is_a_gap_and_the_first_from_an_origin_is_not() -> None:
    gaps = GapDetector()
    assert [gaps.gap({"origin": "a", "seq": n}) for n in (5, 6, 7)] == [False, False, False]
    assert gaps.gap({"origin": "b", "seq": 1}) is False  # another ingest process: its own numbering
    assert gaps.gap({"origin": "a", "seq": 9}) is True  # 8 was dropped
    assert gaps.gap({"origin": "a", "seq": 10}) is False
    assert gaps.gap({"origin": "a", "seq": 3}) is True  # numbering went back: a restart or a planted number


@pytest.mark.parametrize("message", [{}, {"origin": "a"}, {"origin": "a", "seq": "7"}, {"origin": 1, "seq": 1}])
def test_an_unnumbered_message_counts_as_a_gap(message: dict[str, Any]) -> None:
    assert GapDetector().gap(message) is True


def test_planted_origins_cannot_grow_what_a_page_remembers() -> None:
    gaps = GapDetector()
    for n in range(MAX_ORIGINS * 3):
        gaps.gap({"origin": f"planted-{n}", "seq": 1})
    assert len(gaps._last) == MAX_ORIGINS


# -- panels -----------------------------------------------------------------------------------------------------
def test_every_scope_the_policy_names_is_a_row_global_first_unset_is_active() -> None:
    spec = make_spec(
        trading_state="reducing",
        strategies={"momentum_1": {"trading_state": "halted"}, "carry": {}},
        symbols={"BTCUSDT": {}},
    )
    assert trading_states(spec) == [
        {"scope": "global", "key": "", "state": "reducing"},
        {"scope": "strategy", "key": "momentum_1", "state": "halted"},
        {"scope": "strategy", "key": "carry", "state": "active"},
        {"scope": "symbol", "key": "BTCUSDT", "state": "active"},
    ]


def test_exposure_loss_and_drawdown_against_the_limits_the_gates_compare() -> None:
    summary = PortfolioSummary.of(
        make_snapshot(
            positions={"BTCUSDT": (1.0, 30_000.0), "ETHUSDT": (2.0, 60_000.0)}, drawdown=0.05, daily_pnl=-2_000.0
        )
    )
    spec = make_spec(
        max_total_exposure_usd=100_000.0,
        max_symbol_exposure_usd=50_000.0,
        max_drawdown_pct=0.1,
        max_daily_loss_usd=4_000.0,
        symbols={"BTCUSDT": {"max_symbol_exposure_usd": 20_000.0}},
    )
    latch = SimpleNamespace(
        id="drawdown:global", kind="drawdown", scope="global", key="", observed=0.12, limit=0.1, tripped_at=1.0
    )
    shown = book(summary, spec, [latch])
    by_symbol = {s["symbol"]: s for s in shown["symbols"]}
    assert by_symbol["BTCUSDT"]["limit"] == 20_000.0 and by_symbol["BTCUSDT"]["fraction"] == 1.5  # its own limit
    assert by_symbol["ETHUSDT"]["limit"] == 50_000.0 and by_symbol["ETHUSDT"]["fraction"] == 1.2  # the global one
    assert shown["total"] == {"usd": 90_000.0, "limit": 100_000.0, "fraction": 0.9}
    assert shown["daily_loss"]["usd"] == 2_000.0 and shown["daily_loss"]["fraction"] == 0.5
    assert shown["drawdown"]["fraction"] == 0.5
    assert [entry["id"] for entry in shown["latches"]] == ["drawdown:global"]


def test_a_book_without_limits_or_pnl_says_so_rather_than_a_fraction() -> None:
    shown = book(PortfolioSummary.of(make_snapshot(positions={"BTCUSDT": (1.0, 10.0)})), make_spec(), [])
    assert shown["total"]["fraction"] is None and shown["symbols"][0]["fraction"] is None
    assert shown["daily_loss"]["usd"] is None and shown["daily_loss"]["fraction"] is None


def test_decisions_per_second_over_the_last_minute() -> None:
    now = NOW + timedelta(milliseconds=500)  # half way through a second

    def record(ago_s: float, decision: str) -> Any:
        return SimpleNamespace(ts=now - timedelta(seconds=ago_s), decision=decision)

    buckets = per_second(
        [record(0, "APPROVED"), record(0.2, "REJECTED"), record(59, "RETRY_SAFE"), record(61, "APPROVED")], now
    )
    assert len(buckets) == 60 and buckets[-1]["t"] == int(NOW.timestamp())
    assert (buckets[-1]["APPROVED"], buckets[-1]["REJECTED"]) == (1, 1)
    assert buckets[0]["RETRY_SAFE"] == 1
    assert sum(b["APPROVED"] for b in buckets) == 1  # the one older than a minute is left out


def test_latency_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50, 95, 99)
    assert percentile([], 0.5) is None and percentile([7], 0.99) == 7


# -- over HTTP -----------------------------------------------------------------------------------------------------
def test_the_cockpit_and_its_snapshot_are_for_signed_in_staff_only(client: Any, browser: Any) -> None:
    landing = client.get("/")
    assert landing.status_code == 302 and landing["Location"] == "/admin/login/?next=/"
    refused = client.get("/cockpit/snapshot")
    assert refused.status_code == 403 and orjson.loads(refused.content)["code"] == "PERMISSION_DENIED"
    assert (
        client.post("/cockpit/trading-state", {"scope": "global", "action": "halt", "reason": "x"}).status_code == 403
    )


def test_staff_without_a_role_may_not_look(browser: Any) -> None:
    nobody = browser("nobody")  # staff, in no group
    assert nobody.get("/").status_code == 403
    assert nobody.get("/cockpit/snapshot").status_code == 403


def test_a_login_without_a_destination_lands_on_the_cockpit(client: Any, users: Any) -> None:
    form = client.get("/admin/login/")
    assert b'name="next" value="/"' in form.content
    signed_in = client.post("/admin/login/", {"username": "viewer", "password": "viewer-password-123"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    elsewhere = client.post("/admin/login/?next=/admin/", {"username": "viewer", "password": "viewer-password-123"})
    assert elsewhere["Location"] == "/admin/"


def test_with_redis_away_its_panels_say_so_and_the_others_stand(browser: Any, settings: Any) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = settings.CIO_STRATEGIST_REDIS_URL = nowhere
    snapshot = orjson.loads(browser("viewer").get("/cockpit/snapshot").content)
    panels = snapshot["panels"]
    assert set(panels) == {"trading", "gates", "book", "decisions", "alerts", "strategist"}
    for name in ("gates", "book"):
        assert not panels[name]["ok"] and "unavailable" in panels[name]["error"] and panels[name]["data"] is None
    for name in ("trading", "decisions", "alerts", "strategist"):
        assert panels[name]["ok"], panels[name]["error"]
    assert panels["trading"]["data"]["rows"] == []  # no policy is active yet


def test_only_those_who_may_act_can_halt_or_acknowledge(browser: Any) -> None:
    viewer = browser("viewer")
    halt = viewer.post("/cockpit/trading-state", {"scope": "global", "action": "halt", "reason": "drill"})
    assert halt.status_code == 403 and orjson.loads(halt.content)["code"] == "PERMISSION_DENIED"
    ack = viewer.post("/cockpit/alerts/some-alert/acknowledge")
    assert ack.status_code == 403
    assert viewer.post("/cockpit/incidents/some-incident/acknowledge").status_code == 403
    officer = browser("officer1")
    assert officer.post("/cockpit/alerts/no-such-alert/acknowledge").status_code == 404
    assert officer.post("/cockpit/incidents/no-such-incident/acknowledge").status_code == 404
    no_reason = officer.post("/cockpit/trading-state", {"scope": "global", "action": "halt", "reason": " "})
    assert no_reason.status_code == 400 and "reason" in orjson.loads(no_reason.content)["message"]
    unknown = officer.post("/cockpit/trading-state", {"scope": "global", "action": "loosen", "reason": "x"})
    assert unknown.status_code == 400
