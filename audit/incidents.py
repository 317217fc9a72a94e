"""Institutional memory: what a risk officer would want to find again, recorded as incidents with an embedding
(`audit.embedding`) so "what happened last time it looked like this?" is one similarity search.

Recorded today: bursts of rejections for one strategy (seen by the ingest), limit breaches (a gate tripping a
drawdown or daily-loss latch, from `cio.risk.latch`), trading-state changes (the kill switch and its
relatives), policy rollbacks and latch releases (from the control plane's policy events), gates gone silent or not
running the active policy (the control plane's watch, outages/watch.py). Incident ids are
derived from what happened, so the same incident recorded twice (two ingest processes, a redelivery) is one."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from audit.embedding import embed, features
from audit.records import DecisionRecord, Incident
from audit.store import get_store
from cio_kernel.contracts.latch import LatchNotice
from cio_kernel.shadow import is_shadow_subject

log = logging.getLogger(__name__)

BURST = "rejection_burst"
LIMIT_BREACH = "limit_breach"
TRADING_STATE = "trading_state"
ROLLBACK = "rollback"
LATCH_RELEASE = "latch_release"
# The control plane's watch over the gates (outages/watch.py): each also opens a case officers work through.
GATE_SILENT = "gate_silent"
POLICY_UNCONFIRMED = "policy_unconfirmed"


class UnknownIncidentError(LookupError):
    pass


def make(
    incident_id: str,
    kind: str,
    title: str,
    ts: datetime,
    detail: dict[str, Any],
    strategy_id: str | None = None,
    symbol: str | None = None,
    trace_id: str | None = None,
    reason_codes: Iterable[str] = (),
) -> Incident:
    vector = embed(features(kind, title, strategy_id, symbol, reason_codes, detail))
    detail = {**detail, "reason_codes": sorted(set(reason_codes))} if reason_codes else detail
    return Incident(incident_id, ts, kind, title, detail, strategy_id, symbol, trace_id, vector)


def as_dict(incident: Incident) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "ts": incident.ts,
        "kind": incident.kind,
        "title": incident.title,
        "detail": incident.detail,
        "strategy_id": incident.strategy_id,
        "symbol": incident.symbol,
        "trace_id": incident.trace_id,
    }


def scored_dicts(found: Iterable[tuple[Incident, float]], digits: int) -> list[dict[str, Any]]:
    """Incidents from `similar` as REST and MCP show them: each with its similarity, rounded to `digits`."""
    return [{**as_dict(incident), "similarity": round(score, digits)} for incident, score in found]


class RejectionBurstDetector:
    """`threshold` rejections of one strategy within one `window_s` bucket of decision time make one incident.
    Buckets are fixed (decision time // window), so the incident id is the same wherever it is detected; a burst
    split across two ingest processes may go unseen by both (documented)."""

    def __init__(self, threshold: int = 20, window_s: float = 60.0) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self._counts: dict[tuple[str, int], list[DecisionRecord]] = defaultdict(list)
        self._reported: set[tuple[str, int]] = set()

    def observe(self, records: Sequence[DecisionRecord]) -> list[Incident]:
        found = []
        for record in records:
            if record.decision != "REJECTED" or not record.strategy_key or is_shadow_subject(record.audit_subject):
                # By key: respelling an id neither splits a burst nor names an incident with free text. A shadow
                # gate's rejections (docs/deploy.md, Shadow mode) stopped nothing: no incident.
                continue
            key = (record.strategy_key, int(record.ts.timestamp() // self.window_s))
            if key in self._reported:
                continue
            bucket = self._counts[key]
            bucket.append(record)
            if len(bucket) >= self.threshold:
                self._reported.add(key)
                found.append(self._incident(key, self._counts.pop(key)))
        self._forget_old()
        return found

    def _incident(self, key: tuple[str, int], rejections: list[DecisionRecord]) -> Incident:
        strategy_id, bucket = key
        codes = [code for r in rejections for code in r.reason_codes]
        top = max(set(codes), key=codes.count) if codes else "?"
        symbols = {r.symbol for r in rejections if r.symbol}
        return make(
            f"burst-{strategy_id}-{bucket}",
            BURST,
            f"{len(rejections)} rejections of {strategy_id} within {self.window_s:g} s, mostly {top}",
            rejections[0].ts,
            {
                "rejections": len(rejections),
                "window_s": self.window_s,
                "first_decision_id": rejections[0].decision_id,
                "policy_versions": sorted({r.policy_version for r in rejections if r.policy_version is not None}),
            },
            strategy_id=strategy_id,
            symbol=symbols.pop() if len(symbols) == 1 else None,
            trace_id=rejections[0].trace_id,
            reason_codes=codes,
        )

    def _forget_old(self) -> None:
        if len(self._counts) + len(self._reported) < 10_000:
            return
        newest = max((bucket for _, bucket in [*self._counts, *self._reported]), default=0)
        self._counts = defaultdict(list, {k: v for k, v in self._counts.items() if k[1] >= newest - 2})
        self._reported = {k for k in self._reported if k[1] >= newest - 2}


def from_latch_notice(notice: LatchNotice) -> Incident | None:
    if notice.event != "tripped":
        return None
    kind_, scope, *rest = notice.latch_id.split(":")
    key = rest[0] if rest else "*"
    return make(
        f"latch-{notice.latch_id}-{int(notice.at)}",
        LIMIT_BREACH,
        f"{kind_.replace('_', ' ')} limit breached ({scope} {key}): reducing-only until released",
        datetime.fromtimestamp(notice.at, UTC),
        {"latch_id": notice.latch_id, "by": notice.by},
        strategy_id=key if scope == "strategy" else None,
        reason_codes=[f"{kind_.upper()}_LATCHED"],
    )


def record(incident: Incident | None) -> None:
    """Store it; a failure is logged, never raised (the act it describes has happened either way)."""
    if incident is None:
        return
    try:
        get_store().insert_incident(incident)
    except Exception:
        log.exception("incident %s could not be recorded", incident.incident_id)


def similar(
    incident_id: str | None = None, text: str | None = None, kind: str | None = None, limit: int = 5
) -> list[tuple[Incident, float]]:
    """The incidents most like a stored one (itself excluded) or like a free-text description."""
    store = get_store()
    if incident_id:
        anchor = store.get_incident(incident_id)
        if anchor is None:
            raise UnknownIncidentError(f"no incident {incident_id!r}")
        found = store.similar_incidents(anchor.embedding, limit + 1, kind)
        return [(i, s) for i, s in found if i.incident_id != incident_id][:limit]
    vector = embed(features(kind or "", text or ""))
    return store.similar_incidents(vector, limit, kind)
