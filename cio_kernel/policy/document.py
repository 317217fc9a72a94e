"""The active-policy document kept in Redis under `policy:active` (docs/policy.md)."""

import hashlib
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ConfigDict

from cio_kernel.policy.signing import PolicySigner, PolicyVerifier, signed_bytes
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.redis_keys import ACTIVE_POLICY_KEY

__all__ = ["ACTIVE_POLICY_KEY", "PolicyDocument", "policy_checksum"]


def policy_checksum(spec: PolicySpec) -> str:
    """sha256 over the canonical JSON of the spec (sorted keys, sets sorted), prefixed with the algorithm.

    Every step runs in C or Rust (the spec dumps its sets sorted; orjson sorts the keys): a gate checks the
    checksum of every policy it loads, and the largest policies are hundreds of kilobytes."""
    canonical = orjson.dumps(orjson.loads(spec.model_dump_json(by_alias=True)), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


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
        at = self.activated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return signed_bytes(self.version, self.checksum, at, self.activated_by)

    def signed_with(self, signer: PolicySigner) -> "PolicyDocument":
        return self.model_copy(update={"signature": signer.sign(self.signed_message()), "signed_by": signer.key_id})

    def verified_by(self, verifier: PolicyVerifier | None) -> bool:
        """Checksum and signature both hold (no verifier: nothing can be trusted)."""
        return (
            verifier is not None
            and self.checksum_matches()
            and verifier.verify(self.signed_message(), self.signature, self.signed_by)
        )
