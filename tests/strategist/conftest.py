"""Strategist fixtures: the control plane's users and live stack (real NATS, Redis, database), a local
OpenAI-compatible server, and helpers to feed the listener's inputs into Redis."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position
from cio_kernel.contracts.regime import RegimeUpdate
from deploy.fake_openai import FakeOpenAI
from policies import services
from policies.models import PolicyVersion
from policies.strategist.brains.llm import LlmConfig
from policies.strategist.inputs import store_portfolio, store_regime
from tests.control_plane.conftest import (  # noqa: F401
    api,
    browser,
    fast_password_hashing,
    fresh_throttles,
    redis_client,
    stack,
    users,
)
from tests.factories import make_spec

BASE_SPEC = {
    "min_confidence": 0.5,
    "max_order_notional_usd": 20_000,
    "max_drawdown_pct": 0.2,
    "symbols": {"BTCUSDT": {"max_order_quantity": 1.0}},
}


@pytest.fixture
def strategist_stack(stack: Any, redis_url: str) -> Any:  # noqa: F811
    stack.CIO_STRATEGIST_REDIS_URL = redis_url
    stack.CIO_STRATEGIST_LOCK_TTL_S = 5.0
    return stack


@pytest.fixture
def active_policy(strategist_stack: Any, users: dict[str, Any]) -> PolicyVersion:  # noqa: F811
    """v1, proposed by officer1, approved and activated by officer2: the officers' baseline."""
    policy = services.propose(
        spec=make_spec(**BASE_SPEC).model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="base"
    )
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


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
