"""A gate's heartbeat signed with the gates' audit key (Ed25519, `CIO_AUDIT_SIGNING_KEY_FILE`), so whoever reads it
from Redis knows a gate made it: the `gate` Redis password alone can write `gate:heartbeat:<id>`, but not sign.

The same signed body goes out on `cio.gate.heartbeat` (and `cio.heartbeat`, the ping reply), so a heartbeat that
verifies in Redis is the gate's NATS heartbeat, byte for byte in its fields. What is signed is every field of the
body except `key_id` and `signature`, as JSON with sorted keys (`orjson`, which reads back exactly what it wrote:
a reader re-encodes what it parsed and gets the same bytes). `ttl_s` (how long the gate keeps it in Redis) is
signed too, so a reader can bound both the key's time to live and the beat's age by what the gate itself said.
"""

from typing import Any

import orjson

from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

_DOMAIN = b"petrosa-cio gate heartbeat v1\n"  # never mistaken for a signed policy, checkpoint or latch
_SEAL_FIELDS = ("key_id", "signature")


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return _DOMAIN + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def seal(body: dict[str, Any], signer: PolicySigner | None) -> bytes:
    """The wire bytes of a heartbeat body (a model dumped in JSON mode), signed when the gate has its key."""
    body = {k: v for k, v in body.items() if k not in _SEAL_FIELDS}
    if signer is None:
        return orjson.dumps(body)
    return orjson.dumps({**body, "key_id": signer.key_id, "signature": signer.sign(_signed_bytes(body))})


def verify(body: dict[str, Any], verifier: PolicyVerifier | None) -> bool:
    """True when `body` (as parsed from the wire) carries a signature by a trusted gate key over its other fields."""
    if verifier is None:
        return False
    signature, key_id = body.get("signature"), body.get("key_id")
    if not isinstance(signature, str) or not isinstance(key_id, str):
        return False
    return verifier.verify(_signed_bytes({k: v for k, v in body.items() if k not in _SEAL_FIELDS}), signature, key_id)
