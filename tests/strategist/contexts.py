"""CycleContexts built directly (no database), for the pure parts: the rule brain and the prompt."""

from datetime import UTC, datetime
from typing import Any

from cio_kernel.policy.document import policy_checksum
from cio_kernel.policy.spec import PolicySpec
from policies.models import compact_spec
from strategist.context import CycleContext, PolicyView
from strategist.inputs import PortfolioSummary, RegimeEntry

AT = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


def view(spec: PolicySpec, version: int) -> PolicyView:
    return PolicyView(version=version, checksum=policy_checksum(spec), spec=compact_spec(spec))


def context_for(
    active: PolicySpec,
    baseline: PolicySpec | None = None,
    volatility: dict[str, float] | None = None,
    drawdown: float | None = None,
    exposure: dict[str, float] | None = None,
    **extra: Any,
) -> CycleContext:
    portfolio = None
    if drawdown is not None or exposure:
        exposure = exposure or {}
        portfolio = PortfolioSummary(
            ts=AT,
            equity_usd=100_000.0,
            drawdown_pct=drawdown or 0.0,
            gross_exposure_usd=sum(exposure.values()),
            exposure_usd=exposure,
        )
    return CycleContext(
        trigger=extra.pop("trigger", "schedule"),
        trigger_detail=extra.pop("trigger_detail", {}),
        at=AT,
        policy=view(active, 2),
        baseline=view(baseline or active, 1),
        regime={s: RegimeEntry(ts=AT, volatility=v) for s, v in (volatility or {}).items()},
        portfolio=portfolio,
        concentration=portfolio.concentration() if portfolio is not None else {},
        decisions=None,
        similar_incidents=[],
        envelope={},
        **extra,
    )
