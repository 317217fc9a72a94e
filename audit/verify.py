"""Checking the audit trail against its hash chains (`python manage.py audit_verify`).

Every chain is read in sequence order and each record is checked on its own (its hash recomputed from the stored
payload and link; its filterable fields re-derived from the payload) and against its predecessor (sequence
numbers without gaps or repeats, each `prev` the hash before it). An edited record fails its own check; a removed
one leaves a gap; an inserted or reordered one breaks the sequence or the links around it. A cut at the end of
a chain is found only against a known head, such as the `audit_chain`/`audit_seq` a gate reports in its heartbeat.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from audit.records import DecisionRecord
from audit.store.base import AuditStore
from cio_kernel.audit_chain import GENESIS


@dataclass(frozen=True, slots=True)
class Finding:
    chain: str | None
    seq: int | None
    decision_id: str | None
    problem: str  # hash | fields | gap | repeat | link | tail | unchained
    detail: str


@dataclass
class Report:
    chains: int = 0
    records: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


def verify_chain(chain: str, records: Iterable[DecisionRecord], expected_head: int | None = None) -> Report:
    report = Report(chains=1)
    expected_seq, prev_hash = 1, GENESIS
    last_seq = 0
    for record in records:
        report.records += 1
        seq = record.seq or 0
        here = (chain, seq, record.decision_id)
        link = record.link
        if link is None or not link.matches(record.audit_subject, record.payload):
            report.findings.append(Finding(*here, "hash", "the stored event or its link was changed"))
        elif not record.derived_fields_match():
            report.findings.append(Finding(*here, "fields", "a stored field no longer says what the event says"))
        if seq < expected_seq:
            report.findings.append(Finding(*here, "repeat", f"sequence {seq} appears again (a record inserted)"))
        elif seq > expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}–{seq - 1}"
            report.findings.append(Finding(*here, "gap", f"records {missing} are missing (removed)"))
        if record.prev_hash != prev_hash and seq == expected_seq:
            report.findings.append(Finding(*here, "link", "does not follow the record before it"))
        if seq >= expected_seq:
            expected_seq, prev_hash = seq + 1, record.hash or ""
        last_seq = max(last_seq, seq)
    if expected_head is not None and last_seq < expected_head:
        report.findings.append(
            Finding(chain, last_seq, None, "tail", f"the gate reported {expected_head} events; {last_seq} stored")
        )
    return report


def verify_store(store: AuditStore, heads: Mapping[str, int] | None = None, unchained_limit: int = 100) -> Report:
    """Every chain in the store (and, given `heads`, each against the head its gate reported)."""
    total = Report()
    chains = store.chains()
    for chain in chains:
        part = verify_chain(chain, store.chain_records(chain), (heads or {}).get(chain))
        total.chains += 1
        total.records += part.records
        total.findings += part.findings
    for chain, head in (heads or {}).items():
        if head and chain not in chains:
            total.findings.append(Finding(chain, 0, None, "tail", f"the gate reported {head} events; none stored"))
    for record in store.unchained_decisions(unchained_limit):
        total.findings.append(
            Finding(None, None, record.decision_id, "unchained", "a decision without a chain link (not provable)")
        )
    return total
