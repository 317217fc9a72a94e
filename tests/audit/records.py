"""Audit records as gates produce them: real audit events, linked into per-gate chains, and the checkpoints a gate
signs of them."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from audit.records import DecisionRecord, StoredCheckpoint
from cio_kernel.audit_chain import GENESIS, ChainLink
from cio_kernel.audit_checkpoint import AuditCheckpoint
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.identity import strategy_key
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.shadow import SHADOW_AUDIT_PREFIX
from tests.factories import TEST_AUDIT_SIGNER

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
STRATEGIES = ("momentum_pulse", "TA Bot Mean Reversion", "llm-swing")
# How the same strategies are spelled by some of their intents: one strategy each (`strategy_key`).
RESPELLED = ("Momentum Pulse", "ta_bot_mean_reversion", "LLM Swing")


def strategy_of(i: int) -> str:
    return (RESPELLED if i % 5 == 0 else STRATEGIES)[i % 3]


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
        "subject": f"cio.intent.trading.{strategy_of(i).replace(' ', '_')}",
        "strategy_id": strategy_of(i),
        "strategy_key": strategy_key(strategy_of(i)),
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
        "intent": {"signal_id": f"sig-{i}", "strategy_id": strategy_of(i), "quantity": 0.0, "price": 6.5e4},
        "state": {"trading_state": "active", "snapshot_ts": (T0 - timedelta(seconds=3)).isoformat()},
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def chain_of(
    count: int,
    gate_id: str = "gate-a",
    start: int = 0,
    chain: str | None = None,
    shadow: bool = False,
    every: timedelta | None = None,
) -> list[DecisionRecord]:
    """`count` records of one gate's chain, linked exactly as the gate's outbox links them; a shadow gate's
    (`shadow`) are marked and audited on its subjects, as `CIO_GATE_SHADOW` gates do. `every`: decided that far
    apart from T0 on (instead of a quarter second)."""
    chain = chain or f"{gate_id}.1"
    records, prev = [], GENESIS
    for seq, i in enumerate(range(start, start + count), start=1):
        e = event(i, gate_id, shadow=shadow, **({"ts": T0 + every * i + timedelta(microseconds=123)} if every else {}))
        payload = e.model_dump_json().encode()
        subject = f"{SHADOW_AUDIT_PREFIX if shadow else 'cio.audit.decision.'}{KINDS[e.decision]}"
        link = ChainLink.first_after(chain, seq - 1, prev, subject, payload)
        prev = link.hash
        records.append(DecisionRecord.of(e, subject, payload, link))
    return records


# What audit_verify trusts in these tests: the gates' public key.
TRUST = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])


def signed(
    record: DecisionRecord, ts: datetime | None = None, signer: PolicySigner = TEST_AUDIT_SIGNER
) -> AuditCheckpoint:
    """The checkpoint the record's gate signs when this record is its chain's head."""
    assert record.chain is not None and record.seq is not None and record.hash is not None
    when = ts or record.ts + timedelta(seconds=1)
    return AuditCheckpoint.sign(signer, record.chain, record.seq, record.hash, record.gate_id, when)


def stored(checkpoint: AuditCheckpoint) -> StoredCheckpoint:
    return StoredCheckpoint.of(checkpoint)


def relinked(records: list[DecisionRecord], prev: str, first: int | None = None) -> list[DecisionRecord]:
    """What someone who can write the store does after changing records: number them on from `first` (default: the
    first one's sequence number) and recompute every link, so the chain verifies on its own again."""
    out = []
    first = first if first is not None else records[0].seq
    assert first is not None
    for seq, record in enumerate(records, start=first):
        assert record.chain is not None
        link = ChainLink.first_after(record.chain, seq - 1, prev, record.audit_subject, record.payload)
        prev = link.hash
        out.append(replace(record, seq=link.seq, prev_hash=link.prev, hash=link.hash))
    return out


def rewritten(record: DecisionRecord, **event_changes: object) -> DecisionRecord:
    """The record with its event changed (and every field derived from it: nothing but the link gives it away)."""
    changed = record.event().model_copy(update=event_changes)
    payload = changed.model_dump_json().encode()
    subject = f"cio.audit.decision.{KINDS[changed.decision]}"
    return DecisionRecord.of(changed, subject, payload, record.link)
