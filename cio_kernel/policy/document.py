"""The active-policy document kept in Redis under `policy:active` (docs/policy.md)."""

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from pydantic import BaseModel, ConfigDict

from cio_kernel.policy.spec import GlobalRules, PolicySpec, StrategyRules
from cio_kernel.redis_keys import ACTIVE_POLICY_KEY

if TYPE_CHECKING:  # only for hints: a contract never needs cryptography to be read (the fleet client's
    # distribution ships the contracts without it, docs/client.md)
    from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

__all__ = ["ACTIVE_POLICY_KEY", "PolicyDocument", "PolicySeal", "policy_checksum"]


def policy_checksum(spec: PolicySpec) -> str:
    """sha256 over the canonical JSON of the spec (sorted keys, sets sorted, every field at its default left out),
    prefixed with the algorithm.

    Defaults are left out so that a field added later with a default that keeps today's meaning changes no
    policy's checksum: every stored, signed document stays valid. Every step runs in C or Rust (the spec dumps its
    sets sorted; orjson sorts the keys): a gate checks the checksum of every policy it loads, and the largest
    policies are hundreds of kilobytes."""
    return _sha256(spec.model_dump_json(by_alias=True, exclude_defaults=True))


# Until 2026-12 checksums covered every field with its default; documents signed then, whose spec leaves the fields
# added since at their defaults, still hash to their checksum with those fields left out (`legacy_checksum`).
_ADDED_SINCE_FULL_CHECKSUMS: tuple[tuple[str, type[BaseModel], tuple[str, ...]], ...] = (
    ("global", GlobalRules, ("only_listed_strategies",)),
    ("strategies", StrategyRules, ("own_identity",)),
)


def legacy_checksum(spec: PolicySpec) -> str | None:
    """The checksum a document signed before checksums left defaults out carries; None when the spec sets a field
    added since (no such spec was ever signed under that scheme, so none is accepted by it)."""
    full = orjson.loads(spec.model_dump_json(by_alias=True))
    for section, model, names in _ADDED_SINCE_FULL_CHECKSUMS:
        scopes = [full[section]] if section == "global" else list(full[section].values())
        for rules in scopes:
            for name in names:
                if rules.pop(name) != model.model_fields[name].default:
                    return None
    return _sha256(orjson.dumps(full))


def _sha256(json_text: str | bytes) -> str:
    canonical = orjson.dumps(orjson.loads(json_text), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


_DOMAIN = b"petrosa-cio policy v1\n"  # a signature over a policy can never be mistaken for another message's


def _signed_message(version: int, checksum: str, activated_at: datetime, activated_by: str) -> bytes:
    """What the control plane signs for a document: the version, the checksum (which covers the spec), the activation
    time and the activating officer (cio_kernel.policy.signing), so none can be changed or replayed."""
    at = activated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _DOMAIN + "\n".join((str(version), checksum, at, activated_by)).encode()


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

    def verified_by(self, verifier: "PolicyVerifier | None") -> bool:
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
        return policy_checksum(self.spec) == self.checksum or legacy_checksum(self.spec) == self.checksum

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

    def signed_with(self, signer: "PolicySigner") -> "PolicyDocument":
        return self.model_copy(update={"signature": signer.sign(self.signed_message()), "signed_by": signer.key_id})

    def verified_by(self, verifier: "PolicyVerifier | None") -> bool:
        """Checksum and signature both hold (no verifier: nothing can be trusted)."""
        return (
            verifier is not None
            and self.checksum_matches()
            and verifier.verify(self.signed_message(), self.signature, self.signed_by)
        )
