"""What the cockpit shows, panel by panel, each read on its own: a backend that is away (Redis, the audit store, the
database) costs the panels that read it, each with its own error text, never the page.

Every panel is `{"ok", "error", "source", "data_ts", "data"}`: `source` says where its numbers come from (shown on
the page, docs/cockpit.md), `data_ts` how old they are (the snapshot's or the heartbeat's own time, or when this
read was made when the data carries none). `snapshot()` is the one read behind the page, the JSON endpoint and the
websocket pushes, so all three show the same thing."""

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from alerting import selectors as alert_selectors
from audit.presentation import decision_summary
from audit.store import get_store
from audit.store.decisions import MAX_PAGE, DecisionQuery
from cio_kernel.policy.spec import PolicySpec, TradingState
from cio_kernel.redaction import redact_text
from core.redis_clients import sync_redis
from outages import selectors as incident_selectors
from policies.live import read_gate_heartbeats
from policies.models import PolicyVersion, Status
from policies.selectors import active_version, release_requests, risk_latch_state
from strategist.inputs import read_portfolio
from strategist.models import Cycle

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60  # the live chart: one bar per second over the last minute
STATS_WINDOW = timedelta(minutes=5)  # per strategy, top reasons
RECENT_DECISIONS = 20


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts is not None else None


def _panel(source: str, read: Callable[[], tuple[Any, datetime | None]], now: datetime) -> dict[str, Any]:
    try:
        data, data_ts = read()
    except Exception as exc:  # each panel fails alone, saying why; the rest of the page stands
        error = redact_text(f"{source} is unavailable: {type(exc).__name__}: {str(exc)[:300]}")  # no credentials
        log.warning("cockpit: %s", error)
        return {
            "ok": False,
            "error": error,
            "source": source,
            "data_ts": None,
            "data": None,
        }
    return {"ok": True, "error": "", "source": source, "data_ts": _iso(data_ts or now), "data": data}


# -- trading state -------------------------------------------------------------------------------------------------
def _state_of(value: TradingState | None) -> str:
    return (value or TradingState.ACTIVE).value


def trading_states(spec: PolicySpec) -> list[dict[str, str]]:
    """Every scope the policy names, global first, each with its state (unset is active)."""
    rows = [{"scope": "global", "key": "", "state": spec.global_rules.trading_state.value}]
    rows += [{"scope": "strategy", "key": k, "state": _state_of(r.trading_state)} for k, r in spec.strategies.items()]
    rows += [{"scope": "symbol", "key": k, "state": _state_of(r.trading_state)} for k, r in spec.symbols.items()]
    return rows


def _release_requests() -> list[dict[str, Any]]:
    """Global releases asked for by one officer and waiting for a second (policies.services._global_release)."""
    return [
        {"version": p.version, "by": str(p.proposed_by or ""), "at": _iso(p.proposed_at), "rationale": p.rationale}
        for p in release_requests().distinct()
    ]


def _trading() -> tuple[Any, datetime | None]:
    active = active_version()
    pending = PolicyVersion.objects.filter(pending_state__isnull=False).order_by("version")
    data = {
        "version": active.version if active else None,
        "rows": trading_states(active.parsed_spec) if active else [],
        "pending": [{"version": p.version, **(p.pending_state or {})} for p in pending],
        "release_requests": _release_requests(),
        "second_officer": bool(settings.CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER),
    }
    return data, None  # read now: what the control plane holds, not how long ago it changed


# -- gates -----------------------------------------------------------------------------------------------------------
def _gates(now: datetime) -> Callable[[], tuple[Any, datetime | None]]:
    def read() -> tuple[Any, datetime | None]:
        beats = read_gate_heartbeats()  # raises when Redis is away (the admin's helper would show "no gates")
        gates = [
            {
                "gate_id": b.gate_id,
                "age_s": round((now - b.ts).total_seconds(), 1),
                "policy_version": b.policy_version,
                "trading_state": b.trading_state,
                "latches": b.latches,
                "shed": b.counters.shed,
                "approved": b.counters.approved,
                "rejected": b.counters.rejected,
                "retry_safe": b.counters.retry_safe,
            }
            for b in beats.live
        ]
        unverified = [{"gate_id": u.gate_id, "problem": u.problem} for u in beats.unverified]
        newest = max((b.ts for b in beats.live), default=None)
        return {"gates": gates, "unverified": unverified}, newest

    return read


# -- the book: exposure, daily loss, drawdown -------------------------------------------------------------------
def _fraction(value: float, limit: float | None) -> float | None:
    return round(value / limit, 4) if limit else None


def book(summary: Any, spec: PolicySpec | None, latches: list[Any]) -> dict[str, Any]:
    """Exposure per symbol and in total against the limits of the active policy, and the daily loss and drawdown
    against theirs with the latches that hold: what the gates would compare, from the last snapshot."""
    rules = spec.global_rules if spec else None

    def symbol_limit(symbol: str) -> float | None:
        if spec is None:
            return None
        own = spec.symbols[symbol].max_symbol_exposure_usd if symbol in spec.symbols else None
        return own if own is not None else spec.global_rules.max_symbol_exposure_usd

    total_limit = rules.max_total_exposure_usd if rules else None
    symbols = [
        {"symbol": s, "usd": usd, "limit": symbol_limit(s), "fraction": _fraction(usd, symbol_limit(s))}
        for s, usd in summary.exposure_usd.items()
    ]
    loss = max(0.0, -summary.daily_pnl_usd) if summary.daily_pnl_usd is not None else None
    loss_limit = rules.max_daily_loss_usd if rules else None
    pct_limit = rules.max_daily_loss_pct if rules else None
    return {
        "equity_usd": summary.equity_usd,
        "total": {
            "usd": summary.gross_exposure_usd,
            "limit": total_limit,
            "fraction": _fraction(summary.gross_exposure_usd, total_limit),
        },
        "symbols": symbols,
        "daily_loss": {
            "usd": loss,
            "limit_usd": loss_limit,
            "fraction": _fraction(loss, loss_limit) if loss is not None else None,
            "limit_pct": pct_limit,
        },
        "drawdown": {
            "pct": summary.drawdown_pct,
            "limit_pct": rules.max_drawdown_pct if rules else None,
            "fraction": _fraction(summary.drawdown_pct, rules.max_drawdown_pct if rules else None),
        },
        "latches": [
            {
                "id": r.id,
                "kind": str(r.kind),
                "scope": str(r.scope),
                "key": r.key,
                "observed": r.observed,
                "limit": r.limit,
                "tripped_at": r.tripped_at,
            }
            for r in latches
        ],
    }


def _book(now: datetime) -> tuple[Any, datetime | None]:
    client = sync_redis(settings.CIO_STRATEGIST_REDIS_URL, 1)
    try:
        # Any age: the page shows how old it is rather than hiding an old book.
        summary = read_portfolio(client, math.inf, now)
    finally:
        client.close()
    latches = risk_latch_state(active_only=True)[0]
    if summary is None:
        return {"missing": "no portfolio snapshot has been stored yet", "latches": []}, None
    active = active_version()
    return book(summary, active.parsed_spec if active else None, latches), summary.ts


# -- decisions ---------------------------------------------------------------------------------------------------
def percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def per_second(records: list[Any], now: datetime) -> list[dict[str, int]]:
    """The last `RATE_WINDOW_S` seconds, oldest first: approved / rejected / retry-safe decided in each."""
    start = int(now.timestamp()) - RATE_WINDOW_S + 1
    buckets = [{"t": start + i, "APPROVED": 0, "REJECTED": 0, "RETRY_SAFE": 0} for i in range(RATE_WINDOW_S)]
    for r in records:
        i = int(r.ts.timestamp()) - start
        if 0 <= i < RATE_WINDOW_S and r.decision in buckets[i]:
            buckets[i][r.decision] += 1
    return buckets


def _decisions(now: datetime) -> Callable[[], tuple[Any, datetime | None]]:
    def read() -> tuple[Any, datetime | None]:
        store = get_store()
        page = store.find_decisions(DecisionQuery(since=now - timedelta(seconds=RATE_WINDOW_S), limit=MAX_PAGE))
        records = page.records
        stats = store.decision_stats(now - STATS_WINDOW, top=10)
        latencies = sorted(r.latency_us for r in records)
        data = {
            "per_second": per_second(records, now),
            "truncated": page.next_cursor is not None,  # more than MAX_PAGE in the minute: the newest only
            "latency_us": {
                "p50": percentile(latencies, 0.5),
                "p95": percentile(latencies, 0.95),
                "p99": percentile(latencies, 0.99),
                "n": len(latencies),
            },
            "by_strategy": stats.by_strategy,
            "by_reason": stats.by_reason,
            "by_decision": stats.by_decision,
            "recent": [decision_summary(r) for r in records[:RECENT_DECISIONS]],
        }
        return data, records[0].ts if records else None

    return read


# -- alerts and incidents ----------------------------------------------------------------------------------------
def open_alerts(limit: int = 50) -> list[dict[str, Any]]:
    """Warning and critical alerts nobody acknowledged among the newest `limit` (`alerting.selectors.open_alerts`)."""
    return [
        {
            "alert_id": a.alert_id,
            "ts": _iso(a.received_at),
            "severity": a.severity,
            "source": a.source,
            "title": a.title,
            "repeats": a.repeats,
            "escalations": a.escalations,
        }
        for a in alert_selectors.open_alerts(limit)
    ]


def open_incidents(limit: int = 20) -> list[dict[str, Any]]:
    """Incident cases not resolved, open or acknowledged, with their owner (`outages.selectors.open_incidents`)."""
    return [
        {
            "incident_id": i.incident_id,
            "ts": _iso(i.detected_at),
            "since": _iso(i.since),
            "kind": i.kind,
            "gate_id": i.gate_id,
            "severity": i.severity,
            "title": i.title,
            "status": i.status,
            "owner": i.owner,
        }
        for i in incident_selectors.open_incidents(limit)
    ]


def _alerts() -> tuple[Any, datetime | None]:
    return {"alerts": open_alerts(), "incidents": open_incidents()}, None  # read now


# -- the Strategist --------------------------------------------------------------------------------------------
def _strategist() -> tuple[Any, datetime | None]:
    cycle = Cycle.objects.select_related("proposal").first()
    waiting = PolicyVersion.objects.filter(status=Status.PROPOSED).select_related("proposed_by")[:20]
    latest = None
    if cycle is not None:
        latest = {
            "cycle_id": cycle.cycle_id,
            "trigger": cycle.trigger,
            "outcome": cycle.outcome,
            "brain": cycle.brain,
            "rationale": cycle.rationale[:2000],
            "started_at": _iso(cycle.started_at),
            "proposal": cycle.proposal.version if cycle.proposal else None,
        }
    proposals = [
        {
            "version": p.version,
            "proposer_kind": p.proposer_kind,
            "by": str(p.proposed_by or ""),
            "at": _iso(p.proposed_at),
            "rationale": p.rationale[:300],
        }
        for p in waiting
    ]
    return {"latest": latest, "proposals": proposals}, cycle.started_at if cycle else None


def snapshot(now: datetime | None = None) -> dict[str, Any]:
    """Every panel, read now. Sync: runs Redis reads with their own event loop (policies.live), so an async
    caller runs it in a thread (`database_sync_to_async`)."""
    now = now or datetime.now(UTC)
    return {
        "now": _iso(now),
        "panels": {
            "trading": _panel("the policy database", _trading, now),
            "gates": _panel("Redis (gate heartbeats)", _gates(now), now),
            "book": _panel("Redis (portfolio snapshot, latches)", lambda: _book(now), now),
            "decisions": _panel("the audit store", _decisions(now), now),
            "alerts": _panel("the audit store (alerts) and the incident cases", _alerts, now),
            "strategist": _panel("the Strategist's database", _strategist, now),
        },
    }
