"""The active-policy document kept in Redis under `policy:active` (docs/policy.md)."""

import hashlib
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ConfigDict

from cio_kernel.policy.signing import PolicySigner, PolicyVerifier, signed_bytes
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.redis_keys import ACTIVE_POLICY_KEY

__all__ = ["ACTIVE_POLICY_KEY", "PolicyDocument", "PolicySeal", "policy_checksum"]


def policy_checksum(spec: PolicySpec) -> str:
    """sha256 over the canonical JSON of the spec (sorted keys, sets sorted), prefixed with the algorithm.

    Every step runs in C or Rust (the spec dumps its sets sorted; orjson sorts the keys): a gate checks the
    checksum of every policy it loads, and the largest policies are hundreds of kilobytes."""
    canonical = orjson.dumps(orjson.loads(spec.model_dump_json(by_alias=True)), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _signed_message(version: int, checksum: str, activated_at: datetime, activated_by: str) -> bytes:
    at = activated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return signed_bytes(version, checksum, at, activated_by)


class PolicySeal(BaseModel):
    """A document's signed fields without its spec: proof that the control plane activated `version`.

    Small enough to travel in every heartbeat and in `cio.strategist.update`, and as unforgeable as the document:
    whoever holds one of version N can show that N was activated, nobody can make one for a version that was not.
    That is what a gate's version floor is made of (docs/policy.md, "No rollback")."""

    model_config = ConfigDict(frozen=True)

    version: int
    checksum: str
    activated_at: datetime
    activated_by: str
    signature: str
    signed_by: str

    def verified_by(self, verifier: PolicyVerifier | None) -> bool:
        message = _signed_message(self.version, self.checksum, self.activated_at, self.activated_by)
        return verifier is not None and verifier.verify(message, self.signature, self.signed_by)


class PolicyDocument(BaseModel):
    """The pinned document, plus the control plane's signature (`cio_kernel.policy.signing`) and its key id."""

    model_config = ConfigDict(frozen=True)

    version: int
    checksum: str
    activated_at: datetime
    activated_by: str
    spec: PolicySpec
    signature: str | None = None
    signed_by: str | None = None

    def checksum_matches(self) -> bool:
        return policy_checksum(self.spec) == self.checksum

    def signed_message(self) -> bytes:
        return _signed_message(self.version, self.checksum, self.activated_at, self.activated_by)

    def seal(self) -> PolicySeal | None:
        """The signed fields alone (None for an unsigned document)."""
        if self.signature is None or self.signed_by is None:
            return None
        return PolicySeal(
            version=self.version,
            checksum=self.checksum,
            activated_at=self.activated_at,
            activated_by=self.activated_by,
            signature=self.signature,
            signed_by=self.signed_by,
        )

    def signed_with(self, signer: PolicySigner) -> "PolicyDocument":
        return self.model_copy(update={"signature": signer.sign(self.signed_message()), "signed_by": signer.key_id})

    def verified_by(self, verifier: PolicyVerifier | None) -> bool:
        """Checksum and signature both hold (no verifier: nothing can be trusted)."""
        return (
            verifier is not None
            and self.checksum_matches()
            and verifier.verify(self.signed_message(), self.signature, self.signed_by)
        )
