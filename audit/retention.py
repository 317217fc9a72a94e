"""Retention: removing a chain's oldest decisions without breaking its verification (`manage.py audit_prune`).

Records go only up to a gate's signed checkpoint that is older than the retention period, the newest such one of
each chain; verification then starts from that checkpoint (audit/verify.py) and accepts no other start. Before
anything goes, the records to remove are verified up to that checkpoint: a chain with any finding there keeps
everything, because those records are the evidence. Someone who removes records without this command can remove
no more than retention would have, or verification finds the gap.
"""

from dataclasses import dataclass, field
from datetime import datetime

from audit.store.checkpoints import AuditTrail
from audit.verify import ChainCheck, Finding, up_to
from cio_kernel.audit_checkpoint import AuditCheckpoint
from cio_kernel.policy.signing import PolicyVerifier


@dataclass
class Pruned:
    chain: str
    through: AuditCheckpoint | None  # the checkpoint the chain now starts after (None: nothing old enough)
    removed: int = 0
    refused: list[Finding] = field(default_factory=list)  # why nothing was removed


def prune(store: AuditTrail, keys: PolicyVerifier, retained_from: datetime, dry_run: bool = False) -> list[Pruned]:
    """Remove every chain's records up to its newest trusted checkpoint signed at or before `retained_from`."""
    outcomes = []
    for chain in store.chains():
        stored = store.checkpoints(chain)
        trusted = [c for s in stored if (c := s.checkpoint()) is not None and c.verified_by(keys)]
        old_enough = [c for c in trusted if c.ts <= retained_from]
        if not old_enough:
            continue
        anchor = max(old_enough, key=lambda c: c.seq)
        check = ChainCheck(chain, keys, retained_from)
        for s in stored:
            check.add_checkpoint(s.checkpoint(), "the store", s.seq)
        check.feed(up_to(anchor.seq, store.chain_records(chain)))
        if check.records == 0 or check.from_seq > anchor.seq:
            continue  # already removed through it
        outcome = Pruned(chain, anchor, refused=list(check.findings))
        if check.last_seq < anchor.seq:
            outcome.refused.append(
                Finding(chain, check.last_seq, None, "tail", f"the records up to {anchor.seq} are not all stored")
            )
        if not outcome.refused and dry_run:
            outcome.removed = check.records
        outcomes.append(outcome)
    if dry_run:
        return outcomes
    # Every chain verified first, so that whole days whose records all may go are removed at once (PostgreSQL's
    # daily partitions); the rest record by record.
    ready = {o.chain: o for o in outcomes if not o.refused and o.through is not None}
    dropped = store.drop_covered({chain: o.through.seq for chain, o in ready.items()}, retained_from.date())
    for chain, o in ready.items():
        o.removed = dropped.get(chain, 0) + store.prune_chain(chain, o.through.seq)
    return outcomes
