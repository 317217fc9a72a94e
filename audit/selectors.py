"""Reading the audit trail for people and agents: filters from a query string and free-text search over the
store, whichever backend is configured. The join to the policy behind a decision is `lineage.selectors`."""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from audit.presentation import decision_summary
from audit.records import DecisionRecord
from audit.store import get_store
from audit.store.decisions import MAX_PAGE, DecisionQuery, InvalidCursorError, decode_cursor
from cio_kernel.contracts.identity import IdentityError, strategy_key
from core.numbers import whole_number

FILTERS = ("symbol", "decision", "reason_code", "gate_id", "trace_id", "decision_id", "signal_id")
DECISIONS = ("APPROVED", "REJECTED", "RETRY_SAFE")
SHADOW_CHOICES = {"true": True, "false": False}


class QueryError(ValueError):
    """A filter that cannot be applied; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def decision_query(params: Mapping[str, str]) -> DecisionQuery:
    """`?since=&until=&strategy_id=&symbol=&decision=&reason_code=&policy_version=&gate_id=&trace_id=&decision_id=
    &signal_id=&shadow=&cursor=&limit=` → a query; a clear error for anything that cannot be applied. `strategy_id`
    (or `strategy_key`) finds the strategy under every spelling it used: the store filters by its key. `shadow=true`
    is shadow gates' decisions only, `shadow=false` serving gates' only (docs/audit.md, "Shadow decisions")."""
    values: dict[str, Any] = {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}
    strategy = (params.get("strategy_id") or params.get("strategy_key") or "").strip()
    if strategy:
        try:
            values["strategy_key"] = strategy_key(strategy)
        except IdentityError as exc:
            raise QueryError("strategy_id", str(exc)) from exc
    if "decision" in values:
        values["decision"] = values["decision"].upper()
        if values["decision"] not in DECISIONS:
            raise QueryError("decision", f"must be one of {', '.join(DECISIONS)}")
    shadow = params.get("shadow", "").strip().lower()
    if shadow:
        if shadow not in SHADOW_CHOICES:
            raise QueryError("shadow", "must be true (shadow gates' decisions only) or false (serving gates' only)")
        values["shadow"] = SHADOW_CHOICES[shadow]
    for name in ("since", "until"):
        if params.get(name):
            values[name] = _time(name, params[name])
    if params.get("policy_version"):
        values["policy_version"] = whole_number(params["policy_version"])
        if values["policy_version"] is None:
            raise QueryError("policy_version", "must be a whole number")
    limit = whole_number(params.get("limit") or "50")
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise QueryError("limit", f"must be between 1 and {MAX_PAGE}")
    if params.get("cursor"):
        try:
            decode_cursor(params["cursor"])
        except InvalidCursorError as exc:
            raise QueryError("cursor", str(exc)) from exc
        values["cursor"] = params["cursor"]
    return DecisionQuery(limit=limit, **values)


def decision_page(query: DecisionQuery) -> dict[str, Any]:
    """One page of decisions as REST and MCP answer it: each decision's summary, and the cursor of the next page."""
    page = get_store().find_decisions(query)
    return {"decisions": [decision_summary(r) for r in page.records], "next_cursor": page.next_cursor}


def search(text: str, base: DecisionQuery) -> list[DecisionRecord]:
    """The admin's one search box: the decisions whose trace id, decision id or signal id is `text`."""
    found: dict[str, DecisionRecord] = {}
    for name in ("trace_id", "decision_id", "signal_id"):
        query = replace(base, cursor=None, limit=MAX_PAGE, **{name: text.strip()})
        for record in get_store().find_decisions(query).records:
            found.setdefault(record.decision_id, record)
    return sorted(found.values(), key=lambda r: (r.ts, r.decision_id), reverse=True)


def _time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise QueryError(name, "must be an ISO 8601 time, e.g. 2026-11-02T09:30:00Z") from exc
    if parsed.tzinfo is None:
        raise QueryError(name, "must carry a time zone (Z or +00:00)")
    return parsed
