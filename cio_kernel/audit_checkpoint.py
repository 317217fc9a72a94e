"""Signed checkpoints: what keeps the audit trail tamper-evident against someone who can write the audit store.

The chain links (`cio_kernel.audit_chain`) are unkeyed hashes: whoever can write the store can change a record
and recompute every link after it, and the chain still verifies. A checkpoint is a gate's Ed25519 signature over
its chain's head, `(chain, seq, hash of the event at seq, time)`, made with a key only gates hold. Because each
link hash covers every event before it, one checkpoint vouches for the whole chain up to its `seq`: a rewritten,
removed, inserted or reordered record anywhere before it changes the hash the store reproduces at that `seq`.

Gates publish checkpoints on JetStream (`CIO_AUDIT_CHECKPOINTS`, one subject per chain, outside the audit store,
which only gates may publish to); the audit ingest also copies them into the store, where they anchor retention
(records before a checkpoint old enough may be removed; verification then starts from it). `audit_verify` trusts
a checkpoint only when its signature verifies with a configured gate public key, wherever it was read.

What is signed is fixed text, not the JSON: `signed_bytes` below. The JSON is kept as published, so a store that
rounds times (MongoDB keeps milliseconds) cannot break a signature.
"""

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cio_kernel.audit_chain import is_chain_id, is_link_hash
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

CHECKPOINT_STREAM = "CIO_AUDIT_CHECKPOINTS"
CHECKPOINT_SUBJECT_PREFIX = "cio.audit.checkpoint"
# The gates' key pair, beside the policy key pair in a state folder (Ed25519, same file format).
PRIVATE_KEY_FILE = "audit-signing.key"
PUBLIC_KEY_FILE = "audit-signing.pub"
_DOMAIN = b"petrosa-cio audit checkpoint v1\n"  # never mistaken for a signed policy or another message


def _chain(value: str) -> str:
    if not is_chain_id(value):
        raise ValueError("not a chain id")
    return value


def _hash(value: str) -> str:
    if not is_link_hash(value):
        raise ValueError("not a link hash (64 lower-case hex digits)")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a checkpoint's time carries its zone")
    return value.astimezone(UTC)


class AuditCheckpoint(BaseModel):
    """A gate's signed statement: "the event at `seq` of `chain` has link hash `hash`" (and so every one before)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: Annotated[str, AfterValidator(_chain)]
    seq: int = Field(ge=1)
    hash: Annotated[str, AfterValidator(_hash)]
    ts: Annotated[datetime, AfterValidator(_utc)]
    gate_id: str = Field(min_length=1, max_length=200)
    key_id: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=200)

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.chain, self.seq, self.hash, self.ts, self.gate_id)

    def verified_by(self, verifier: PolicyVerifier | None) -> bool:
        return verifier is not None and verifier.verify(self.signed_bytes(), self.signature, self.key_id)

    @classmethod
    def sign(
        cls, signer: PolicySigner, chain: str, seq: int, digest: str, gate_id: str, ts: datetime
    ) -> "AuditCheckpoint":
        ts = _utc(ts)
        signature = signer.sign(signed_bytes(chain, seq, digest, ts, gate_id))
        return cls(chain=chain, seq=seq, hash=digest, ts=ts, gate_id=gate_id, key_id=signer.key_id, signature=signature)


def signed_bytes(chain: str, seq: int, digest: str, ts: datetime, gate_id: str) -> bytes:
    stamp = ts.astimezone(UTC).isoformat(timespec="microseconds")
    return _DOMAIN + "\n".join((chain, str(seq), digest, stamp, gate_id)).encode()


def checkpoint_subject(chain: str, prefix: str = CHECKPOINT_SUBJECT_PREFIX) -> str:
    """One subject per chain, so the stream keeps each chain's latest checkpoint (`last_by_subj`). A digest,
    because a chain id may hold dots (subject separators)."""
    return f"{prefix}.{hashlib.sha256(chain.encode()).hexdigest()[:32]}"


def checkpoint_msg_id(checkpoint: AuditCheckpoint) -> str:
    """`Nats-Msg-Id`: a retried publish of the same checkpoint is stored once."""
    return f"ckpt:{checkpoint.chain}:{checkpoint.seq}:{checkpoint.ts.timestamp():.6f}"
