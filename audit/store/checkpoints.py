"""The checkpoint log: the gates' signed chain heads, kept once per (chain, seq) exactly as published, and the
trail they vouch for (the decision log with them), which is what verification and retention work on."""

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from audit.records import StoredCheckpoint
from audit.store.decisions import DecisionLog


@runtime_checkable
class CheckpointLog(Protocol):
    def insert_checkpoints(self, checkpoints: Sequence[StoredCheckpoint]) -> int:
        """Store each checkpoint unless one for its (chain, seq) is stored; durable when this returns. Returns how
        many were new. Raises `StoreUnavailableError` when nothing can be promised."""
        ...

    def checkpoints(self, chain: str) -> list[StoredCheckpoint]:
        """The stored checkpoints of one chain, in sequence order."""
        ...

    def checkpoint_chains(self) -> list[str]: ...


@runtime_checkable
class AuditTrail(DecisionLog, CheckpointLog, Protocol):
    """Decisions and checkpoints together: retention removes from both at once, in one write where it can."""

    def prune_chain(self, chain: str, through_seq: int) -> int:
        """Retention: remove the chain's records up to `through_seq` and its checkpoints before it (the one at
        `through_seq` stays: verification starts from it). Returns how many records went. Only `audit.retention`
        calls this, after verifying what goes."""
        ...

    def drop_covered(self, through: Mapping[str, int], before: date) -> dict[str, int]:
        """Retention's shortcut where decisions are stored by day (PostgreSQL's partitions): remove each whole day
        before `before` whose every record is covered by `through` (chain: the sequence number it may go up to),
        before `prune_chain` removes the rest record by record. Returns how many records went, per chain."""
        ...
