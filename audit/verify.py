"""Checking the audit trail against its hash chains and the gates' signed checkpoints (`manage.py audit_verify`).

Every chain is read in sequence order and each record is checked on its own (its hash recomputed from the stored
payload and link; its filterable fields re-derived from the payload) and against its predecessor (sequence
numbers without gaps or repeats, each `prev` the hash before it). That finds an edit made without care; it cannot
find one made with care, because the links are unkeyed: someone who can write the store can change a record and
recompute every link after it.

What they cannot do is sign. Each gate signs its chain's head (`cio_kernel.audit_checkpoint`) with a key only
gates hold and publishes it outside the store; the latest one per chain is read from JetStream by the command, and
older ones are kept in the store. A record at a checkpoint's sequence number must carry exactly the hash the gate
signed, and since each hash covers all the events before it, a checkpoint vouches for the whole chain up to it:
a record rewritten and relinked, removed, inserted or reordered anywhere before it changes that hash. Records cut
from the end fall short of the latest checkpoint. Records past the latest checkpoint (the last second of a busy
gate, or records someone appended) are proven by the next checkpoint; the command waits a little for it, and
reports the ones no checkpoint ever covers.

Retention may remove a chain's oldest records (`audit.retention`), always up to a checkpoint; verification then
starts from that checkpoint, which must be old enough to have been the retention limit (`retained_from`). Without
a retention period, a chain must start at its first record.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import takewhile

from audit.records import DecisionRecord
from audit.store.checkpoints import AuditTrail
from cio_kernel.audit_chain import GENESIS
from cio_kernel.audit_checkpoint import AuditCheckpoint
from cio_kernel.policy.signing import PolicyVerifier

_NOT_SIGNED = (
    "the stored chain is not what the gate signed at this position: a record here or before it was rewritten, "
    "removed, inserted or reordered, and the links recomputed"
)
PROBLEMS = ("hash", "fields", "gap", "repeat", "link", "signed", "tail", "unsigned", "forged", "fork", "unchained")


@dataclass(frozen=True, slots=True)
class Finding:
    chain: str | None
    seq: int | None
    decision_id: str | None
    problem: str  # one of PROBLEMS
    detail: str


@dataclass
class Report:
    chains: int = 0
    records: int = 0
    vouched: int = 0  # records a trusted checkpoint vouches for (in chains without findings)
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


class ChainCheck:
    """One chain, walked in sequence order. Checkpoints go in first; records may be fed in more than one go (the
    ones stored since), and checkpoints added later are checked against the records already walked past the
    highest checkpoint then known."""

    def __init__(
        self,
        chain: str,
        keys: PolicyVerifier | None,
        retained_from: datetime | None = None,
        expected_head: int | None = None,
    ) -> None:
        self.chain = chain
        self._keys = keys
        self._retained_from = retained_from
        self._expected_head = expected_head
        self.signed: dict[int, AuditCheckpoint] = {}
        self.findings: list[Finding] = []
        self.records = 0
        self.last_seq = 0
        self.from_seq = 1  # the first sequence number verified (past a retention checkpoint: the one after it)
        self._started = False
        self._expected_seq, self._prev = 1, GENESIS
        self._unsigned: dict[int, str] = {}  # records past the highest checkpoint: seq -> hash

    @property
    def top(self) -> int:
        return max(self.signed, default=0)

    @property
    def pending(self) -> bool:
        """Is something here waiting: records for a checkpoint, or a checkpoint for its records?"""
        return bool(self._unsigned) or (self.top > self.last_seq and not self._all_retired())

    def _all_retired(self) -> bool:
        """Nothing stored, and the latest checkpoint is one retention may have removed everything up to."""
        anchor = self.signed.get(self.top)
        return not self._started and anchor is not None and self._retention_allows(anchor)

    def add_checkpoint(self, checkpoint: AuditCheckpoint | None, where: str, seq: int | None = None) -> None:
        if checkpoint is None or checkpoint.chain != self.chain:
            self._find(seq, None, "forged", f"a checkpoint in {where} is unreadable or names another chain/position")
            return
        seq = checkpoint.seq
        if not checkpoint.verified_by(self._keys):
            self._find(seq, None, "forged", f"a checkpoint in {where} does not verify with a trusted gate key")
            return
        known = self.signed.get(seq)
        if known is not None:
            if known.hash != checkpoint.hash:
                self._find(seq, None, "fork", "two signed checkpoints name different events at this position")
            elif checkpoint.ts < known.ts:
                self.signed[seq] = checkpoint  # the earliest signature of a position anchors retention soonest
            return
        self.signed[seq] = checkpoint
        walked = self._unsigned.get(seq)
        if walked is not None and walked != checkpoint.hash:
            self._find(seq, None, "signed", _NOT_SIGNED)
        if walked is not None or seq >= self.last_seq:
            self._unsigned = {s: h for s, h in self._unsigned.items() if s > seq}

    def feed(self, records: Iterable[DecisionRecord]) -> None:
        for record in records:
            self.records += 1
            seq = record.seq or 0
            if not self._started:
                self._start(seq)
            here = (seq, record.decision_id)
            link = record.link
            if link is None or not link.matches(record.audit_subject, record.payload):
                self._find(*here, "hash", "the stored event or its link was changed")
            elif not record.derived_fields_match():
                self._find(*here, "fields", "a stored field no longer says what the event says")
            if seq < self._expected_seq:
                self._find(*here, "repeat", f"sequence {seq} appears again (a record inserted)")
            elif seq > self._expected_seq:
                first = self._expected_seq
                missing = f"{first}" if seq == first + 1 else f"{first}–{seq - 1}"
                self._find(*here, "gap", f"records {missing} are missing (removed)")
            if record.prev_hash != self._prev and seq == self._expected_seq:
                self._find(*here, "link", "does not follow the record before it")
            if seq >= self._expected_seq:
                self._expected_seq, self._prev = seq + 1, record.hash or ""
            self.last_seq = max(self.last_seq, seq)
            signed = self.signed.get(seq)
            if signed is not None:
                if record.hash != signed.hash:
                    self._find(*here, "signed", _NOT_SIGNED)
            elif seq > self.top:
                self._unsigned.setdefault(seq, record.hash or "")

    def _start(self, first_seq: int) -> None:
        """Where the chain's verification starts: its first record, or a retention checkpoint just before the first
        stored record when one old enough vouches for what was removed."""
        self._started = True
        anchor = self.signed.get(first_seq - 1)
        if first_seq > 1 and anchor is not None and self._retention_allows(anchor):
            self._expected_seq, self._prev, self.from_seq = first_seq, anchor.hash, first_seq

    def _retention_allows(self, anchor: AuditCheckpoint) -> bool:
        return self._retained_from is not None and anchor.ts <= self._retained_from

    def finish(self) -> list[Finding]:
        findings = list(self.findings)
        top = self.top
        if not self._started:
            if top and not self._all_retired():
                findings.append(self._finding(0, None, "tail", f"the gate signed {top} events; none stored"))
        elif top > self.last_seq:
            detail = f"the gate signed {top} events; the last stored is {self.last_seq} (cut from the end)"
            findings.append(self._finding(self.last_seq, None, "tail", detail))
        if self._unsigned:
            low, high = min(self._unsigned), max(self._unsigned)
            span = f"{low}" if low == high else f"{low}–{high}"
            why = "no gate signed this chain" if not self.signed else "past the gate's last signed checkpoint"
            findings.append(self._finding(low, None, "unsigned", f"records {span} are not vouched for ({why})"))
        head = self._expected_head
        if head is not None and self.last_seq < head:
            findings.append(
                self._finding(self.last_seq, None, "tail", f"the gate reported {head} events; {self.last_seq} stored")
            )
        return findings

    @property
    def vouched(self) -> int:
        return max(0, min(self.last_seq, self.top) - self.from_seq + 1) if self._started else 0

    def _find(self, seq: int | None, decision_id: str | None, problem: str, detail: str) -> None:
        self.findings.append(self._finding(seq, decision_id, problem, detail))

    def _finding(self, seq: int | None, decision_id: str | None, problem: str, detail: str) -> Finding:
        return Finding(self.chain, seq, decision_id, problem, detail)


class StoreVerification:
    """Every chain in the store, against the checkpoints stored with it and the latest ones read from outside it
    (`outside`, by chain). `catch_up` feeds what arrived since (records the ingest stored, newer checkpoints), so a
    live trail can be verified without calling the last moments of every busy chain unproven."""

    def __init__(
        self,
        store: AuditTrail,
        keys: PolicyVerifier | None,
        retained_from: datetime | None = None,
        heads: Mapping[str, int] | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._retained_from = retained_from
        self._heads = {chain: head for chain, head in (heads or {}).items() if head}
        self.checks: dict[str, ChainCheck] = {}
        self._extra: list[Finding] = []

    def run(self, outside: Mapping[str, AuditCheckpoint] | None = None, unreadable: Iterable[str] = ()) -> None:
        outside = outside or {}
        for where in unreadable:
            self._extra.append(Finding(None, None, None, "forged", f"an unreadable checkpoint on {where}"))
        chains = set(self._store.chains()) | set(self._store.checkpoint_chains()) | set(outside) | set(self._heads)
        for chain in sorted(chains):
            check = ChainCheck(chain, self._keys, self._retained_from, self._heads.get(chain))
            for stored in self._store.checkpoints(chain):
                check.add_checkpoint(stored.checkpoint(), "the store", stored.seq)
            if chain in outside:
                check.add_checkpoint(outside[chain], "the checkpoint stream")
            check.feed(self._store.chain_records(chain))
            self.checks[chain] = check

    def pending(self) -> list[str]:
        return [chain for chain, check in self.checks.items() if check.pending]

    def catch_up(self, outside: Mapping[str, AuditCheckpoint]) -> None:
        """Newer checkpoints, and the records the ingest stored since, up to the newest checkpoint only: records
        that arrived after the first pass wait for the next run, or a busy gate would never let this one end."""
        for chain in self.pending():
            check = self.checks[chain]
            latest = outside.get(chain)
            if latest is not None and latest.seq not in check.signed:
                check.add_checkpoint(latest, "the checkpoint stream")
            check.feed(up_to(check.top, self._store.chain_records(chain, check.last_seq)))

    def report(self, unchained_limit: int = 100) -> Report:
        report = Report(findings=list(self._extra))
        for check in self.checks.values():
            findings = check.finish()
            report.chains += 1
            report.records += check.records
            report.vouched += 0 if findings else check.vouched
            report.findings += findings
        for record in self._store.unchained_decisions(unchained_limit):
            report.findings.append(
                Finding(None, None, record.decision_id, "unchained", "a decision without a chain link (not provable)")
            )
        return report


def up_to(seq: int, records: Iterable[DecisionRecord]) -> Iterator[DecisionRecord]:
    """Records in sequence order, up to and including `seq`."""
    return takewhile(lambda record: (record.seq or 0) <= seq, records)


def verify_store(
    store: AuditTrail,
    keys: PolicyVerifier | None,
    outside: Mapping[str, AuditCheckpoint] | None = None,
    heads: Mapping[str, int] | None = None,
    retained_from: datetime | None = None,
    unchained_limit: int = 100,
) -> Report:
    """One pass over the store, nothing awaited: every chain against its checkpoints (stored, and `outside`)."""
    verification = StoreVerification(store, keys, retained_from, heads)
    verification.run(outside)
    return verification.report(unchained_limit)
