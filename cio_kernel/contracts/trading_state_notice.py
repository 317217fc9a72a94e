"""`cio.trading.state`: a tightened trading state, sent by the control plane when it cannot write Redis.

A kill switch must work when Redis is down. The control plane then records the change (as version `version`,
to be written to Redis when it returns) and signs this notice with its policy key; every gate verifies it and
applies the state at once, on top of its policy. Tightening needs no confirmation from Redis (it can only make
the gate stricter); the gate keeps the override until it adopts a policy of `version` or later.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from cio_kernel.contracts.identity import scope_key
from cio_kernel.policy.spec import TradingState

if TYPE_CHECKING:  # only for hints: a contract never needs cryptography to be read (the fleet client's
    # distribution ships the contracts without it, docs/client.md)
    from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

_DOMAIN = b"petrosa-cio trading-state v1\n"

Scope = Literal["global", "strategy", "symbol"]


class TradingStateNotice(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    scope: Scope
    key: str  # "" for global
    state: TradingState
    reason: str
    by: str
    at: datetime
    signature: str | None = None
    signed_by: str | None = None

    @property
    def scope_key(self) -> str:
        """The key the notice applies to, as every control compares it (`IdentityError` if it names nothing)."""
        return scope_key(self.scope, self.key)

    def signed_message(self) -> bytes:
        at = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = (str(self.version), self.scope, self.key, self.state.value, at, self.by, self.reason)
        return _DOMAIN + "\x1f".join(fields).encode()

    def signed_with(self, signer: "PolicySigner") -> "TradingStateNotice":
        return self.model_copy(update={"signature": signer.sign(self.signed_message()), "signed_by": signer.key_id})

    def verified_by(self, verifier: "PolicyVerifier | None") -> bool:
        return verifier is not None and verifier.verify(self.signed_message(), self.signature, self.signed_by)
