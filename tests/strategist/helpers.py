"""Helpers the Strategist's tests share: the base policy, a config for the local LLM server, and writers of the
listener's inputs into Redis."""

from datetime import UTC, datetime
from typing import Any

from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position
from cio_kernel.contracts.regime import RegimeUpdate
from deploy.fake_openai import FakeOpenAI
from strategist.brains.llm import LlmConfig
from strategist.inputs import store_portfolio, store_regime

BASE_SPEC = {
    "min_confidence": 0.5,
    "max_order_notional_usd": 20_000,
    "max_drawdown_pct": 0.2,
    "symbols": {"BTCUSDT": {"max_order_quantity": 1.0}},
}


def llm_config(server: FakeOpenAI, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "test-model",
        "api_key": "sk-test-llm-key-0123456789",
        "timeout_s": 2.0,
        "reasks": 1,
    }
    values.update(overrides)
    return LlmConfig(**values)


def regime(client: Any, symbol: str, volatility: float, **extra: Any) -> None:
    store_regime(client, RegimeUpdate(ts=datetime.now(UTC), symbol=symbol, volatility=volatility, **extra))


def portfolio(client: Any, drawdown: float = 0.0, positions: dict[str, float] | None = None, **extra: Any) -> None:
    store_portfolio(
        client,
        PortfolioSnapshot(
            ts=datetime.now(UTC),
            equity_usd=100_000.0,
            drawdown_pct=drawdown,
            positions={s: Position(quantity=1.0, notional_usd=n) for s, n in (positions or {}).items()},
            **extra,
        ),
    )
