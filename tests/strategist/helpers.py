"""Helpers the Strategist's tests share: the base policy, a config for the local LLM server, the listener's
settings, writers of the listener's inputs into Redis, a scheduled cycle, and a cycle schedule set in the past
(fixtures are in conftest.py)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position
from cio_kernel.contracts.regime import RegimeUpdate
from deploy.fake_openai import FakeOpenAI
from strategist import cycle as cycles
from strategist import cycle_requests
from strategist.brains.llm import LlmConfig
from strategist.inputs import store_portfolio, store_regime
from strategist.listener import ListenerSettings
from strategist.models import Cycle, StrategistSettings
from strategist.triggers import SCHEDULE, Trigger

BASE_SPEC = {
    "min_confidence": 0.5,
    "max_order_notional_usd": 20_000,
    "max_drawdown_pct": 0.2,
    "symbols": {"BTCUSDT": {"max_order_quantity": 1.0}},
}

LISTENER_SETTINGS = ListenerSettings(
    debounce_s=30, drawdown_at=0.05, concentration_at=0.5, rejection_burst=(3, 60), alert_burst=(2, 60)
)


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


def run_scheduled_cycle(client: Any) -> Cycle | None:
    return cycles.run_cycle(Trigger(SCHEDULE, {}, verified=True), client=client, use_env_llm=False)


def schedule_every_minute_since(ago: timedelta) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task=cycle_requests.RUN_CYCLE).delete()
    PeriodicTask.objects.create(name="strategist: reasoning cycle", task=cycle_requests.RUN_CYCLE, interval=every)
    then = timezone.now() - ago
    PeriodicTask.objects.filter(task=cycle_requests.RUN_CYCLE).update(date_changed=then)
    StrategistSettings.current()
    StrategistSettings.objects.filter(id=1).update(updated_at=then)
