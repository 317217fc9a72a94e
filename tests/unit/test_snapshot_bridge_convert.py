"""The snapshot bridge's conversion (bridges/engine_state/convert.py): the trade engine's `/state` answers, in the
exact shapes its code and its own test (`tests/test_cio_state.py`) give, to one `PortfolioSnapshot`, or to nothing
when that would take inventing a figure."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from bridges.engine_state.config import BridgeSettings
from bridges.engine_state.convert import EngineState, Tolerance, Unconvertible, parse_state, to_snapshot
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from deploy.fake_tradeengine import EngineBook, demo_book

TS = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)

# The engine's own test of the route (tests/test_cio_state.py), byte for byte in shape.
ENGINE_TEST_PAYLOAD: dict[str, Any] = {
    "portfolio": {"gross_exposure": 0.5, "same_asset_pct": 0.1, "open_positions_count": 2},
    "risk_limits": {
        "max_drawdown_pct": 0.15,
        "max_orders_global": 50,
        "max_orders_per_symbol": 5,
        "max_position_size_usd": 5000.0,
    },
    "env_stats": {
        "global_drawdown_pct": 0.02,
        "open_orders_global": 10,
        "open_orders_symbol": 1,
        "available_capital_usd": 25000.0,
    },
}


def answers(book: EngineBook, *symbols: str) -> dict[str, EngineState]:
    """What the engine answers for each symbol, through the wire format (JSON bytes) and the bridge's parser."""
    return {symbol: parse_state(orjson.dumps(book.cio_state(symbol))) for symbol in symbols}


def with_changes(payload: dict[str, Any], section: str, **values: Any) -> bytes:
    changed = {**payload, section: {**payload[section], **values}}
    return orjson.dumps(changed)


def test_the_demo_book_becomes_its_snapshot():
    book = demo_book()
    snapshot = to_snapshot(answers(book, "BTCUSDT", "ETHUSDT", "DOGEUSDT", "SOLUSDT"), TS)
    assert snapshot.ts == TS
    assert snapshot.equity_usd == 250_000.0
    notionals = {symbol: round(p.notional_usd, 6) for symbol, p in snapshot.positions.items()}
    assert notionals == {"BTCUSDT": 38_800.0, "ETHUSDT": 17_000.0, "DOGEUSDT": 8_000.0}  # SOL flat: absent
    # No side or size in base units from this API: no buy or sell is proven to reduce (only `close`).
    assert all(p.quantity == 0.0 for p in snapshot.positions.values())
    assert snapshot.gross_exposure_usd == pytest.approx(63_800.0)
    assert snapshot.drawdown_pct == pytest.approx(1_200.0 / 250_000.0)
    # The engine's PnL accumulator has no trading-day window and no per-strategy split: unknown, not zero.
    assert snapshot.pnl_since is None and snapshot.daily_pnl_usd is None and snapshot.day_start_equity_usd is None
    assert snapshot.strategies == {}
    assert snapshot.model_extra == {
        "source": "tradeengine-state-api",
        "engine_realised_loss_usd": 1_200.0,
        "engine_open_positions": 3,
    }
    # What is published is the contract model, and it reads back as the same snapshot.
    assert PortfolioSnapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


def test_a_gain_is_no_loss_and_no_drawdown():
    book = demo_book()
    book.daily_pnl = 5_000.0  # the engine reports only losses (max(-pnl, 0))
    snapshot = to_snapshot(answers(book, "BTCUSDT", "ETHUSDT", "DOGEUSDT"), TS)
    assert snapshot.drawdown_pct == 0.0 and snapshot.daily_pnl_usd is None


def test_the_engines_own_test_payload_is_refused_when_the_polled_symbol_does_not_account_for_the_exposure():
    # 50 % gross, 10 % in BTC: 10,000 USD are held in symbols the bridge was not told to poll.
    with pytest.raises(Unconvertible) as refused:
        to_snapshot({"BTCUSDT": parse_state(orjson.dumps(ENGINE_TEST_PAYLOAD))}, TS)
    assert refused.value.kind == "unpolled_exposure"
    assert refused.value.detail == {"gross_usd": 12_500.0, "attributed_usd": 2_500.0, "polled": ["BTCUSDT"]}


def test_exposure_within_the_tolerance_is_accepted():
    # Two reads of one round, a fill in between: the gross moved by a few dollars.
    payload = with_changes(ENGINE_TEST_PAYLOAD, "portfolio", gross_exposure=0.10008, same_asset_pct=0.1)
    snapshot = to_snapshot({"BTCUSDT": parse_state(payload)}, TS)
    assert snapshot.positions["BTCUSDT"].notional_usd == pytest.approx(2_500.0)
    with pytest.raises(Unconvertible):
        to_snapshot({"BTCUSDT": parse_state(payload)}, TS, Tolerance(usd=0.0, fraction=0.0))


def test_zero_or_negative_capital_is_no_snapshot():
    # With V <= 0 the engine answers 0 exposure and 0 positions whatever it holds.
    book = demo_book()
    book.total_portfolio_value = 0.0
    state = answers(book, "BTCUSDT")
    assert state["BTCUSDT"].portfolio.gross_exposure == 0.0  # the engine's figure, which would hide the book
    with pytest.raises(Unconvertible) as refused:
        to_snapshot(state, TS)
    assert refused.value.kind == "no_capital"
    payload = with_changes(ENGINE_TEST_PAYLOAD, "env_stats", available_capital_usd=-12.5)
    with pytest.raises(Unconvertible, match=r"available capital -12\.50 USD"):
        to_snapshot({"BTCUSDT": parse_state(payload)}, TS)


def test_capital_under_one_dollar_undoes_the_engines_floor():
    # The engine divides the loss by max(V, 1): with V = 0.5 and a loss of 0.2 it reports 0.2, not 0.4.
    book = EngineBook(total_portfolio_value=0.5, daily_pnl=-0.2)
    snapshot = to_snapshot(answers(book, "BTCUSDT"), TS)
    assert snapshot.drawdown_pct == pytest.approx(0.4)
    book.daily_pnl = -3.0  # a loss beyond the capital: all of it
    assert to_snapshot(answers(book, "BTCUSDT"), TS).drawdown_pct == 1.0


def test_a_short_counts_as_exposure_like_a_long():
    book = EngineBook(
        total_portfolio_value=10_000.0,
        positions={("BTCUSDT", "SHORT"): {"quantity": 0.01, "avg_price": 100_000.0}},
    )
    snapshot = to_snapshot(answers(book, "BTCUSDT", "ETHUSDT"), TS)
    assert snapshot.positions["BTCUSDT"].notional_usd == pytest.approx(1_000.0)
    assert "ETHUSDT" not in snapshot.positions


def test_the_largest_capital_and_drawdown_of_a_round_are_reported():
    low = with_changes(ENGINE_TEST_PAYLOAD, "env_stats", available_capital_usd=20_000.0, global_drawdown_pct=0.03)
    high = with_changes(ENGINE_TEST_PAYLOAD, "env_stats", available_capital_usd=25_000.0, global_drawdown_pct=0.02)
    flat = {"gross_exposure": 0.0, "same_asset_pct": 0.0}
    round_ = {
        "BTCUSDT": parse_state(with_changes(orjson.loads(low), "portfolio", **flat)),
        "ETHUSDT": parse_state(with_changes(orjson.loads(high), "portfolio", **flat)),
    }
    snapshot = to_snapshot(round_, TS)
    assert snapshot.equity_usd == 25_000.0
    assert snapshot.drawdown_pct == pytest.approx(0.03)  # 600 USD of 20,000: the larger share


def test_a_symbol_share_above_the_gross_share_is_refused():
    payload = with_changes(ENGINE_TEST_PAYLOAD, "portfolio", gross_exposure=0.1, same_asset_pct=0.2)
    with pytest.raises(Unconvertible) as refused:
        to_snapshot({"BTCUSDT": parse_state(payload)}, TS)
    assert refused.value.kind == "inconsistent"


def test_fields_the_engine_may_add_are_ignored():
    payload = {**ENGINE_TEST_PAYLOAD, "new_section": {"x": 1}}
    payload["portfolio"] = {**payload["portfolio"], "gross_exposure": 0.1, "net_exposure": -0.1}
    assert to_snapshot({"BTCUSDT": parse_state(orjson.dumps(payload))}, TS).equity_usd == 25_000.0


MALFORMED = {
    "not JSON": b"<html>502 Bad Gateway</html>",
    "a list": b"[]",
    "the 500 body": b'{"detail": "Failed to retrieve engine state: boom"}',
    "no portfolio": orjson.dumps({k: v for k, v in ENGINE_TEST_PAYLOAD.items() if k != "portfolio"}),
    "no env_stats": orjson.dumps({k: v for k, v in ENGINE_TEST_PAYLOAD.items() if k != "env_stats"}),
    "no capital figure": orjson.dumps(
        {
            **ENGINE_TEST_PAYLOAD,
            "env_stats": {k: v for k, v in ENGINE_TEST_PAYLOAD["env_stats"].items() if k != "available_capital_usd"},
        }
    ),
    "no same_asset_pct": orjson.dumps(
        {**ENGINE_TEST_PAYLOAD, "portfolio": {"gross_exposure": 0.1, "open_positions_count": 1}}
    ),
    "a number as a string": with_changes(ENGINE_TEST_PAYLOAD, "env_stats", available_capital_usd="25000"),
    "null capital": with_changes(ENGINE_TEST_PAYLOAD, "env_stats", available_capital_usd=None),
    # JSON has no infinity, but a number beyond a double's range parses as one.
    "infinite capital": b'{"portfolio": {"gross_exposure": 0.1, "same_asset_pct": 0.1, "open_positions_count": 1}, '
    b'"env_stats": {"global_drawdown_pct": 0, "open_orders_global": 0, "open_orders_symbol": 0, '
    b'"available_capital_usd": 1e400}}',
    "a negative exposure": with_changes(ENGINE_TEST_PAYLOAD, "portfolio", gross_exposure=-0.5),
    "a negative drawdown": with_changes(ENGINE_TEST_PAYLOAD, "env_stats", global_drawdown_pct=-0.01),
    "a boolean count": with_changes(ENGINE_TEST_PAYLOAD, "portfolio", open_positions_count=True),
    "a fractional count": with_changes(ENGINE_TEST_PAYLOAD, "env_stats", open_orders_global=1.5),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_no_snapshot(raw: bytes):
    with pytest.raises(Unconvertible) as refused:
        parse_state(raw)
    assert refused.value.kind == "malformed"


def test_no_answers_is_no_snapshot():
    with pytest.raises(Unconvertible):
        to_snapshot({}, TS)


def test_settings_refuse_what_would_leak_or_mislead(monkeypatch):
    monkeypatch.setenv("CIO_SNAPSHOT_SYMBOLS", "BTCUSDT, ETHUSDT,BTCUSDT")
    assert BridgeSettings().symbols() == ("BTCUSDT", "ETHUSDT")
    for url in ("http://user:secret@engine:8000/state", "http://engine:8000/state?token=x", "ftp://engine/state"):
        with pytest.raises(ValidationError):
            BridgeSettings(engine_state_url=url)
    for symbols in ("", "btcusdt", "BTC/USDT"):
        monkeypatch.setenv("CIO_SNAPSHOT_SYMBOLS", symbols)
        with pytest.raises(ValidationError):
            BridgeSettings()
