"""The active-policy document kept in Redis under `policy:active` (SPEC §6)."""

import hashlib
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict

from gate.policy.spec import PolicySpec

ACTIVE_POLICY_KEY = "policy:active"


def policy_checksum(spec: PolicySpec) -> str:
    """sha256 over the canonical JSON of the spec (sorted keys, sets sorted), prefixed with the algorithm."""
    canonical = orjson.dumps(_canonical(spec.model_dump(mode="json", by_alias=True)), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if all(isinstance(v, str) for v in items):
            return sorted(items)  # sets dump as lists in arbitrary order
        return items
    return value


class PolicyDocument(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    checksum: str
    activated_at: datetime
    activated_by: str
    spec: PolicySpec

    def checksum_matches(self) -> bool:
        return policy_checksum(self.spec) == self.checksum
