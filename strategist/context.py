"""What a reasoning cycle looks at, built from an allow-list: every field below is named here and copied from
its source one by one. Nothing else (no environment, no settings, no raw messages, no intent bodies) can reach
a brain, a prompt or a thought. What others control (strategy ids and symbols in the statistics and incidents,
reason codes, a trigger's text) enters as data (`untrusted.py`): canonical ids only, the rest counted under
"other (N ids)", text bounded to one line; incidents by their kind, strategy, symbol and codes, never their
free-text titles. The free text that is allowed (a policy's description, an alert's title) passes the secret
scrubber as the context is built."""

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from audit.embedding import embed, features
from audit.store import get_store
from audit.store.rollups import minute_of
from cio_kernel.policy.envelope import StrategistEnvelope
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.redaction import SecretScrubber
from policies.models import PolicyVersion, compact_spec
from strategist import untrusted
from strategist.inputs import PortfolioSummary, RegimeEntry
from strategist.triggers import Trigger

DECISIONS = ("APPROVED", "REJECTED", "RETRY_SAFE")


class _Context(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class PolicyView(_Context):
    version: int
    checksum: str
    spec: dict[str, Any]  # compact: unset limits left out


class DecisionView(_Context):
    window_s: int
    total: int
    by_decision: dict[str, int]
    top_reasons: dict[str, int]
    by_strategy: dict[str, dict[str, int]]
    by_symbol: dict[str, dict[str, int]]


class IncidentView(_Context):
    kind: str
    ts: datetime
    similarity: float
    strategy: str | None
    symbol: str | None
    reason_codes: list[str]


class CycleContext(_Context):
    trigger: str
    trigger_detail: dict[str, Any]
    # Re-derived from a record the broker cannot write (or started in-process); only then may it be auto-approved.
    trigger_verified: bool = False
    # Cached inputs left out, and why (stale, unsealed, out of bounds): in the thought, never in a prompt.
    input_problems: list[str] = []
    at: datetime
    policy: PolicyView
    # The last policy a person (not the Strategist) made active: what the rule brain scales from and returns to.
    baseline: PolicyView
    regime: dict[str, RegimeEntry]
    portfolio: PortfolioSummary | None
    concentration: dict[str, float]
    decisions: DecisionView | None
    similar_incidents: list[IncidentView]
    envelope: dict[str, Any]

    def active_spec(self) -> PolicySpec:
        return PolicySpec.parse(self.policy.spec)

    def baseline_spec(self) -> PolicySpec:
        return PolicySpec.parse(self.baseline.spec)

    def summary(self) -> dict[str, Any]:
        """What a thought keeps of the context (all of it but the two specs, which the versions hold)."""
        data = self.model_dump(mode="json", exclude={"policy", "baseline"})
        return {**data, "policy_version": self.policy.version, "baseline_version": self.baseline.version}


def policy_view(version: PolicyVersion, scrubber: SecretScrubber) -> PolicyView:
    spec = compact_spec(version.parsed_spec)
    if spec.get("description"):
        spec["description"] = untrusted.text(scrubber.text(spec["description"]), untrusted.MAX_DESCRIPTION)
    return PolicyView(version=version.version, checksum=version.checksum, spec=spec)


def decision_view(window_s: int, now: datetime, top: int = 10) -> DecisionView | None:
    """The serving gates' decisions from the start of the minute `window_s` ago: on a minute, the statistics are
    the per-minute rollups alone (audit/store/rollups.py), so a cycle costs the same at any rate of decisions."""
    try:
        stats = get_store().decision_stats(minute_of(now - timedelta(seconds=window_s)), top)
    except Exception:  # the audit store is away: reason without the statistics, and say so in the thought
        return None
    return DecisionView(
        window_s=window_s,
        total=stats.total,
        by_decision={k: v for k, v in stats.by_decision.items() if k in DECISIONS},
        top_reasons=untrusted.code_counts(stats.by_reason),
        by_strategy=untrusted.strategy_counts(stats.by_strategy),
        by_symbol=untrusted.symbol_counts(stats.by_symbol),
    )


def similar_incidents(trigger: Trigger, limit: int = 3) -> list[IncidentView]:
    detail = {k: v for k, v in trigger.detail.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    symbol = trigger.detail.get("symbol") if isinstance(trigger.detail.get("symbol"), str) else None
    title = " ".join(str(v) for v in trigger.detail.values() if isinstance(v, str))
    vector = embed(features(trigger.kind, title, None, symbol, (), detail))
    try:
        found = get_store().similar_incidents(vector, limit)
    except Exception:
        return []
    return [
        IncidentView(
            kind=untrusted.text(i.kind, untrusted.MAX_ID),
            ts=i.ts,
            similarity=round(score, 4),
            strategy=untrusted.strategy(i.strategy_id) if i.strategy_id else None,
            symbol=untrusted.symbol(i.symbol) if i.symbol else None,
            reason_codes=sorted({c for c in _codes(i.detail) if untrusted.code(c)}),
        )
        for i, score in found
    ]


def _codes(detail: Any) -> list[Any]:
    codes = detail.get("reason_codes") if isinstance(detail, dict) else None
    return list(codes) if isinstance(codes, list) else []


def build_context(
    *,
    trigger: Trigger,
    now: datetime,
    active: PolicyVersion,
    baseline: PolicyVersion,
    regime: dict[str, RegimeEntry],
    portfolio: PortfolioSummary | None,
    envelope: StrategistEnvelope,
    stats_window_s: int,
    scrubber: SecretScrubber,
    input_problems: list[str] | None = None,
) -> CycleContext:
    return CycleContext(
        trigger=untrusted.text(trigger.kind, untrusted.MAX_ID),
        trigger_detail=scrubber.value(untrusted.detail(_plain(trigger.detail))),
        trigger_verified=trigger.verified,
        input_problems=list(input_problems or ()),
        at=now,
        policy=policy_view(active, scrubber),
        baseline=policy_view(baseline, scrubber),
        regime=regime,
        portfolio=portfolio,
        concentration=portfolio.concentration() if portfolio is not None else {},
        decisions=decision_view(stats_window_s, now),
        similar_incidents=similar_incidents(trigger),
        envelope=envelope.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """Scalars and small containers of scalars only: a trigger's detail is numbers, labels and symbols."""
    allowed = (str, int, float, bool, type(None))
    plain: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, allowed):
            plain[key] = value
        elif isinstance(value, dict) and all(isinstance(v, allowed) for v in value.values()):
            plain[key] = dict(value)
    return plain
