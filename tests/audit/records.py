"""Audit records as gates produce them: real audit events, linked into per-gate chains."""

from datetime import UTC, datetime, timedelta

from audit.records import DecisionRecord
from cio_kernel.audit_chain import GENESIS, ChainLink
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import Reason

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
STRATEGIES = ("momentum_pulse", "TA Bot Mean Reversion", "llm-swing")
SYMBOLS = ("BTCUSDT", "ETHUSDT")
KINDS = {"APPROVED": "approved", "REJECTED": "rejected", "RETRY_SAFE": "retry_safe"}


def event(i: int, gate_id: str = "gate-a", **overrides: object) -> AuditEvent:
    decision = ("APPROVED", "REJECTED", "REJECTED", "RETRY_SAFE")[i % 4]
    reasons = []
    if decision == "REJECTED":
        reasons = [Reason(code="CONFIDENCE_TOO_LOW", message="low", observed=0.1, limit=0.5)]
        if i % 8 == 1:
            reasons.append(Reason(code="ORDER_NOTIONAL_EXCEEDED", message="big", observed=9e4, limit=5e4))
    elif decision == "RETRY_SAFE":
        reasons = [Reason(code="POLICY_STALE", message="stale")]
    fields: dict = {
        "decision_id": f"{gate_id}-{i:05d}",
        "ts": T0 + timedelta(milliseconds=250 * i, microseconds=123),
        "gate_id": gate_id,
        "subject": f"cio.intent.trading.{STRATEGIES[i % 3].replace(' ', '_')}",
        "strategy_id": STRATEGIES[i % 3],
        "symbol": SYMBOLS[i % 2],
        "action": "buy" if i % 2 else "sell",
        "intent_id": f"sig-{i}",
        "decision": decision,
        "reasons": reasons,
        "policy_version": 1 + i // 10,
        "policy_checksum": "sha256:" + "ab" * 32,
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
        "traceparent": f"00-{i + 1:032x}-{i + 1:016x}-01",
        "latency_us": 40 + i,
        "signal_subject": "signals.trading.x" if decision == "APPROVED" else None,
        "intent": {"signal_id": f"sig-{i}", "strategy_id": STRATEGIES[i % 3], "quantity": 0.0, "price": 6.5e4},
        "state": {"trading_state": "active", "snapshot_ts": (T0 - timedelta(seconds=3)).isoformat()},
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def chain_of(count: int, gate_id: str = "gate-a", start: int = 0, chain: str | None = None) -> list[DecisionRecord]:
    """`count` records of one gate's chain, linked exactly as the gate's outbox links them."""
    chain = chain or f"{gate_id}.1"
    records, prev = [], GENESIS
    for seq, i in enumerate(range(start, start + count), start=1):
        e = event(i, gate_id)
        payload = e.model_dump_json().encode()
        subject = f"cio.audit.decision.{KINDS[e.decision]}"
        link = ChainLink.first_after(chain, seq - 1, prev, subject, payload)
        prev = link.hash
        records.append(DecisionRecord.of(e, subject, payload, link))
    return records
